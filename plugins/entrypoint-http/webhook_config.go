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

	"github.com/sluice-gw/sluice/sdk/instances"
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

var authBlockSchema = schema.Schema{
	Attributes: []schema.Attribute{
		{Name: "type", Type: schema.String, Required: true, Enum: authTypes, Description: "basic, token (a bearer token) or oauth2 (client credentials)."},
	},
	Blocks: []schema.Block{
		{Name: "basic", Nesting: schema.Single, Description: "HTTP basic authentication.", Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "username", Type: schema.String, Required: true, Description: "User name."},
			{Name: "password", Type: schema.String, Required: true, Description: "Password."},
		}}},
		{Name: "token", Nesting: schema.Single, Description: "A bearer token.", Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "value", Type: schema.String, Required: true, Description: "The token, sent as Authorization: Bearer <value>."},
		}}},
		{Name: "oauth2", Nesting: schema.Single, Description: "OAuth2 client credentials; the token is cached until shortly before it expires.", Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "endpoint", Type: schema.String, Required: true, Description: "The token endpoint URL."},
			{Name: "client_id", Type: schema.String, Required: true, Description: "Client id."},
			{Name: "client_secret", Type: schema.String, Required: true, Description: "Client secret."},
			{Name: "scopes", Type: schema.ListOfString, Description: "Scopes to ask for."},
		}}},
	},
}

// webhookSchema is the webhook entrypoint block: what every push
// subscription of the API shares.
var webhookSchema = schema.Schema{
	Attributes: []schema.Attribute{
		qosAttribute(webhookQoS),
		{Name: "interrupt_consumption_on_server_error", Type: schema.Bool, Default: true,
			Description: "Stop a subscription when its callback still answers 5xx after the last attempt (and it has no dlq); otherwise the message is skipped."},
		{Name: "interrupt_consumption_on_exception", Type: schema.Bool, Default: true,
			Description: "Stop a subscription when its callback still cannot be reached after the last attempt (and it has no dlq); otherwise the message is skipped."},
	},
	Blocks: []schema.Block{
		{Name: "http", Nesting: schema.Single, Schema: httpBlockSchema, Description: "HTTP client settings."},
		{Name: "proxy", Nesting: schema.Single, Schema: proxyBlockSchema, Description: "Proxy to reach the callbacks through."},
	},
}

// subscriptionSchema is a push subscription (plan "push" > subscription),
// which the gateway sends as JSON when it opens the subscription's
// exchange.
var subscriptionSchema = schema.Schema{
	Attributes: []schema.Attribute{
		{Name: "callback_url", Type: schema.String, Required: true, Description: "Where messages are POSTed: an http:// or https:// URL."},
	},
	Blocks: []schema.Block{
		{Name: "header", Nesting: schema.List, Schema: headerBlockSchema, Description: "A header sent with every delivery (after the message's own headers, which win)."},
		{Name: "retry", Nesting: schema.Single, Schema: retryBlockSchema, Description: "Retries of failed deliveries."},
		{Name: "ssl", Nesting: schema.Single, Schema: sslBlockSchema, Description: "TLS settings for https callbacks."},
		{Name: "auth", Nesting: schema.Single, Schema: authBlockSchema, Description: "How the gateway authenticates to the callback."},
		{Name: "dlq", Nesting: schema.Single, Description: "Where a message goes after its last failed attempt.", Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "endpoint", Type: schema.String, Required: true, Description: "The name of an endpoint block of the API."},
		}}},
	},
}

// webhookConfig is one decoded webhook instance: the settings its
// subscriptions share.
type webhookConfig struct {
	QoS                    string
	ConnectTimeout         time.Duration
	ReadTimeout            time.Duration
	IdleTimeout            time.Duration
	MaxConnections         int
	InterruptOnServerError bool
	InterruptOnException   bool
	proxy                  func(*http.Request) (*url.URL, error)
}

// subscriptionConfig is one decoded push subscription.
type subscriptionConfig struct {
	CallbackURL string
	Headers     [][2]string
	Retry       retryPolicy
	Auth        authConfig
	DLQ         string
	tls         *tls.Config
}

// Authentication types.
const (
	authBasic  = "basic"
	authToken  = "token"
	authOAuth2 = "oauth2"
)

var authTypes = []string{authBasic, authToken, authOAuth2}

// authConfig is a subscription's auth block; Type "" is none.
type authConfig struct {
	Type               string
	Username, Password string
	Token              string
	TokenURL           string
	ClientID, Secret   string
	Scopes             []string
}

// retryPolicy says how often and how late a failed delivery is tried again.
type retryPolicy struct {
	MaxAttempts  int
	Exponential  bool
	InitialDelay time.Duration
	MaxDelay     time.Duration
}

// delay is the wait before attempt n+1 after n failed attempts (n >= 1):
// LINEAR waits initial*n, EXPONENTIAL initial*2^(n-1), both capped at the
// maximum delay.
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
	}
	d := newDecoder(data, webhookSchema)
	qos(d, "qos", webhookQoS, typeWebhook, &cfg.QoS)
	d.Bool("interrupt_consumption_on_server_error", &cfg.InterruptOnServerError)
	d.Bool("interrupt_consumption_on_exception", &cfg.InterruptOnException)
	if h := d.Block("http", httpBlockSchema); h != nil {
		duration(h, "connect_timeout", &cfg.ConnectTimeout)
		duration(h, "read_timeout", &cfg.ReadTimeout)
		duration(h, "idle_timeout", &cfg.IdleTimeout)
		n := int64(cfg.MaxConnections)
		h.WholeNumber("max_concurrent_connections", 1, maxMaxConnections, &n)
		cfg.MaxConnections = int(n)
		d.Merge(h)
	}
	if p := d.Block("proxy", proxyBlockSchema); p != nil {
		cfg.proxy = proxy(p)
		d.Merge(p)
	}
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	return cfg, d.Diagnostics()
}

// decodeSubscription decodes the subscription JSON of a headless exchange.
func decodeSubscription(data []byte) (*subscriptionConfig, lifecycle.Diagnostics) {
	cfg := &subscriptionConfig{Retry: retryPolicy{MaxAttempts: 1}}
	d := newDecoder(data, subscriptionSchema)
	if !d.Has("callback_url") || string(d.Raw("callback_url")) == "null" {
		d.Errorf("callback_url", "callback_url is required: the http:// or https:// URL messages are POSTed to")
	} else if d.String("callback_url", &cfg.CallbackURL) {
		u, err := url.Parse(cfg.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.Errorf("callback_url", "callback_url %q must be an absolute http:// or https:// URL", cfg.CallbackURL)
		}
	}
	for _, h := range d.List("header", headerBlockSchema) {
		var name, value string
		if !h.String("name", &name) || strings.TrimSpace(name) == "" {
			h.Errorf("name", "a header needs a name")
		}
		h.String("value", &value)
		cfg.Headers = append(cfg.Headers, [2]string{name, value})
		d.Merge(h)
	}
	if r := d.Block("retry", retryBlockSchema); r != nil {
		cfg.Retry = retry(r)
		d.Merge(r)
	}
	if s := d.Block("ssl", sslBlockSchema); s != nil {
		cfg.tls = tlsConfig(s)
		d.Merge(s)
	}
	if a := d.Block("auth", authBlockSchema); a != nil {
		cfg.Auth = auth(a)
		d.Merge(a)
	}
	if q := d.Block("dlq", subscriptionSchema.Blocks[4].Schema); q != nil {
		q.String("endpoint", &cfg.DLQ)
		d.Merge(q)
	}
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	return cfg, d.Diagnostics()
}

// auth reads an auth block: the block named by type must be there.
func auth(d *instances.Decoder) authConfig {
	var a authConfig
	d.OneOf("type", authTypes, &a.Type)
	sub := func(name string) *instances.Decoder {
		for _, b := range authBlockSchema.Blocks {
			if b.Name == name {
				if s := d.Block(name, b.Schema); s != nil {
					return s
				}
			}
		}
		d.Errorf(name, "auth type %q needs a %s block", a.Type, name)
		return nil
	}
	switch a.Type {
	case authBasic:
		if s := sub("basic"); s != nil {
			s.String("username", &a.Username)
			s.String("password", &a.Password)
			d.Merge(s)
		}
	case authToken:
		if s := sub("token"); s != nil {
			s.String("value", &a.Token)
			d.Merge(s)
		}
	case authOAuth2:
		if s := sub("oauth2"); s != nil {
			s.String("endpoint", &a.TokenURL)
			s.String("client_id", &a.ClientID)
			s.String("client_secret", &a.Secret)
			s.Value("scopes", &a.Scopes)
			if u, err := url.Parse(a.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				s.Errorf("endpoint", "endpoint %q must be an absolute http:// or https:// URL", a.TokenURL)
			}
			d.Merge(s)
		}
	}
	return a
}

// duration reads a number of milliseconds.
func duration(d *instances.Decoder, name string, dst *time.Duration) {
	ms := int64(*dst / time.Millisecond)
	d.WholeNumber(name, 0, int64(24*time.Hour/time.Millisecond), &ms)
	*dst = time.Duration(ms) * time.Millisecond
}

func proxy(d *instances.Decoder) func(*http.Request) (*url.URL, error) {
	var enabled, system bool
	typ := "HTTP"
	var host, user, pass string
	port := int64(0)
	d.Bool("enabled", &enabled)
	d.Bool("use_system_proxy", &system)
	d.OneOf("type", proxyTypes, &typ)
	d.String("host", &host)
	d.WholeNumber("port", 1, 65535, &port)
	d.String("username", &user)
	d.String("password", &pass)
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
		d.Errorf("type", "SOCKS4 proxies are not supported; use SOCKS5 or HTTP")
		return nil
	}
	if host == "" || port == 0 {
		d.Errorf("", "an enabled proxy needs a host and a port (or use_system_proxy = true)")
		return nil
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.FormatInt(port, 10))}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return http.ProxyURL(u)
}

func retry(d *instances.Decoder) retryPolicy {
	option, strategy := retryNone, strategyLinear
	attempts, initial, maxDelay := int64(5), int64(1), int64(30)
	d.OneOf("retry_option", retryOptions, &option)
	d.OneOf("retry_strategy", retryStrategies, &strategy)
	d.WholeNumber("max_attempts", 1, 1000, &attempts)
	d.WholeNumber("initial_delay_seconds", 0, 86400, &initial)
	d.WholeNumber("max_delay_seconds", 0, 86400, &maxDelay)
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

func tlsConfig(d *instances.Decoder) *tls.Config {
	verifyHost, trustAll := true, false
	d.Bool("hostname_verifier", &verifyHost)
	d.Bool("trust_all", &trustAll)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ts := d.Block("truststore", storeBlockSchema); ts != nil {
		if pem := pemField(ts, storeType(ts), "content"); pem != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				ts.Errorf("content", "the truststore content holds no PEM certificate")
			}
			cfg.RootCAs = pool
		}
		d.Merge(ts)
	}
	if ks := d.Block("keystore", storeBlockSchema); ks != nil {
		typ := storeType(ks)
		certPEM, keyPEM := pemField(ks, typ, "cert_content"), pemField(ks, typ, "key_content")
		switch {
		case certPEM == nil && keyPEM == nil:
		case certPEM == nil || keyPEM == nil:
			ks.Errorf("", "a keystore needs both cert_content and key_content")
		default:
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				ks.Errorf("", "invalid client certificate or key: %v", err)
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
		d.Merge(ks)
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
func storeType(d *instances.Decoder) string {
	typ := ""
	d.OneOf("type", storeTypes, &typ)
	return typ
}

// pemField reads a PEM field, plain or base64-encoded, of a store of type typ.
func pemField(d *instances.Decoder, typ, name string) []byte {
	var s string
	if !d.String(name, &s) || s == "" {
		return nil
	}
	if typ == "JKS" || typ == "PKCS12" {
		d.Errorf("type", "%s stores are not supported; convert to PEM (openssl pkcs12 -in store.p12 -nodes) and set type = \"PEM\"", typ)
		return nil
	}
	if strings.Contains(s, "-----BEGIN") {
		return []byte(s)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		d.Errorf(name, "%s is neither PEM nor base64-encoded PEM", name)
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

// newClient builds the HTTP client of one subscription: the instance's
// timeouts, limits and proxy with the subscription's TLS settings.
func (c *webhookConfig) newClient(tlsConfig *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: c.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 c.proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
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
	}
}
