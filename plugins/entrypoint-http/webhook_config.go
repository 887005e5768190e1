package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// Webhook defaults (docs/behaviour.md 5.5).
const (
	defaultConnectTimeoutMs = 3000
	defaultReadTimeoutMs    = 10000
	defaultIdleTimeoutMs    = 60000
	defaultMaxConnections   = 5
	maxMaxConnections       = 20
)

// Retry options and strategies.
const (
	retryNone   = "No Retry"
	retryOnFail = "Retry On Fail"

	strategyLinear      = "LINEAR"
	strategyExponential = "EXPONENTIAL"
)

var (
	proxyTypes      = []string{"HTTP", "SOCKS4", "SOCKS5"}
	storeTypes      = []string{"", "PEM", "JKS", "PKCS12"}
	retryOptions    = []string{retryNone, retryOnFail}
	retryStrategies = []string{strategyLinear, strategyExponential}
)

var httpBlockSchema = schema.Schema{Attributes: []schema.Attribute{
	{Name: "connect_timeout", Type: schema.Number, Default: defaultConnectTimeoutMs, Description: "Milliseconds to wait for a connection to the callback."},
	{Name: "read_timeout", Type: schema.Number, Default: defaultReadTimeoutMs, Description: "Milliseconds to wait for the callback's response."},
	{Name: "idle_timeout", Type: schema.Number, Default: defaultIdleTimeoutMs, Description: "Milliseconds an idle connection is kept for reuse."},
	{Name: "max_concurrent_connections", Type: schema.Number, Default: defaultMaxConnections, Description: "Most requests in flight to the callback (at most 20; always 1 for at-most-once and at-least-once, which must deliver in order)."},
}}

var proxyBlockSchema = schema.Schema{Attributes: []schema.Attribute{
	{Name: "enabled", Type: schema.Bool, Default: false, Description: "Reach the callback through a proxy."},
	{Name: "use_system_proxy", Type: schema.Bool, Default: false, Description: "Use the proxy of the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)."},
	{Name: "type", Type: schema.String, Enum: proxyTypes, Default: "HTTP", Description: "Proxy protocol: HTTP or SOCKS5 (SOCKS4 is not supported)."},
	{Name: "host", Type: schema.String, Description: "Proxy host."},
	{Name: "port", Type: schema.Number, Description: "Proxy port."},
	{Name: "username", Type: schema.String, Description: "Proxy user."},
	{Name: "password", Type: schema.String, Description: "Proxy password."},
}}

var headerBlockSchema = schema.Schema{Attributes: []schema.Attribute{
	{Name: "name", Type: schema.String, Required: true, Description: "Header name."},
	{Name: "value", Type: schema.String, Required: true, Description: "Header value."},
}}

var retryBlockSchema = schema.Schema{Attributes: []schema.Attribute{
	{Name: "retry_option", Type: schema.String, Enum: retryOptions, Default: retryNone, Description: "Whether a failed delivery (5xx or no response) is retried."},
	{Name: "retry_strategy", Type: schema.String, Enum: retryStrategies, Default: strategyLinear, Description: "How the delay grows between attempts."},
	{Name: "max_attempts", Type: schema.Number, Default: 5, Description: "Most attempts per message, the first included."},
	{Name: "initial_delay_seconds", Type: schema.Number, Default: 1, Description: "Delay before the first retry."},
	{Name: "max_delay_seconds", Type: schema.Number, Default: 30, Description: "Longest delay between attempts."},
}}

var storeBlockSchema = schema.Schema{Attributes: []schema.Attribute{
	{Name: "type", Type: schema.String, Enum: storeTypes, Default: "", Description: "Store format; only PEM is supported."},
	{Name: "password", Type: schema.String, Description: "Store password (unused for PEM)."},
	{Name: "alias", Type: schema.String, Description: "Key alias (unused for PEM)."},
	{Name: "key_password", Type: schema.String, Description: "Key password (unused for PEM)."},
	{Name: "content", Type: schema.String, Description: "PEM certificates (truststore), plain or base64-encoded."},
	{Name: "cert_content", Type: schema.String, Description: "PEM client certificate chain (keystore), plain or base64-encoded."},
	{Name: "key_content", Type: schema.String, Description: "PEM client private key (keystore), plain or base64-encoded."},
}}

var sslBlockSchema = schema.Schema{
	Attributes: []schema.Attribute{
		{Name: "hostname_verifier", Type: schema.Bool, Default: true, Description: "Check that the callback's certificate names its host."},
		{Name: "trust_all", Type: schema.Bool, Default: false, Description: "Accept any certificate (tests only)."},
	},
	Blocks: []schema.Block{
		{Name: "truststore", Nesting: schema.Single, Schema: storeBlockSchema, Description: "Certificates to trust instead of the system's."},
		{Name: "keystore", Nesting: schema.Single, Schema: storeBlockSchema, Description: "Client certificate for mutual TLS."},
	},
}

var webhookSchema = schema.Schema{
	Attributes: []schema.Attribute{
		qosAttribute(webhookQoS),
		{Name: "callback_url", Type: schema.String, Required: true, Description: "Where messages are POSTed: an http:// or https:// URL."},
		{Name: "interrupt_consumption_on_server_error", Type: schema.Bool, Default: true,
			Description: "Stop the subscription when the callback keeps answering 5xx; otherwise the message is skipped."},
		{Name: "interrupt_consumption_on_exception", Type: schema.Bool, Default: true,
			Description: "Stop the subscription when the callback cannot be reached; otherwise the message is skipped."},
	},
	Blocks: []schema.Block{
		{Name: "http", Nesting: schema.Single, Schema: httpBlockSchema, Description: "HTTP client settings."},
		{Name: "proxy", Nesting: schema.Single, Schema: proxyBlockSchema, Description: "Proxy to reach the callback through."},
		{Name: "header", Nesting: schema.List, Schema: headerBlockSchema, Description: "A header sent with every delivery (after the message's own headers, which win)."},
		{Name: "retry", Nesting: schema.Single, Schema: retryBlockSchema, Description: "Retries of failed deliveries."},
		{Name: "ssl", Nesting: schema.Single, Schema: sslBlockSchema, Description: "TLS settings for https callbacks."},
	},
}

// webhookConfig is one decoded webhook instance.
type webhookConfig struct {
	QoS                    string
	CallbackURL            string
	ConnectTimeout         time.Duration
	ReadTimeout            time.Duration
	IdleTimeout            time.Duration
	MaxConnections         int
	InterruptOnServerError bool
	InterruptOnException   bool
	Headers                [][2]string
	Retry                  retryPolicy
	proxy                  func(*http.Request) (*url.URL, error)
	tls                    *tls.Config

	// client is built at Configure and shared by the instance's exchanges.
	client *http.Client
}

// retryPolicy says how often and how late a failed delivery is tried again.
type retryPolicy struct {
	MaxAttempts  int
	Exponential  bool
	InitialDelay time.Duration
	MaxDelay     time.Duration
}

// delay is the wait before attempt n+1 after n failed attempts (n >= 1).
func (r retryPolicy) delay(n int) time.Duration {
	d := r.InitialDelay * time.Duration(n)
	if r.Exponential {
		d = r.InitialDelay
		for i := 1; i < n && d < r.MaxDelay; i++ {
			d *= 2
		}
	}
	return min(d, r.MaxDelay)
}

func decodeWebhook(data []byte) (*webhookConfig, lifecycle.Diagnostics) {
	cfg := &webhookConfig{
		QoS:                    defaultQoS,
		ConnectTimeout:         defaultConnectTimeoutMs * time.Millisecond,
		ReadTimeout:            defaultReadTimeoutMs * time.Millisecond,
		IdleTimeout:            defaultIdleTimeoutMs * time.Millisecond,
		MaxConnections:         defaultMaxConnections,
		InterruptOnServerError: true,
		InterruptOnException:   true,
		Retry:                  retryPolicy{MaxAttempts: 1},
	}
	d := newDecoder(data, webhookSchema)
	d.qos("qos", webhookQoS, typeWebhook, &cfg.QoS)
	if _, present := d.fields["callback_url"]; !present || string(d.fields["callback_url"]) == "null" {
		d.diags.Errorf([]string{"callback_url"}, "callback_url is required: the http:// or https:// URL messages are POSTed to")
	} else if d.str("callback_url", &cfg.CallbackURL) {
		u, err := url.Parse(cfg.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.diags.Errorf([]string{"callback_url"}, "callback_url %q must be an absolute http:// or https:// URL", cfg.CallbackURL)
		}
	}
	d.boolean("interrupt_consumption_on_server_error", &cfg.InterruptOnServerError)
	d.boolean("interrupt_consumption_on_exception", &cfg.InterruptOnException)

	if h := d.block("http", httpBlockSchema); h != nil {
		h.duration("connect_timeout", &cfg.ConnectTimeout)
		h.duration("read_timeout", &cfg.ReadTimeout)
		h.duration("idle_timeout", &cfg.IdleTimeout)
		n := int64(cfg.MaxConnections)
		h.wholeNumber("max_concurrent_connections", 1, maxMaxConnections, &n)
		cfg.MaxConnections = int(n)
		d.merge(h)
	}
	if cfg.QoS == endpoint.QoSAtMostOnce || cfg.QoS == endpoint.QoSAtLeastOnce {
		cfg.MaxConnections = 1 // ordered delivery: one message at a time
	}
	if p := d.block("proxy", proxyBlockSchema); p != nil {
		cfg.proxy = p.proxy()
		d.merge(p)
	}
	for _, h := range d.list("header", headerBlockSchema) {
		var name, value string
		if !h.str("name", &name) || strings.TrimSpace(name) == "" {
			h.diags.Errorf(h.at("name"), "a header needs a name")
		}
		h.str("value", &value)
		cfg.Headers = append(cfg.Headers, [2]string{name, value})
		d.merge(h)
	}
	if r := d.block("retry", retryBlockSchema); r != nil {
		cfg.Retry = r.retry()
		d.merge(r)
	}
	if s := d.block("ssl", sslBlockSchema); s != nil {
		cfg.tls = s.tlsConfig()
		d.merge(s)
	}
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return cfg, d.diags
}

// duration reads a number of milliseconds.
func (d *decoder) duration(name string, dst *time.Duration) {
	ms := int64(*dst / time.Millisecond)
	d.wholeNumber(name, 0, int64(24*time.Hour/time.Millisecond), &ms)
	*dst = time.Duration(ms) * time.Millisecond
}

func (d *decoder) proxy() func(*http.Request) (*url.URL, error) {
	var enabled, system bool
	typ := "HTTP"
	var host, user, pass string
	port := int64(0)
	d.boolean("enabled", &enabled)
	d.boolean("use_system_proxy", &system)
	d.oneOf("type", proxyTypes, &typ)
	d.str("host", &host)
	d.wholeNumber("port", 1, 65535, &port)
	d.str("username", &user)
	d.str("password", &pass)
	if !enabled {
		return nil
	}
	if system {
		return http.ProxyFromEnvironment
	}
	scheme := "http"
	switch typ {
	case "SOCKS5":
		scheme = "socks5"
	case "SOCKS4":
		d.diags.Errorf(d.at("type"), "SOCKS4 proxies are not supported; use SOCKS5 or HTTP")
		return nil
	}
	if host == "" || port == 0 {
		d.diags.Errorf(d.path, "an enabled proxy needs a host and a port (or use_system_proxy = true)")
		return nil
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.FormatInt(port, 10))}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return http.ProxyURL(u)
}

func (d *decoder) retry() retryPolicy {
	option, strategy := retryNone, strategyLinear
	attempts, initial, maxDelay := int64(5), int64(1), int64(30)
	d.oneOf("retry_option", retryOptions, &option)
	d.oneOf("retry_strategy", retryStrategies, &strategy)
	d.wholeNumber("max_attempts", 1, 1000, &attempts)
	d.wholeNumber("initial_delay_seconds", 0, 86400, &initial)
	d.wholeNumber("max_delay_seconds", 0, 86400, &maxDelay)
	if option == retryNone {
		return retryPolicy{MaxAttempts: 1}
	}
	return retryPolicy{
		MaxAttempts:  int(attempts),
		Exponential:  strategy == strategyExponential,
		InitialDelay: time.Duration(initial) * time.Second,
		MaxDelay:     time.Duration(max(maxDelay, initial)) * time.Second,
	}
}

func (d *decoder) tlsConfig() *tls.Config {
	verifyHost, trustAll := true, false
	d.boolean("hostname_verifier", &verifyHost)
	d.boolean("trust_all", &trustAll)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ts := d.block("truststore", storeBlockSchema); ts != nil {
		if pem := ts.pemField(ts.storeType(), "content"); pem != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				ts.diags.Errorf(ts.at("content"), "the truststore content holds no PEM certificate")
			}
			cfg.RootCAs = pool
		}
		d.merge(ts)
	}
	if ks := d.block("keystore", storeBlockSchema); ks != nil {
		typ := ks.storeType()
		certPEM, keyPEM := ks.pemField(typ, "cert_content"), ks.pemField(typ, "key_content")
		switch {
		case certPEM == nil && keyPEM == nil:
		case certPEM == nil || keyPEM == nil:
			ks.diags.Errorf(ks.path, "a keystore needs both cert_content and key_content")
		default:
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				ks.diags.Errorf(ks.path, "invalid client certificate or key: %v", err)
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
		d.merge(ks)
	}
	switch {
	case trustAll:
		cfg.InsecureSkipVerify = true
	case !verifyHost:
		// Verify the chain but not the name: Go has no switch for that, so
		// the check is done by hand.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, roots)
		}
	}
	return cfg
}

// storeType reads a store's type.
func (d *decoder) storeType() string {
	typ := ""
	d.oneOf("type", storeTypes, &typ)
	return typ
}

// pemField reads a PEM field, plain or base64-encoded, of a store of type typ.
func (d *decoder) pemField(typ, name string) []byte {
	var s string
	if !d.str(name, &s) || s == "" {
		return nil
	}
	if typ == "JKS" || typ == "PKCS12" {
		d.diags.Errorf(d.at("type"), "%s stores are not supported; convert to PEM (openssl pkcs12 -in store.p12 -nodes) and set type = \"PEM\"", typ)
		return nil
	}
	if strings.Contains(s, "-----BEGIN") {
		return []byte(s)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		d.diags.Errorf(d.at(name), "%s is neither PEM nor base64-encoded PEM", name)
		return nil
	}
	return b
}

// verifyChain checks a certificate chain against roots (the system's when
// nil), ignoring the host name.
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("bad server certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// newClient builds the HTTP client of an instance.
func (c *webhookConfig) newClient() (*http.Client, error) {
	dialer := &net.Dialer{Timeout: c.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 c.proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       c.tls,
		TLSHandshakeTimeout:   c.ConnectTimeout,
		ResponseHeaderTimeout: c.ReadTimeout,
		IdleConnTimeout:       c.IdleTimeout,
		MaxConnsPerHost:       c.MaxConnections,
		MaxIdleConnsPerHost:   c.MaxConnections,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		// A callback that redirects is answered like any other non-2xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
