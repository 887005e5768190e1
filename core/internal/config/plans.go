package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"math/big"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/sluice-gw/sluice/core/internal/plan"
)

// Defaults of the gateway's limits and TLS settings.
const (
	// DefaultMaxConnections bounds the public listener's open connections.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerIP bounds the open connections of one client
	// address.
	DefaultMaxConnectionsPerIP = 1000
	// DefaultMaxHeaderBytes bounds a request's line and headers.
	DefaultMaxHeaderBytes = 8 << 10
	// DefaultMaxRequestBodyBytes bounds a request body, per API.
	DefaultMaxRequestBodyBytes = 10 << 20
	// DefaultReadTimeout bounds reading one request, headers and body.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds writing one non-streaming response.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout bounds a kept-alive connection between requests.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultWebSocketMaxMessageBytes bounds one incoming WebSocket message
	// (and so each of its frames).
	DefaultWebSocketMaxMessageBytes = 1 << 20
	// DefaultPluginCallTimeout bounds each call to a plugin on a request's
	// behalf (a request-phase call, a publish or message-phase batch).
	DefaultPluginCallTimeout = 30 * time.Second
)

// Client certificate policies of gateway { tls { client_auth } }.
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// TLS is the gateway's tls block: HTTPS on the public listener.
type TLS struct {
	// CertFile is the absolute path of the PEM certificate chain. Required.
	CertFile string
	// KeyFile is the absolute path of the PEM private key. Required.
	KeyFile string
	// ClientCAFile is the absolute path of the PEM CAs client certificates
	// must chain to. Required unless ClientAuth is "none".
	ClientCAFile string
	// ClientAuth is "none", "request" (verify a certificate when the
	// client sends one) or "require". Optional. Default: none.
	ClientAuth string
}

// Limits bound what one client can take from the gateway.
type Limits struct {
	// MaxConnections bounds the public listener's open connections.
	// Optional. Default: DefaultMaxConnections.
	MaxConnections int
	// MaxConnectionsPerIP bounds one client address's open connections.
	// Optional. Default: DefaultMaxConnectionsPerIP.
	MaxConnectionsPerIP int
	// MaxHeaderBytes bounds the request line and headers (431 beyond).
	// Optional. Default: DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxRequestBodyBytes is the APIs' default body limit (413 beyond).
	// Optional. Default: DefaultMaxRequestBodyBytes.
	MaxRequestBodyBytes int
	// ReadTimeout bounds reading one request. Optional. Default: 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one non-streaming response. Optional.
	// Default: 30s.
	WriteTimeout time.Duration
	// IdleTimeout bounds a kept-alive connection between requests.
	// Optional. Default: 120s.
	IdleTimeout time.Duration
	// WebSocketMaxMessageBytes bounds one incoming WebSocket message.
	// Optional. Default: DefaultWebSocketMaxMessageBytes.
	WebSocketMaxMessageBytes int
	// PluginCallTimeout bounds each call to a plugin on a request's behalf.
	// Optional. Default: DefaultPluginCallTimeout.
	PluginCallTimeout time.Duration
}

// DefaultLimits returns the limits of a gateway block that sets none.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections:           DefaultMaxConnections,
		MaxConnectionsPerIP:      DefaultMaxConnectionsPerIP,
		MaxHeaderBytes:           DefaultMaxHeaderBytes,
		MaxRequestBodyBytes:      DefaultMaxRequestBodyBytes,
		ReadTimeout:              DefaultReadTimeout,
		WriteTimeout:             DefaultWriteTimeout,
		IdleTimeout:              DefaultIdleTimeout,
		WebSocketMaxMessageBytes: DefaultWebSocketMaxMessageBytes,
		PluginCallTimeout:        DefaultPluginCallTimeout,
	}
}

// planAttrs lists, per plan type, the plan's own attributes and its
// subscriptions' attributes; required ones are marked with a trailing "!".
var planAttrs = map[string]struct{ plan, sub []string }{
	plan.TypeKeyless: {},
	plan.TypeAPIKey:  {plan: []string{"header", "query_param"}, sub: []string{"api_key!", "application"}},
	plan.TypeJWT: {plan: []string{"signature!", "secret", "public_key", "jwks_file", "jwks_url", "issuer", "audience",
		"clock_skew_seconds", "client_id_claim", "jwks_timeout_ms", "jwks_cache_seconds", "jwks_min_refresh_seconds"},
		sub: []string{"client_id!", "application"}},
	plan.TypeMTLS: {sub: []string{"client_certificate!", "application"}},
}

// PlanTypes lists the plan types, for diagnostics.
var PlanTypes = []string{plan.TypeAPIKey, plan.TypeJWT, plan.TypeMTLS, plan.TypeKeyless}

func schemaOf(attrs []string, blocks ...hcl.BlockHeaderSchema) *hcl.BodySchema {
	s := &hcl.BodySchema{Blocks: blocks}
	for _, a := range attrs {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: strings.TrimSuffix(a, "!"), Required: strings.HasSuffix(a, "!")})
	}
	return s
}

// loadPlans decodes an api's plan blocks. Each plan that decodes cleanly is
// also compiled by the plan package, so `sluice validate` refuses exactly
// what `sluice run` would (a short HMAC secret, a public key that does not
// fit the signature, an unreadable key set file).
func loadPlans(f *File, apiWhere string, blocks []*planHCL) ([]plan.Config, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []plan.Config
	seen := map[string]hcl.Range{}
	for _, pb := range blocks {
		where := fmt.Sprintf("%s > plan %q", apiWhere, pb.Name)
		attrs, known := planAttrs[pb.Name]
		if !known {
			detail := fmt.Sprintf("The plan types are %s.", quoteList(PlanTypes))
			if s := suggest(pb.Name, PlanTypes); s != "" {
				detail = fmt.Sprintf("Did you mean %q? %s", s, detail)
			} else if pb.Name == "push" || pb.Name == "oauth2" {
				detail = fmt.Sprintf("Plan %q is not supported yet. %s", pb.Name, detail)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Unsupported plan %q", apiWhere, pb.Name),
				Detail:   detail,
				Subject:  pb.NameRange.Ptr(),
			})
			continue
		}
		if prev, dup := seen[pb.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Duplicate plan %q", apiWhere, pb.Name),
				Detail:   fmt.Sprintf("This API already has a %q plan at %s; put all its subscriptions in that block.", pb.Name, startString(prev)),
				Subject:  pb.NameRange.Ptr(),
			})
			continue
		}
		seen[pb.Name] = pb.NameRange
		var subBlocks []hcl.BlockHeaderSchema
		if pb.Name != plan.TypeKeyless {
			subBlocks = append(subBlocks, hcl.BlockHeaderSchema{Type: "subscription", LabelNames: []string{"id"}})
		}
		content, d := pb.Body.Content(schemaOf(attrs.plan, subBlocks...))
		diags = append(diags, prefixed(where, d)...)
		if content == nil {
			continue
		}
		before := len(diags)
		cfg := plan.Config{Type: pb.Name}
		str := func(name string) (string, *hcl.Attribute) {
			a := content.Attributes[name]
			if a == nil {
				return "", nil
			}
			s, ok, d := evalString(where, a.Expr, f.eval)
			diags = append(diags, d...)
			if ok && s == "" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: %s must not be empty", where, name),
					Detail:   "Leave the attribute out to take its default, or give a value.",
					Subject:  a.Expr.Range().Ptr(),
				})
			}
			return s, a
		}
		switch pb.Name {
		case plan.TypeAPIKey:
			cfg.Header, _ = str("header")
			cfg.QueryParam, _ = str("query_param")
		case plan.TypeJWT:
			j := &plan.JWTConfig{}
			var sigAttr *hcl.Attribute
			j.Signature, sigAttr = str("signature")
			if sigAttr != nil && j.Signature != "" && !contains(plan.Signatures, j.Signature) {
				detail := fmt.Sprintf("signature is one of %s.", quoteList(plan.Signatures))
				if strings.EqualFold(j.Signature, "none") {
					detail = "Unsigned tokens are never accepted: anyone could write one. " + detail
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Unsupported signature %q", where, j.Signature),
					Detail:   detail,
					Subject:  sigAttr.Expr.Range().Ptr(),
				})
			}
			j.Secret, _ = str("secret")
			j.PublicKey, _ = str("public_key")
			var fileAttr *hcl.Attribute
			j.JWKSFile, fileAttr = str("jwks_file")
			if j.JWKSFile != "" {
				j.JWKSFile = resolvePath(f.dir, j.JWKSFile)
				if _, err := os.Stat(j.JWKSFile); err != nil {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  fmt.Sprintf("%s: Cannot read jwks_file", where),
						Detail:   fmt.Sprintf("%s: %s.", j.JWKSFile, unwrapPathError(err)),
						Subject:  fileAttr.Expr.Range().Ptr(),
					})
				}
			}
			var urlAttr *hcl.Attribute
			j.JWKSURL, urlAttr = str("jwks_url")
			if j.JWKSURL != "" && !strings.HasPrefix(j.JWKSURL, "https://") && !strings.HasPrefix(j.JWKSURL, "http://") {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Invalid jwks_url %q", where, j.JWKSURL),
					Detail:   `jwks_url is an http:// or https:// URL, e.g. "https://id.example/.well-known/jwks.json".`,
					Subject:  urlAttr.Expr.Range().Ptr(),
				})
			}
			j.Issuer, _ = str("issuer")
			j.Audience, _ = str("audience")
			j.ClientIDClaim, _ = str("client_id_claim")
			num := func(name string, unit time.Duration, min int) time.Duration {
				n, ok, d := evalBounded(where, name, content.Attributes[name], f.eval, min)
				diags = append(diags, d...)
				if !ok {
					return 0
				}
				return time.Duration(n) * unit
			}
			j.ClockSkew = num("clock_skew_seconds", time.Second, 0)
			j.JWKSTimeout = num("jwks_timeout_ms", time.Millisecond, 1)
			j.JWKSCacheTTL = num("jwks_cache_seconds", time.Second, 1)
			j.JWKSMinRefreshInterval = num("jwks_min_refresh_seconds", time.Second, 1)
			sources := []string{}
			for _, n := range []string{"secret", "public_key", "jwks_file", "jwks_url"} {
				if content.Attributes[n] != nil {
					sources = append(sources, n)
				}
			}
			if len(sources) != 1 {
				subject := pb.NameRange
				if len(sources) > 1 {
					subject = content.Attributes[sources[1]].NameRange
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Give exactly one of secret, public_key, jwks_file and jwks_url", where),
					Detail:   fmt.Sprintf("HS* signatures take a secret; RS*, PS* and ES* a public_key (PEM), a jwks_file or a jwks_url. This plan has %d.", len(sources)),
					Subject:  subject.Ptr(),
				})
			}
			cfg.JWT = j
		}
		ids := map[string]hcl.Range{}
		for _, sb := range content.Blocks {
			id := sb.Labels[0]
			sw := fmt.Sprintf("%s > subscription %q", where, id)
			if prev, dup := ids[id]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Duplicate subscription %q", where, id),
					Detail:   fmt.Sprintf("Subscription %q is already defined at %s; subscription ids are unique within a plan.", id, startString(prev)),
					Subject:  sb.LabelRanges[0].Ptr(),
				})
				continue
			}
			ids[id] = sb.LabelRanges[0]
			if id == "" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  sw + ": The subscription id must not be empty",
					Detail:   "The id is the client identifier (and Kafka consumer group) of the requests the subscription accepts.",
					Subject:  sb.LabelRanges[0].Ptr(),
				})
				continue
			}
			sc, d := sb.Body.Content(schemaOf(attrs.sub))
			diags = append(diags, prefixed(sw, d)...)
			if sc == nil {
				continue
			}
			s := plan.Subscription{ID: id}
			get := func(name string) string {
				a := sc.Attributes[name]
				if a == nil {
					return ""
				}
				v, ok, d := evalString(sw, a.Expr, f.eval)
				diags = append(diags, d...)
				if ok && v == "" {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  fmt.Sprintf("%s: %s must not be empty", sw, name),
						Detail:   "An empty value would match nothing, or everything; give the value.",
						Subject:  a.Expr.Range().Ptr(),
					})
				}
				return v
			}
			s.APIKey = get("api_key")
			s.ClientID = get("client_id")
			s.ClientCertificate = get("client_certificate")
			s.Application = get("application")
			cfg.Subscriptions = append(cfg.Subscriptions, s)
		}
		if pb.Name != plan.TypeKeyless && len(content.Blocks) == 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: No subscription", where),
				Detail:   fmt.Sprintf("A %s plan accepts only its subscriptions; add at least one subscription \"<id>\" { ... } block.", pb.Name),
				Subject:  pb.NameRange.Ptr(),
			})
		}
		if len(diags) == before {
			// The plan package's own checks; its messages never hold a
			// secret.
			if a, err := plan.Build(map[string][]plan.Config{"": {cfg}}, plan.Options{}); err != nil {
				msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("api %q > plan %q: ", "", pb.Name))
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Invalid plan", where),
					Detail:   upperFirst(msg) + ".",
					Subject:  pb.NameRange.Ptr(),
				})
			} else {
				for _, x := range a {
					x.Close()
				}
			}
		}
		out = append(out, cfg)
	}
	return out, diags
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// evalBounded evaluates an optional whole-number attribute of at least min.
func evalBounded(where, name string, a *hcl.Attribute, eval *hcl.EvalContext, min int) (int, bool, hcl.Diagnostics) {
	if a == nil {
		return 0, false, nil
	}
	v, diags := a.Expr.Value(eval)
	diags = prefixed(where, diags)
	if diags.HasErrors() || v.IsNull() {
		return 0, false, diags
	}
	nv, err := convert.Convert(v, cty.Number)
	if err != nil || !nv.IsKnown() || nv.IsNull() {
		return 0, false, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: Incorrect attribute value type", where),
			Detail:   fmt.Sprintf("%s is a whole number.", name),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	bf := nv.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || i < int64(min) || i > math.MaxInt32 {
		return 0, false, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: Invalid %s %s", where, name, bf.Text('f', -1)),
			Detail:   fmt.Sprintf("%s is a whole number from %d to %d.", name, min, math.MaxInt32),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	return int(i), true, diags
}

// limitAttrs are the attributes of gateway { limits }, with their unit.
var limitAttrs = []struct {
	name string
	ms   bool
	set  func(l *Limits, n int)
}{
	{"max_connections", false, func(l *Limits, n int) { l.MaxConnections = n }},
	{"max_connections_per_ip", false, func(l *Limits, n int) { l.MaxConnectionsPerIP = n }},
	{"max_header_bytes", false, func(l *Limits, n int) { l.MaxHeaderBytes = n }},
	{"max_request_body_bytes", false, func(l *Limits, n int) { l.MaxRequestBodyBytes = n }},
	{"read_timeout_ms", true, func(l *Limits, n int) { l.ReadTimeout = time.Duration(n) * time.Millisecond }},
	{"write_timeout_ms", true, func(l *Limits, n int) { l.WriteTimeout = time.Duration(n) * time.Millisecond }},
	{"idle_timeout_ms", true, func(l *Limits, n int) { l.IdleTimeout = time.Duration(n) * time.Millisecond }},
	{"websocket_max_message_bytes", false, func(l *Limits, n int) { l.WebSocketMaxMessageBytes = n }},
	{"plugin_call_timeout_ms", true, func(l *Limits, n int) { l.PluginCallTimeout = time.Duration(n) * time.Millisecond }},
}

// minHeaderBytes is the smallest max_header_bytes: a request line and the
// headers every browser sends take about 1 KiB.
const minHeaderBytes = 1024

// loadLimits decodes gateway { limits }.
func loadLimits(f *File, where string, body hcl.Body) hcl.Diagnostics {
	var names []string
	for _, a := range limitAttrs {
		names = append(names, a.name)
	}
	content, diags := body.Content(schemaOf(names))
	diags = prefixed(where, diags)
	if content == nil {
		return diags
	}
	for _, la := range limitAttrs {
		min := 1
		if la.name == "max_header_bytes" {
			min = minHeaderBytes
		}
		n, ok, d := evalBounded(where, la.name, content.Attributes[la.name], f.eval, min)
		diags = append(diags, d...)
		if ok {
			la.set(&f.Gateway.Limits, n)
		}
	}
	return diags
}

// loadAPILimits decodes api { limits }: only the body size is per API.
func loadAPILimits(f *File, where string, body hcl.Body) (int, hcl.Diagnostics) {
	content, diags := body.Content(schemaOf([]string{"max_request_body_bytes"}))
	diags = prefixed(where, diags)
	if content == nil {
		return 0, diags
	}
	n, ok, d := evalBounded(where, "max_request_body_bytes", content.Attributes["max_request_body_bytes"], f.eval, 1)
	diags = append(diags, d...)
	if !ok {
		return 0, diags
	}
	return n, diags
}

// loadTLS decodes gateway { tls } and loads its files, so a missing or
// mismatched key is reported by `sluice validate` too.
func loadTLS(f *File, where string, body hcl.Body, blockRange hcl.Range) hcl.Diagnostics {
	content, diags := body.Content(schemaOf([]string{"cert_file!", "key_file!", "client_ca_file", "client_auth"}))
	diags = prefixed(where, diags)
	if content == nil {
		return diags
	}
	t := &TLS{ClientAuth: ClientAuthNone}
	path := func(name string) (string, *hcl.Attribute) {
		a := content.Attributes[name]
		if a == nil {
			return "", nil
		}
		s, ok, d := evalString(where, a.Expr, f.eval)
		diags = append(diags, d...)
		if !ok {
			return "", a
		}
		return resolvePath(f.dir, s), a
	}
	var certAttr, keyAttr, caAttr *hcl.Attribute
	t.CertFile, certAttr = path("cert_file")
	t.KeyFile, keyAttr = path("key_file")
	t.ClientCAFile, caAttr = path("client_ca_file")
	if a := content.Attributes["client_auth"]; a != nil {
		s, ok, d := evalString(where, a.Expr, f.eval)
		diags = append(diags, d...)
		modes := []string{ClientAuthNone, ClientAuthRequest, ClientAuthRequire}
		if ok && !contains(modes, s) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid client_auth %q", where, s),
				Detail:   fmt.Sprintf("client_auth is one of %s.", quoteList(modes)),
				Subject:  a.Expr.Range().Ptr(),
			})
		} else if ok {
			t.ClientAuth = s
		}
	}
	if t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Cannot load the certificate and key", where),
				Detail:   fmt.Sprintf("%s. cert_file holds the PEM certificate chain, key_file its PEM private key.", unwrapPathError(err)),
				Subject:  certAttr.Expr.Range().Ptr(),
			})
			_ = keyAttr
		}
	}
	if t.ClientCAFile != "" {
		if _, err := LoadCertPool(t.ClientCAFile); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Cannot load client_ca_file", where),
				Detail:   err.Error() + ".",
				Subject:  caAttr.Expr.Range().Ptr(),
			})
		}
	} else if t.ClientAuth != ClientAuthNone {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: client_auth %q needs client_ca_file", where, t.ClientAuth),
			Detail:   "Client certificates are verified against the CAs in client_ca_file (PEM); name that file.",
			Subject:  blockRange.Ptr(),
		})
	}
	f.Gateway.TLS = t
	return diags
}

// LoadCertPool reads a PEM file of CA certificates.
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, unwrapPathError(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// checkMTLSPlans reports mtls plans on a gateway whose listener asks for no
// client certificate: they could never accept a request.
func checkMTLSPlans(f *File, ranges map[*API]hcl.Range) hcl.Diagnostics {
	if t := f.Gateway.TLS; t != nil && t.ClientAuth != ClientAuthNone {
		return nil
	}
	var diags hcl.Diagnostics
	apis := make([]*API, 0, len(ranges))
	for a := range ranges {
		apis = append(apis, a)
	}
	sort.Slice(apis, func(i, j int) bool { return ranges[apis[i]].Start.Byte < ranges[apis[j]].Start.Byte })
	for _, a := range apis {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("api %q > plan \"mtls\": The gateway asks for no client certificate", a.Name),
			Detail: `An mtls plan matches the client certificate of the TLS connection. Add gateway { tls { cert_file, key_file, ` +
				`client_ca_file, client_auth = "request" } } ("require" refuses clients without a certificate on every API).`,
			Subject: ranges[a].Ptr(),
		})
	}
	return diags
}
