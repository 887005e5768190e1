package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ---- keys and certificates, made by the test (never committed) ----

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate for cn: a server certificate for
// 127.0.0.1, or a client certificate.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// ---- tokens, signed by hand so the test does not share the gateway's library ----

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwtParts(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64url(h) + "." + b64url(c)
}

func signRS256(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	in := jwtParts(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64url(sig)
}

func signHS256(secret []byte, claims map[string]any) string {
	in := jwtParts(map[string]any{"alg": "HS256", "typ": "JWT"}, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64url(m.Sum(nil))
}

// jwksHandler serves the RSA public keys by kid.
type jwksHandler struct {
	mu   sync.Mutex
	keys map[string]*rsa.PublicKey
}

func (h *jwksHandler) set(kid string, k *rsa.PublicKey) {
	h.mu.Lock()
	h.keys[kid] = k
	h.mu.Unlock()
}

func (h *jwksHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var keys []map[string]string
	for kid, k := range h.keys {
		keys = append(keys, map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64url(k.N.Bytes()), "e": b64url(big.NewInt(int64(k.E)).Bytes())})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// ---- a gateway with a tls and limits block ----

const plansGatewayTemplate = `
gateway {
  listen       = "{{.Listen}}"
  admin_listen = "{{.Admin}}"
  plugin_dir   = "{{.PluginDir}}"
  tls {
    cert_file      = "server.pem"
    key_file       = "server-key.pem"
    client_ca_file = "clients-ca.pem"
    client_auth    = "request"
  }
  limits {
    read_timeout_ms = 2000
  }
}
{{if .Embedded}}
dev_kafka {
  listen   = "{{.Kafka}}"
  data_dir = "{{.DataDir}}"
  topics   = { {{range $k, $v := .Topics}}"{{$k}}" = {{$v}}, {{end}} }
}
{{end}}
{{.APIs}}
`

// startPlansGateway is StartGateway with TLS on the public listener; files
// maps names in the gateway's directory to their content.
func startPlansGateway(t *testing.T, apis string, topics map[string]int, files map[string][]byte) *Gateway {
	t.Helper()
	bin := binDir(t)
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := GatewayConfig{Listen: freeAddr(t), Admin: freeAddr(t), PluginDir: filepath.Join(bin, "plugins"), DataDir: filepath.Join(dir, "kafka"), Topics: topics}
	if ext := os.Getenv("SLUICE_KAFKA_BOOTSTRAP"); ext != "" {
		cfg.Kafka = ext
		createTopics(t, ext, topics)
	} else {
		cfg.Kafka = freeAddr(t)
		cfg.Embedded = true
	}
	apiText := new(strings.Builder)
	if err := template.Must(template.New("apis").Parse(apis)).Execute(apiText, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.APIs = apiText.String()
	text := new(strings.Builder)
	if err := template.Must(template.New("gw").Parse(plansGatewayTemplate)).Execute(text, cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{t: t, Dir: dir, Listen: cfg.Listen, Admin: cfg.Admin, Kafka: cfg.Kafka, logs: &syncBuffer{}, waitErr: make(chan error, 1), ConfigHCL: text.String()}
	g.cmd = exec.Command(filepath.Join(bin, "sluice"), "run", path)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.waitErr <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", g.logs.String())
		}
	})
	g.WaitReady(60 * time.Second)
	return g
}

// Secrets of the plans test; they must never come out of the gateway.
const (
	acmeKey   = "acme-4f1c2d9e8b7a6f5e4d3c2b1a09f8e7d6"
	globexKey = "globex-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	opsKey    = "ops-99887766554433221100ffeeddccbbaa"
	hmacKey   = "hmac-secret-0123456789abcdef0123456789abcdef"
)

const plansAPIs = `
api "keyed" {
  context_path = "/keyed"
  plan "api-key" {
    subscription "acme"   { api_key = env("PLANS_ACME_KEY") }
    subscription "globex" { api_key = env("PLANS_GLOBEX_KEY") }
  }
  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "sse" { qos = "auto" }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["plans-keyed"]
    }
    consumer {
      enabled           = true
      topics            = ["plans-split"]
      auto_offset_reset = "earliest"
    }
  }
}

api "tokens" {
  context_path = "/tokens"
  plan "jwt" {
    signature                = "RS256"
    jwks_url                 = "{{env "PLANS_JWKS_URL"}}"
    issuer                   = "https://id.example"
    audience                 = "orders"
    clock_skew_seconds       = 5
    jwks_min_refresh_seconds = 1
    subscription "mobile" { client_id = "mobile" }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["plans-open"]
    }
  }
}

api "hmac" {
  context_path = "/hmac"
  plan "jwt" {
    signature = "HS256"
    secret    = env("PLANS_HMAC_SECRET")
    subscription "batch" { client_id = "batch" }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["plans-open"]
    }
  }
}

api "certs" {
  context_path = "/certs"
  plan "mtls" {
    subscription "billing" { client_certificate = file("billing.pem") }
  }
  plan "api-key" {
    subscription "ops" { api_key = env("PLANS_OPS_KEY") }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["plans-open"]
    }
  }
}

api "open" {
  context_path = "/open"
  plan "keyless" {}
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["plans-open"]
    }
  }
}
`

// plansEnv is the running gateway and what its clients need.
type plansEnv struct {
	g                  *Gateway
	jwks               *jwksHandler
	k1, k2, other      *rsa.PrivateKey
	clientsCA, foreign *testCA
	billing, intruder  tls.Certificate
	outsider           tls.Certificate
	roots              *x509.CertPool
	serverKey          []byte

	mu          sync.Mutex
	errorBodies []string
	tokens      []string
}

func setupPlans(t *testing.T) *plansEnv {
	t.Helper()
	e := &plansEnv{jwks: &jwksHandler{keys: map[string]*rsa.PublicKey{}}}
	var err error
	for _, k := range []**rsa.PrivateKey{&e.k1, &e.k2, &e.other} {
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	e.jwks.set("k1", &e.k1.PublicKey)
	idp := httptest.NewServer(e.jwks)
	t.Cleanup(idp.Close)

	serverCA := newTestCA(t, "sluice test server CA")
	e.clientsCA = newTestCA(t, "sluice test clients CA")
	e.foreign = newTestCA(t, "another CA")
	_, serverPEM, serverKey := serverCA.issue(t, "gateway", true)
	e.serverKey = serverKey
	var billingPEM []byte
	e.billing, billingPEM, _ = e.clientsCA.issue(t, "billing", false)
	e.intruder, _, _ = e.clientsCA.issue(t, "intruder", false)
	e.outsider, _, _ = e.foreign.issue(t, "billing", false)
	e.roots = x509.NewCertPool()
	e.roots.AddCert(serverCA.cert)

	t.Setenv("PLANS_ACME_KEY", acmeKey)
	t.Setenv("PLANS_GLOBEX_KEY", globexKey)
	t.Setenv("PLANS_OPS_KEY", opsKey)
	t.Setenv("PLANS_HMAC_SECRET", hmacKey)
	apis := strings.ReplaceAll(plansAPIs, `{{env "PLANS_JWKS_URL"}}`, idp.URL)
	e.g = startPlansGateway(t, apis, map[string]int{"plans-keyed": 1, "plans-split": 2, "plans-open": 1}, map[string][]byte{
		"server.pem": serverPEM, "server-key.pem": serverKey, "clients-ca.pem": e.clientsCA.pem, "billing.pem": billingPEM,
	})
	return e
}

// client returns an HTTPS client presenting cert (none when nil).
func (e *plansEnv) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: e.roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

func (e *plansEnv) url(path string) string { return "https://" + e.g.Listen + path }

// post sends a POST and records failure bodies for the secrets check.
func (e *plansEnv) post(t *testing.T, c *http.Client, path, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader(body))
	req.Header.Set("Accept", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		e.mu.Lock()
		e.errorBodies = append(e.errorBodies, string(b))
		e.mu.Unlock()
	}
	return resp.StatusCode, string(b)
}

const (
	body401 = `{"message":"Unauthorized","http_status_code":401}`
	body403 = `{"message":"Forbidden","http_status_code":403}`
)

func TestPlans(t *testing.T) {
	e := setupPlans(t)
	c := e.client(nil)

	t.Run("api-key", func(t *testing.T) {
		cases := []struct {
			name, path string
			headers    map[string]string
			status     int
			body       string
		}{
			{"header", "/keyed", map[string]string{"X-Gravitee-Api-Key": acmeKey, "X-Probe": "by-header"}, 202, ""},
			{"query", "/keyed?api-key=" + globexKey, map[string]string{"X-Probe": "by-query"}, 202, ""},
			{"missing", "/keyed", nil, 401, body401},
			{"wrong", "/keyed", map[string]string{"X-Gravitee-Api-Key": "nope"}, 401, body401},
			{"wrong in query", "/keyed?api-key=nope", nil, 401, body401},
			{"key of another api", "/keyed", map[string]string{"X-Gravitee-Api-Key": opsKey}, 403, body403},
			{"key of another api, other way", "/certs", map[string]string{"X-Gravitee-Api-Key": acmeKey}, 403, body403},
			{"second plan of an api", "/certs", map[string]string{"X-Gravitee-Api-Key": opsKey}, 202, ""},
		}
		for _, tc := range cases {
			if status, body := e.post(t, c, tc.path, "m-"+tc.name, tc.headers); status != tc.status || (tc.body != "" && body != tc.body) {
				t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.body)
			}
		}
		// The records carry the request headers, but not the API key.
		recs := e.g.ReadRecords(t, "plans-keyed", 2, 20*time.Second)
		for _, r := range recs {
			for _, h := range r.Headers {
				if strings.EqualFold(h.Key, "X-Gravitee-Api-Key") || strings.Contains(string(h.Value), acmeKey) || strings.Contains(string(h.Value), globexKey) {
					t.Errorf("record %q carries the API key in header %s", r.Value, h.Key)
				}
			}
		}
	})

	t.Run("jwt", func(t *testing.T) {
		now := time.Now()
		good := func(extra map[string]any) map[string]any {
			m := map[string]any{"iss": "https://id.example", "aud": "orders", "azp": "mobile", "exp": now.Add(time.Hour).Unix()}
			for k, v := range extra {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return m
		}
		valid := signRS256(t, e.k1, "k1", good(nil))
		e.tokens = append(e.tokens, valid)
		none := jwtParts(map[string]any{"alg": "none", "typ": "JWT"}, good(nil)) + "."
		confused := func() string { // HS256 keyed with the public key's PEM
			der, _ := x509.MarshalPKIXPublicKey(&e.k1.PublicKey)
			return signHS256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), good(nil))
		}()
		cases := []struct {
			name, token string
			status      int
		}{
			{"valid", valid, 202},
			{"missing", "", 401},
			{"expired", signRS256(t, e.k1, "k1", good(map[string]any{"exp": now.Add(-time.Hour).Unix()})), 401},
			{"not yet valid", signRS256(t, e.k1, "k1", good(map[string]any{"nbf": now.Add(time.Hour).Unix()})), 401},
			{"bad signature", signRS256(t, e.other, "k1", good(nil)), 401},
			{"wrong audience", signRS256(t, e.k1, "k1", good(map[string]any{"aud": "billing"})), 401},
			{"wrong issuer", signRS256(t, e.k1, "k1", good(map[string]any{"iss": "https://evil.example"})), 401},
			{"alg none", none, 401},
			{"algorithm confusion", confused, 401},
			{"unknown client id", signRS256(t, e.k1, "k1", good(map[string]any{"azp": "intruder"})), 403},
			{"unknown kid", signRS256(t, e.other, "ghost", good(nil)), 401},
		}
		for _, tc := range cases {
			h := map[string]string{}
			if tc.token != "" {
				h["Authorization"] = "Bearer " + tc.token
			}
			status, body := e.post(t, c, "/tokens", "t-"+tc.name, h)
			want := map[int]string{401: body401, 403: body403}[tc.status]
			if status != tc.status || (want != "" && body != want) {
				t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
			}
		}
		// The identity provider rotates to a new key: a token naming it
		// makes the gateway download the set again (at most once a second).
		e.jwks.set("k2", &e.k2.PublicKey)
		rotated := signRS256(t, e.k2, "k2", good(nil))
		e.tokens = append(e.tokens, rotated)
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, body := e.post(t, c, "/tokens", "rotated", map[string]string{"Authorization": "Bearer " + rotated})
			if status == 202 {
				break
			}
			if status != 401 || time.Now().After(deadline) {
				t.Fatalf("token signed with the rotated key: %d %s", status, body)
			}
			time.Sleep(200 * time.Millisecond)
		}

		hs := signHS256([]byte(hmacKey), map[string]any{"client_id": "batch"})
		e.tokens = append(e.tokens, hs)
		if status, body := e.post(t, c, "/hmac", "hs", map[string]string{"Authorization": "Bearer " + hs}); status != 202 {
			t.Errorf("HS256: %d %s", status, body)
		}
		if status, _ := e.post(t, c, "/hmac", "hs", map[string]string{"Authorization": "Bearer " + signHS256([]byte("wrong-secret-wrong-secret-wrong!!"), map[string]any{"client_id": "batch"})}); status != 401 {
			t.Errorf("HS256 with the wrong secret: %d", status)
		}
		if status, _ := e.post(t, c, "/hmac?access_token="+hs, "hs-query", nil); status != 202 {
			t.Errorf("access_token query parameter: %d", status)
		}
	})

	t.Run("mtls", func(t *testing.T) {
		if status, body := e.post(t, e.client(&e.billing), "/certs", "c", nil); status != 202 {
			t.Errorf("subscribed certificate: %d %s", status, body)
		}
		if status, body := e.post(t, e.client(&e.intruder), "/certs", "c", nil); status != 403 || body != body403 {
			t.Errorf("certificate of the right CA without a subscription: %d %s", status, body)
		}
		if status, body := e.post(t, c, "/certs", "c", nil); status != 401 || body != body401 {
			t.Errorf("no certificate: %d %s", status, body)
		}
		// Signed by another CA (with the subscribed subject): the handshake
		// fails, no request is served.
		// GetClientCertificate sends it even though the gateway names
		// other acceptable CAs (Go's client would otherwise send none).
		outsider := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &e.outsider, nil }}}}
		req, _ := http.NewRequest(http.MethodPost, e.url("/certs"), strings.NewReader("c"))
		if resp, err := outsider.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("certificate of another CA: %d, want a refused handshake", resp.StatusCode)
		}
		// Keyless APIs still serve clients with or without a certificate.
		if status, _ := e.post(t, e.client(&e.billing), "/open", "o", nil); status != 202 {
			t.Errorf("keyless with a certificate: %d", status)
		}
	})

	t.Run("two SSE readers with one API key share a consumer group", func(t *testing.T) {
		testSharedGroup(t, e)
	})

	t.Run("20 MB body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url("/open"), bytes.NewReader(make([]byte, 20<<20)))
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("20 MB POST: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || string(b) != `{"message":"Request Entity Too Large","http_status_code":413}` {
			t.Fatalf("20 MB POST: %d %s", resp.StatusCode, b)
		}
		if status, body := e.post(t, c, "/open", "after the large body", nil); status != 202 {
			t.Fatalf("the gateway stopped serving: %d %s", status, body)
		}
	})

	t.Run("slowloris", func(t *testing.T) {
		conn, err := tls.Dial("tcp", e.g.Listen, &tls.Config{RootCAs: e.roots})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// One header byte at a time, until the gateway cuts the connection.
		go func() {
			if _, err := io.WriteString(conn, "POST /open HTTP/1.1\r\nHost: x\r\n"); err != nil {
				return
			}
			for {
				if _, err := conn.Write([]byte("X")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		// Another client is served meanwhile.
		for i := 0; i < 5; i++ {
			if status, body := e.post(t, c, "/open", fmt.Sprintf("while slow %d", i), nil); status != 202 {
				t.Fatalf("other client: %d %s", status, body)
			}
		}
		// The slow connection is answered 408 and closed once its read
		// timeout (2 s here) is over; the bound below only stops a broken
		// gateway from hanging the test.
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(conn)
		var nerr net.Error
		if err != nil && errors.As(err, &nerr) && nerr.Timeout() {
			t.Fatalf("the slow client was not cut off: %v", err)
		}
		if len(got) > 0 && !strings.Contains(string(got), "408") {
			t.Errorf("the slow client got %q", got)
		}
	})

	t.Run("secrets never leak", func(t *testing.T) {
		var where []string
		sources := map[string]string{"logs": e.g.Logs()}
		for _, p := range []string{"/apis", "/metrics"} {
			resp, err := http.Get("http://" + e.g.Admin + p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			sources[p] = string(b)
		}
		if !strings.Contains(sources["/apis"], `"api_key":"(sensitive)"`) || !strings.Contains(sources["/apis"], `"secret":"(sensitive)"`) {
			t.Errorf("/apis does not show the secrets as (sensitive):\n%s", sources["/apis"])
		}
		e.mu.Lock()
		sources["error bodies"] = strings.Join(e.errorBodies, "\n")
		e.mu.Unlock()
		secrets := map[string]string{"acme key": acmeKey, "globex key": globexKey, "ops key": opsKey, "hmac secret": hmacKey}
		for i, tok := range e.tokens {
			secrets[fmt.Sprintf("token %d", i)] = tok
			// The signature part alone is as good as the token.
			secrets[fmt.Sprintf("token %d signature", i)] = tok[strings.LastIndexByte(tok, '.')+1:]
		}
		keyLines := strings.Split(strings.TrimSpace(string(e.serverKey)), "\n")
		secrets["server private key"] = keyLines[1]
		for src, text := range sources {
			for name, s := range secrets {
				if strings.Contains(text, s) {
					where = append(where, name+" in "+src)
				}
			}
		}
		if len(where) > 0 {
			t.Fatalf("secrets leaked: %s", strings.Join(where, ", "))
		}
	})
}

// testSharedGroup connects two SSE readers with the same API key: they are
// one consumer group (the subscription id), so the records are split
// between them and none is delivered twice.
func testSharedGroup(t *testing.T, e *plansEnv) {
	const total = 20
	var mu sync.Mutex
	seen := map[string]int{}
	perReader := make([]int, 2)
	ready := make(chan struct{}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url("/keyed"), nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Gravitee-Api-Key", acmeKey)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("reader %d: %v %v", i, err, resp)
		}
		if got := resp.Header.Get("X-Gravitee-Client-Identifier"); got != "acme" {
			t.Errorf("reader %d: client identifier %q, want the subscription id", i, got)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer resp.Body.Close()
			r := &SSEReader{r: bufio.NewReader(resp.Body)}
			for {
				ev, err := r.NextEvent()
				if err != nil {
					return
				}
				if strings.HasPrefix(ev, "retry:") {
					ready <- struct{}{}
					continue
				}
				for _, line := range strings.Split(ev, "\n") {
					if v, ok := strings.CutPrefix(line, "data: "); ok {
						mu.Lock()
						seen[v]++
						perReader[i]++
						mu.Unlock()
					}
				}
			}
		}(i)
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("reader %d never became ready", i)
		}
	}
	// Both readers are members of the group named after the subscription.
	adm := kadm.NewClient(e.g.Kgo(t))
	deadline := time.Now().Add(30 * time.Second)
	for {
		groups, err := adm.DescribeGroups(context.Background(), "acme")
		if err == nil {
			if g, ok := groups["acme"]; ok && g.State == "Stable" && len(g.Members) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group acme never had both readers: %v %v", groups, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var recs []*kgo.Record
	for i := 0; i < total; i++ {
		recs = append(recs, &kgo.Record{Topic: "plans-split", Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("s%02d", i))})
	}
	e.g.Produce(t, recs...)
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n, a, b := len(seen), perReader[0], perReader[1]
		mu.Unlock()
		if n == total && a+b == total {
			break
		}
		if time.Now().After(deadline) || a+b > total {
			t.Fatalf("%d distinct of %d records, %d and %d per reader", n, total, a, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if perReader[0] == 0 || perReader[1] == 0 {
		t.Fatalf("the records were not split: %v", perReader)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", v, n)
		}
	}
}

// SIGHUP reloads the listener's certificate: a connection opened before
// keeps working, new handshakes get the new certificate.
func TestPlansTLSReloadOnSIGHUP(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old server CA"), newTestCA(t, "new server CA")
	clientsCA := newTestCA(t, "clients CA")
	_, oldCert, oldKey := oldCA.issue(t, "gateway", true)
	_, newCert, newKey := newCA.issue(t, "gateway", true)
	g := startPlansGateway(t, `
api "open" {
  context_path = "/open"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["reload-open"]
    }
  }
}`, map[string]int{"reload-open": 1}, map[string][]byte{
		"server.pem": oldCert, "server-key.pem": oldKey, "clients-ca.pem": clientsCA.pem,
	})
	pool := func(ca *testCA) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(ca.cert)
		return p
	}
	postOn := func(c *http.Client) (int, bool, error) {
		reused := false
		req, _ := http.NewRequest(http.MethodPost, "https://"+g.Listen+"/open", strings.NewReader("m"))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := c.Do(req)
		if err != nil {
			return 0, false, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, reused, nil
	}
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(oldCA)}}}
	if status, _, err := postOn(kept); err != nil || status != 202 {
		t.Fatalf("before the reload: %d %v", status, err)
	}

	if err := os.WriteFile(filepath.Join(g.Dir, "server.pem"), newCert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.Dir, "server-key.pem"), newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(g.Logs(), "gateway certificates reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", g.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}

	if status, reused, err := postOn(kept); err != nil || status != 202 || !reused {
		t.Fatalf("the connection opened before the reload: %d reused=%v %v", status, reused, err)
	}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(newCA)}, DisableKeepAlives: true}}
	if status, _, err := postOn(fresh); err != nil || status != 202 {
		t.Fatalf("a new connection trusting the new certificate: %d %v", status, err)
	}
	stale := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(oldCA)}, DisableKeepAlives: true}}
	if _, _, err := postOn(stale); err == nil {
		t.Fatal("a new connection still got the old certificate")
	}
}
