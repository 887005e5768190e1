package plan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// sign makes a token with alg, key and kid ("" for none).
func sign(t *testing.T, alg string, key any, kid string, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims(claims))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned returns a token with alg "none" and no signature.
func unsigned(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func bearer(tok string) *Request {
	return req(map[string]string{"Authorization": "Bearer " + tok}, nil)
}

func TestJWTValidation(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	now := clk.now()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	secrets := map[string][]byte{
		"HS256": []byte(strings.Repeat("a", 32)),
		"HS384": []byte(strings.Repeat("b", 48)),
		"HS512": []byte(strings.Repeat("c", 64)),
	}
	rsaPEM := pemPublic(t, &rsaKey.PublicKey)
	good := map[string]any{"azp": "mobile", "iss": "https://id.example", "aud": "orders", "exp": now.Add(time.Minute).Unix()}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cfg := func(alg string) *JWTConfig {
		c := &JWTConfig{Signature: alg, Issuer: "https://id.example", Audience: "orders", ClockSkew: 30 * time.Second}
		switch {
		case strings.HasPrefix(alg, "HS"):
			c.Secret = string(secrets[alg])
		case strings.HasPrefix(alg, "ES256"):
			c.PublicKey = pemPublic(t, &ec256.PublicKey)
		case strings.HasPrefix(alg, "ES384"):
			c.PublicKey = pemPublic(t, &ec384.PublicKey)
		case strings.HasPrefix(alg, "ES512"):
			c.PublicKey = pemPublic(t, &ec521.PublicKey)
		default:
			c.PublicKey = rsaPEM
		}
		return c
	}
	signer := map[string]any{
		"HS256": secrets["HS256"], "HS384": secrets["HS384"], "HS512": secrets["HS512"],
		"RS256": rsaKey, "RS384": rsaKey, "RS512": rsaKey, "PS256": rsaKey, "PS384": rsaKey, "PS512": rsaKey,
		"ES256": ec256, "ES384": ec384, "ES512": ec521,
	}
	type tc struct {
		name   string
		plan   *JWTConfig
		token  string
		status int // 0 = accepted
		sub    string
	}
	var cases []tc
	for _, alg := range Signatures {
		cases = append(cases, tc{name: alg + " accepted", plan: cfg(alg), token: sign(t, alg, signer[alg], "", good), sub: "mobile-sub"})
	}
	cases = append(cases,
		tc{name: "alg none refused", plan: cfg("RS256"), token: unsigned(good), status: 401},
		tc{name: "alg none refused by an HS plan", plan: cfg("HS256"), token: unsigned(good), status: 401},
		// The classic confusion: the RSA public key (which is public) used
		// as an HMAC secret.
		tc{name: "algorithm confusion HS256 with the public key", plan: cfg("RS256"), token: sign(t, "HS256", []byte(rsaPEM), "", good), status: 401},
		tc{name: "RS384 token on an RS256 plan", plan: cfg("RS256"), token: sign(t, "RS384", rsaKey, "", good), status: 401},
		tc{name: "PS256 token on an RS256 plan", plan: cfg("RS256"), token: sign(t, "PS256", rsaKey, "", good), status: 401},
		tc{name: "bad signature", plan: cfg("RS256"), token: sign(t, "RS256", otherRSA, "", good), status: 401},
		tc{name: "HS256 wrong secret", plan: cfg("HS256"), token: sign(t, "HS256", []byte(strings.Repeat("z", 32)), "", good), status: 401},
		tc{name: "tampered payload", plan: cfg("HS256"), token: tamper(sign(t, "HS256", secrets["HS256"], "", good)), status: 401},
		tc{name: "malformed", plan: cfg("HS256"), token: "not.a.token", status: 401},
		tc{name: "expired beyond skew", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("exp", now.Add(-31*time.Second).Unix())), status: 401},
		tc{name: "expired within skew", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("exp", now.Add(-29*time.Second).Unix())), sub: "mobile-sub"},
		tc{name: "no exp", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("exp", nil)), sub: "mobile-sub"},
		tc{name: "nbf in the future beyond skew", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("nbf", now.Add(31*time.Second).Unix())), status: 401},
		tc{name: "nbf within skew", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("nbf", now.Add(29*time.Second).Unix())), sub: "mobile-sub"},
		tc{name: "wrong issuer", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("iss", "https://evil.example")), status: 401},
		tc{name: "missing issuer", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("iss", nil)), status: 401},
		tc{name: "wrong audience", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("aud", "billing")), status: 401},
		tc{name: "audience list", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("aud", []string{"billing", "orders"})), sub: "mobile-sub"},
		tc{name: "issuer and audience unchecked when not configured", plan: &JWTConfig{Signature: "HS256", Secret: string(secrets["HS256"])}, token: sign(t, "HS256", secrets["HS256"], "", with("iss", "x")), sub: "mobile-sub"},
		tc{name: "unknown client id is forbidden", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("azp", "intruder")), status: 403},
		tc{name: "no client id claim is forbidden", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", with("azp", nil)), status: 403},
	)
	// The fallback case proper: azp absent, client_id present.
	fallback := with("azp", nil)
	fallback["client_id"] = "mobile"
	cases = append(cases, tc{name: "client_id used when azp is absent", plan: cfg("HS256"), token: sign(t, "HS256", secrets["HS256"], "", fallback), sub: "mobile-sub"})
	custom := cfg("HS256")
	custom.ClientIDClaim = "sub"
	cases = append(cases,
		tc{name: "custom client id claim", plan: custom, token: sign(t, "HS256", secrets["HS256"], "", with("sub", "mobile")), sub: "mobile-sub"},
		tc{name: "custom claim ignores azp", plan: custom, token: sign(t, "HS256", secrets["HS256"], "", good), status: 403},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := build(t, map[string][]Config{"orders": {{Type: TypeJWT, JWT: c.plan, Subscriptions: []Subscription{{ID: "mobile-sub", ClientID: "mobile"}}}}}, Options{Now: clk.now})
			res, d := auth["orders"].Authenticate(context.Background(), bearer(c.token))
			if c.status != 0 {
				if d == nil || d.Status != c.status {
					t.Fatalf("got %+v %+v, want status %d", res, d, c.status)
				}
				return
			}
			if d != nil {
				t.Fatalf("refused: %d %s", d.Status, d.Reason)
			}
			if res.Subscription != c.sub || res.Plan != TypeJWT {
				t.Fatalf("accepted as %s/%s, want jwt/%s", res.Plan, res.Subscription, c.sub)
			}
			if res.Claims == nil {
				t.Fatal("no claims")
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	var m map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &m)
	m["azp"] = "admin"
	b, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// jwksServer serves a JWK set the test changes, and counts downloads.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  map[string]any // kid -> public key
	down  atomic.Bool
	count atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{keys: map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		set := jwkset.JWKSMarshal{}
		for kid, k := range s.keys {
			j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
			if err != nil {
				t.Error(err)
				return
			}
			set.Keys = append(set.Keys, j.Marshal())
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(kid string, k any) {
	s.mu.Lock()
	s.keys[kid] = k
	s.mu.Unlock()
}

func TestJWKS(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	k3, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv := newJWKSServer(t)
	srv.set("k1", &k1.PublicKey)
	auth := build(t, map[string][]Config{"a": {{Type: TypeJWT,
		JWT:           &JWTConfig{Signature: "RS256", JWKSURL: srv.URL, JWKSCacheTTL: time.Minute, JWKSMinRefreshInterval: 10 * time.Second},
		Subscriptions: []Subscription{{ID: "s", ClientID: "c"}}}}}, Options{Now: clk.now})["a"]
	claims := map[string]any{"azp": "c"}
	try := func(key *rsa.PrivateKey, kid string) *Denial {
		t.Helper()
		_, d := auth.Authenticate(context.Background(), bearer(sign(t, "RS256", key, kid, claims)))
		return d
	}

	if d := try(k1, "k1"); d != nil {
		t.Fatalf("k1 refused: %s", d.Reason)
	}
	if n := srv.count.Load(); n != 1 {
		t.Fatalf("%d downloads, want 1", n)
	}
	if d := try(k1, "k1"); d != nil || srv.count.Load() != 1 {
		t.Fatalf("cached key: %v, %d downloads", d, srv.count.Load())
	}
	// Unknown kid: rate-limited while the last download is recent.
	srv.set("k2", &k2.PublicKey)
	clk.add(5 * time.Second)
	if d := try(k2, "k2"); d == nil || d.Status != 401 || srv.count.Load() != 1 {
		t.Fatalf("unknown kid inside the refresh interval: %+v, %d downloads", d, srv.count.Load())
	}
	// After the interval, an unknown kid triggers a download (key rotation).
	clk.add(6 * time.Second)
	if d := try(k2, "k2"); d != nil || srv.count.Load() != 2 {
		t.Fatalf("rotated key: %+v, %d downloads", d, srv.count.Load())
	}
	// A kid nobody issued is refused.
	clk.add(11 * time.Second)
	if d := try(k3, "ghost"); d == nil || d.Status != 401 {
		t.Fatalf("ghost kid accepted")
	}
	// A known kid signed by another key is refused.
	if d := try(k3, "k1"); d == nil || d.Status != 401 {
		t.Fatalf("k1 kid with another key accepted")
	}
	// The identity provider goes down and the cache expires: the held keys
	// keep serving.
	srv.down.Store(true)
	clk.add(2 * time.Minute)
	before := srv.count.Load()
	if d := try(k1, "k1"); d != nil {
		t.Fatalf("stale key refused while the issuer is down: %s", d.Reason)
	}
	if srv.count.Load() != before+1 {
		t.Fatalf("no download attempted after expiry")
	}
	// Further requests inside the interval do not hammer the issuer.
	for i := 0; i < 5; i++ {
		if d := try(k2, "k2"); d != nil {
			t.Fatalf("stale k2 refused: %s", d.Reason)
		}
	}
	if srv.count.Load() != before+1 {
		t.Fatalf("%d downloads while down, want 1", srv.count.Load()-before)
	}
	// Back up: the next download after the interval replaces the set.
	srv.down.Store(false)
	srv.mu.Lock()
	delete(srv.keys, "k1")
	srv.mu.Unlock()
	clk.add(11 * time.Second)
	if d := try(k1, "k1"); d == nil {
		t.Fatalf("k1 accepted after the issuer removed it")
	}
}

func TestJWKSFirstDownloadFails(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv := newJWKSServer(t)
	srv.set("k1", &k1.PublicKey)
	srv.down.Store(true)
	auth := build(t, map[string][]Config{"a": {{Type: TypeJWT,
		JWT:           &JWTConfig{Signature: "RS256", JWKSURL: srv.URL},
		Subscriptions: []Subscription{{ID: "s", ClientID: "c"}}}}}, Options{Now: clk.now})["a"]
	tok := sign(t, "RS256", k1, "k1", map[string]any{"azp": "c"})
	if _, d := auth.Authenticate(context.Background(), bearer(tok)); d == nil || d.Status != 401 {
		t.Fatal("accepted without a key set")
	}
	srv.down.Store(false)
	clk.add(DefaultJWKSMinRefreshInterval)
	if _, d := auth.Authenticate(context.Background(), bearer(tok)); d != nil {
		t.Fatalf("refused once the issuer is up: %s", d.Reason)
	}
}

func TestJWKSTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	auth := build(t, map[string][]Config{"a": {{Type: TypeJWT,
		JWT:           &JWTConfig{Signature: "RS256", JWKSURL: srv.URL, JWKSTimeout: time.Millisecond},
		Subscriptions: []Subscription{{ID: "s", ClientID: "c"}}}}}, Options{})["a"]
	// The server never answers; the download gives up and the token is
	// refused instead of the request hanging.
	_, d := auth.Authenticate(context.Background(), bearer(sign(t, "RS256", k1, "k1", map[string]any{"azp": "c"})))
	if d == nil || d.Status != 401 {
		t.Fatalf("got %+v", d)
	}
}

func TestJWKSParse(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(key any, kid string, alg jwkset.ALG, use jwkset.USE) jwkset.JWKMarshal {
		j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: use}, Marshal: jwkset.JWKMarshalOptions{Private: true}})
		if err != nil {
			t.Fatal(err)
		}
		return j.Marshal()
	}
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{
		mk(&k1.PublicKey, "rsa", jwkset.AlgRS256, jwkset.UseSig),
		mk(&ec.PublicKey, "ec", "", ""),
		mk([]byte(strings.Repeat("k", 32)), "hmac", jwkset.AlgHS256, jwkset.UseSig),
		mk(&k1.PublicKey, "enc", "", jwkset.UseEnc),
	}}
	b, _ := json.Marshal(set)
	keys, err := parseJWKS(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys["hmac"]; ok {
		t.Error("a symmetric key from a public key set is used")
	}
	if _, ok := keys["enc"]; ok {
		t.Error("an encryption key is used for signatures")
	}
	if keys["rsa"].alg != "RS256" || keys["ec"].key == nil {
		t.Errorf("keys %v", keys)
	}
	if _, err := parseJWKS([]byte(`{"keys":[]}`), Options{}); err == nil {
		t.Error("an empty set is accepted")
	}
	if _, err := parseJWKS([]byte(`nope`), Options{}); err == nil {
		t.Error("garbage is accepted")
	}

	// A key whose JWK alg differs from the plan's is refused.
	p := &jwtPlan{cfg: JWTConfig{Signature: "RS384"}, set: staticJWKS(keys)}
	tok, _ := jwt.Parse(sign(t, "RS256", k1, "rsa", map[string]any{}), func(*jwt.Token) (any, error) { return &k1.PublicKey, nil })
	if _, err := p.key(context.Background(), tok); err == nil {
		t.Error("an RS256 key verifies RS384")
	}
}
