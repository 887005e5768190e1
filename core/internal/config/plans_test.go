package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/core/internal/plan"
)

// writeCert writes a self-signed certificate and its key as PEM files in
// dir; keys are made by the test, never committed.
func writeCert(t *testing.T, dir, name string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestPlansAndTLS(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "server")
	writeCert(t, dir, "ca")
	writeCert(t, dir, "billing")
	t.Setenv("SLUICE_TEST_ACME_KEY", "acme-secret-key")
	src := `
gateway {
  tls {
    cert_file      = "server.pem"
    key_file       = "server-key.pem"
    client_ca_file = "ca.pem"
    client_auth    = "request"
  }
  limits {
    max_connections_per_ip = 7
    read_timeout_ms        = 1500
    max_request_body_bytes = 2048
  }
}

api "orders" {
  context_path = "/orders"
  plan "api-key" {
    query_param = "key"
    subscription "acme" { api_key = env("SLUICE_TEST_ACME_KEY") }
  }
  plan "jwt" {
    signature          = "RS256"
    jwks_url           = "https://id.example/.well-known/jwks.json"
    issuer             = "https://id.example"
    audience           = "orders"
    client_id_claim    = "client_id"
    clock_skew_seconds = 30
    subscription "mobile" {
      client_id   = "mobile"
      application = "mobile-app"
    }
  }
  plan "mtls" {
    subscription "billing-svc" { client_certificate = file("billing.pem") }
  }
  plan "keyless" {}
  limits { max_request_body_bytes = 1024 }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "other" {
  context_path = "/other"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
`
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	f := mustLoad(t, path)
	tlsWant := &TLS{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"), ClientCAFile: filepath.Join(dir, "ca.pem"), ClientAuth: "request"}
	if *f.Gateway.TLS != *tlsWant {
		t.Errorf("tls = %+v", f.Gateway.TLS)
	}
	l := f.Gateway.Limits
	if l.MaxConnectionsPerIP != 7 || l.ReadTimeout != 1500*time.Millisecond || l.MaxRequestBodyBytes != 2048 || l.MaxConnections != DefaultMaxConnections {
		t.Errorf("limits = %+v", l)
	}
	orders, other := f.APIs[0], f.APIs[1]
	if orders.MaxRequestBodyBytes != 1024 || other.MaxRequestBodyBytes != 2048 {
		t.Errorf("body limits %d %d", orders.MaxRequestBodyBytes, other.MaxRequestBodyBytes)
	}
	if got := planTypes(orders); strings.Join(got, ",") != "api-key,jwt,mtls,keyless" {
		t.Fatalf("plans %v", got)
	}
	ak := orders.Plans[0]
	if ak.QueryParam != "key" || ak.Header != "" || ak.Subscriptions[0].APIKey != "acme-secret-key" {
		t.Errorf("api-key plan %+v", ak)
	}
	j := orders.Plans[1].JWT
	if j.Signature != "RS256" || j.ClockSkew != 30*time.Second || j.ClientIDClaim != "client_id" || j.Audience != "orders" {
		t.Errorf("jwt plan %+v", j)
	}
	if s := orders.Plans[1].Subscriptions[0]; s.ClientID != "mobile" || s.Application != "mobile-app" {
		t.Errorf("jwt subscription %+v", s)
	}
	if !strings.Contains(orders.Plans[2].Subscriptions[0].ClientCertificate, "BEGIN CERTIFICATE") {
		t.Errorf("mtls certificate not read")
	}
	if _, err := plan.Build(map[string][]plan.Config{"orders": orders.Plans}, plan.Options{}); err != nil {
		t.Errorf("the run would refuse what validate accepts: %v", err)
	}
}

// A diagnostic about a plan never shows the secret it is about.
func TestPlanDiagnosticsHideSecrets(t *testing.T) {
	dir := t.TempDir()
	const secret = "hunter2-short"
	t.Setenv("SLUICE_TEST_JWT_SECRET", secret)
	src := `
api "a" {
  context_path = "/a"
  plan "jwt" {
    signature = "HS512"
    secret    = env("SLUICE_TEST_JWT_SECRET")
    subscription "m" { client_id = "m" }
  }
  plan "api-key" {
    subscription "x" { api_key = 42 }
    subscription "y" { api_key = ["` + secret + `"] }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
`
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLoader()
	_, diags := l.Load(path)
	if !diags.HasErrors() {
		t.Fatal("no diagnostics")
	}
	for _, d := range diags {
		if strings.Contains(d.Summary+d.Detail, secret) {
			t.Errorf("diagnostic shows the secret: %s: %s", d.Summary, d.Detail)
		}
	}
	if !strings.Contains(render(l, diags), "HS512 needs at least 64") {
		t.Errorf("the short secret is not reported:\n%s", render(l, diags))
	}
}
