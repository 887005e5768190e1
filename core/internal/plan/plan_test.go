package plan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// req builds a Request from header and query maps.
func req(headers, query map[string]string, certs ...*x509.Certificate) *Request {
	return &Request{
		Header: func(n string) string {
			for k, v := range headers {
				if strings.EqualFold(k, n) {
					return v
				}
			}
			return ""
		},
		Query:            func(n string) string { return query[n] },
		PeerCertificates: certs,
	}
}

func build(t *testing.T, apis map[string][]Config, opts Options) map[string]*Authenticator {
	t.Helper()
	a, err := Build(apis, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, x := range a {
			x.Close()
		}
	})
	return a
}

// selfSigned returns a certificate and its PEM, signed by parent (or
// itself when parent is nil).
func selfSigned(t *testing.T, cn string) (*x509.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestPlanMatching(t *testing.T) {
	acmeCert, acmePEM := selfSigned(t, "acme")
	otherCert, _ := selfSigned(t, "other")
	jwtCfg := Config{Type: TypeJWT, JWT: &JWTConfig{Signature: "HS256", Secret: strings.Repeat("s", 32)},
		Subscriptions: []Subscription{{ID: "mobile", ClientID: "mobile"}}}
	apis := map[string][]Config{
		"orders": {
			{Type: TypeAPIKey, Subscriptions: []Subscription{{ID: "acme", APIKey: "acme-key"}, {ID: "globex", APIKey: "globex-key", Application: "globex-app"}}},
			jwtCfg,
			{Type: TypeMTLS, Subscriptions: []Subscription{{ID: "billing", ClientCertificate: acmePEM}}},
			{Type: TypeKeyless},
		},
		"strict": {
			{Type: TypeAPIKey, Header: "X-Key", QueryParam: "k", Subscriptions: []Subscription{{ID: "s1", APIKey: "strict-key"}}},
		},
		"open": nil,
	}
	auth := build(t, apis, Options{})
	tok := sign(t, "HS256", []byte(strings.Repeat("s", 32)), "", map[string]any{"azp": "mobile"})

	cases := []struct {
		name, api      string
		r              *Request
		plan, sub, app string
		status         int
		stripH, stripQ string
	}{
		{name: "api key in header", api: "orders", r: req(map[string]string{"X-Gravitee-Api-Key": "acme-key"}, nil), plan: TypeAPIKey, sub: "acme", app: "acme", stripH: DefaultAPIKeyHeader, stripQ: DefaultAPIKeyQueryParam},
		{name: "api key in query", api: "orders", r: req(nil, map[string]string{"api-key": "globex-key"}), plan: TypeAPIKey, sub: "globex", app: "globex-app", stripQ: DefaultAPIKeyQueryParam},
		{name: "header wins over query", api: "orders", r: req(map[string]string{"X-Gravitee-Api-Key": "acme-key"}, map[string]string{"api-key": "nope"}), plan: TypeAPIKey, sub: "acme"},
		{name: "wrong api key is refused, not keyless", api: "orders", r: req(map[string]string{"X-Gravitee-Api-Key": "wrong"}, nil), status: 401},
		{name: "key of another api is forbidden", api: "orders", r: req(map[string]string{"X-Gravitee-Api-Key": "strict-key"}, nil), status: 403},
		{name: "custom header", api: "strict", r: req(map[string]string{"X-Key": "strict-key"}, nil), plan: TypeAPIKey, sub: "s1", stripH: "X-Key", stripQ: "k"},
		{name: "custom query", api: "strict", r: req(nil, map[string]string{"k": "strict-key"}), plan: TypeAPIKey, sub: "s1"},
		{name: "default header not read by a custom plan", api: "strict", r: req(map[string]string{"X-Gravitee-Api-Key": "strict-key"}, nil), status: 401},
		{name: "no credential without keyless", api: "strict", r: req(nil, nil), status: 401},
		{name: "bearer token", api: "orders", r: req(map[string]string{"Authorization": "Bearer " + tok}, nil), plan: TypeJWT, sub: "mobile"},
		{name: "bearer scheme is case-insensitive", api: "orders", r: req(map[string]string{"Authorization": "bearer " + tok}, nil), plan: TypeJWT, sub: "mobile"},
		{name: "access_token query", api: "orders", r: req(nil, map[string]string{"access_token": tok}), plan: TypeJWT, sub: "mobile", stripQ: AccessTokenQueryParam},
		{name: "basic auth is not a bearer token", api: "orders", r: req(map[string]string{"Authorization": "Basic YTpi"}, nil), plan: TypeKeyless},
		{name: "client certificate", api: "orders", r: req(nil, nil, acmeCert), plan: TypeMTLS, sub: "billing"},
		{name: "unsubscribed certificate", api: "orders", r: req(nil, nil, otherCert), status: 403},
		{name: "api key plan comes first", api: "orders", r: req(map[string]string{"X-Gravitee-Api-Key": "acme-key"}, nil, otherCert), plan: TypeAPIKey, sub: "acme"},
		{name: "keyless takes the rest", api: "orders", r: req(nil, nil), plan: TypeKeyless},
		{name: "no plans is keyless", api: "open", r: req(map[string]string{"X-Gravitee-Api-Key": "acme-key"}, nil), plan: TypeKeyless},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, d := auth[c.api].Authenticate(context.Background(), c.r)
			if c.status != 0 {
				if d == nil {
					t.Fatalf("accepted by %s/%s, want %d", res.Plan, res.Subscription, c.status)
				}
				if d.Status != c.status {
					t.Fatalf("status %d (%s), want %d", d.Status, d.Reason, c.status)
				}
				want := map[int]string{401: MsgUnauthorized, 403: MsgForbidden}[c.status]
				if d.Message != want {
					t.Fatalf("message %q, want %q", d.Message, want)
				}
				return
			}
			if d != nil {
				t.Fatalf("refused %d: %s", d.Status, d.Reason)
			}
			if res.Plan != c.plan || res.Subscription != c.sub {
				t.Fatalf("plan %s subscription %q, want %s %q", res.Plan, res.Subscription, c.plan, c.sub)
			}
			if c.app != "" && res.Application != c.app {
				t.Fatalf("application %q, want %q", res.Application, c.app)
			}
			if c.stripH != "" && (len(res.StripHeaders) != 1 || res.StripHeaders[0] != c.stripH) {
				t.Fatalf("strip headers %v, want %s", res.StripHeaders, c.stripH)
			}
			if c.stripQ != "" && (len(res.StripQuery) != 1 || res.StripQuery[0] != c.stripQ) {
				t.Fatalf("strip query %v, want %s", res.StripQuery, c.stripQ)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	_, certPEM := selfSigned(t, "x")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPub := pemPublic(t, &rsaKey.PublicKey)
	cases := map[string]Config{
		"unknown type":        {Type: "oauth2"},
		"api key no subs":     {Type: TypeAPIKey},
		"empty key":           {Type: TypeAPIKey, Subscriptions: []Subscription{{ID: "a"}}},
		"dup key":             {Type: TypeAPIKey, Subscriptions: []Subscription{{ID: "a", APIKey: "k"}, {ID: "b", APIKey: "k"}}},
		"jwt short secret":    {Type: TypeJWT, JWT: &JWTConfig{Signature: "HS256", Secret: "short"}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"jwt hs512 secret":    {Type: TypeJWT, JWT: &JWTConfig{Signature: "HS512", Secret: strings.Repeat("s", 32)}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"jwt two sources":     {Type: TypeJWT, JWT: &JWTConfig{Signature: "RS256", PublicKey: rsaPub, JWKSURL: "http://x"}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"jwt rs with secret":  {Type: TypeJWT, JWT: &JWTConfig{Signature: "RS256", Secret: strings.Repeat("s", 32)}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"jwt es with rsa key": {Type: TypeJWT, JWT: &JWTConfig{Signature: "ES256", PublicKey: rsaPub}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"jwt alg none":        {Type: TypeJWT, JWT: &JWTConfig{Signature: "none", PublicKey: rsaPub}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"jwt dup client id":   {Type: TypeJWT, JWT: &JWTConfig{Signature: "RS256", PublicKey: rsaPub}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}, {ID: "b", ClientID: "a"}}},
		"jwt bad pem":         {Type: TypeJWT, JWT: &JWTConfig{Signature: "RS256", PublicKey: "nope"}, Subscriptions: []Subscription{{ID: "a", ClientID: "a"}}},
		"mtls bad cert":       {Type: TypeMTLS, Subscriptions: []Subscription{{ID: "a", ClientCertificate: "nope"}}},
		"mtls dup cert":       {Type: TypeMTLS, Subscriptions: []Subscription{{ID: "a", ClientCertificate: certPEM}, {ID: "b", ClientCertificate: certPEM}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Build(map[string][]Config{"x": {c}}, Options{}); err == nil {
				t.Fatal("no error")
			} else if strings.Contains(err.Error(), strings.Repeat("s", 32)) {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

func pemPublic(t *testing.T, k any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
