package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// pki is a test CA with a server and a client certificate.
type pki struct {
	ca, server, client *x509.Certificate
	caKey              *ecdsa.PrivateKey
	serverKey          *ecdsa.PrivateKey
	clientKey          *rsa.PrivateKey
	caPEM              []byte
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	p := &pki{}
	var err error
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.ca = mkCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}, nil, &p.caKey.PublicKey, p.caKey)
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw})
	p.serverKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.server = mkCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}, p.ca, &p.serverKey.PublicKey, p.caKey)
	if p.clientKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	p.client = mkCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}, p.ca, &p.clientKey.PublicKey, p.caKey)
	return p
}

func mkCert(t *testing.T, tmpl, parent *x509.Certificate, pub any, signer any) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serverTLS is the broker side: server certificate, client certificates
// required when mutual is set.
func (p *pki) serverTLS(mutual bool) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{p.server.Raw}, PrivateKey: p.serverKey}}}
	if mutual {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	return cfg
}

func (p *pki) clientKeyPEM(t *testing.T) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (p *pki) clientCertPEM() []byte {
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.client.Raw}), p.caPEM...)
}

func (p *pki) truststoreP12(t *testing.T, password string) []byte {
	b, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{p.ca}, password)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *pki) keystoreP12(t *testing.T, password string) []byte {
	b, err := pkcs12.Modern.Encode(p.clientKey, p.client, []*x509.Certificate{p.ca}, password)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *pki) truststoreJKS(t *testing.T, password string) []byte {
	ks := keystore.New()
	if err := ks.SetTrustedCertificateEntry("ca", keystore.TrustedCertificateEntry{CreationTime: time.Now(),
		Certificate: keystore.Certificate{Type: "X509", Content: p.ca.Raw}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(password)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (p *pki) keystoreJKS(t *testing.T, storePass, keyPass string) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	ks := keystore.New()
	if err := ks.SetPrivateKeyEntry("client", keystore.PrivateKeyEntry{CreationTime: time.Now(), PrivateKey: der,
		CertificateChain: []keystore.Certificate{{Type: "X509", Content: p.client.Raw}, {Type: "X509", Content: p.ca.Raw}}}, []byte(keyPass)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(storePass)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, name string, data []byte) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTrustStore(t *testing.T) {
	p := newPKI(t, "trust")
	other := newPKI(t, "other")
	b64 := base64.StdEncoding.EncodeToString
	tests := map[string]struct {
		store   StoreConfig
		none    bool
		err     string
		notOurs bool
	}{
		"no store":                  {store: StoreConfig{}, none: true},
		"type NONE":                 {store: StoreConfig{Type: "NONE", Location: "/nonexistent"}, none: true},
		"PEM file":                  {store: StoreConfig{Type: "PEM", Location: writeFile(t, "ca.pem", p.caPEM)}},
		"PEM inline":                {store: StoreConfig{Type: "PEM", Certificates: string(p.caPEM)}},
		"PEM inferred from content": {store: StoreConfig{Certificates: string(p.caPEM)}},
		"PEM inferred from name":    {store: StoreConfig{Location: writeFile(t, "ca.crt", p.caPEM)}},
		"PEM of another CA":         {store: StoreConfig{Certificates: string(other.caPEM)}, notOurs: true},
		"PEM garbage":               {store: StoreConfig{Type: "PEM", Certificates: "not a certificate"}, err: "no PEM certificate"},
		"PKCS12 file":               {store: StoreConfig{Type: "PKCS12", Location: writeFile(t, "trust.p12", p.truststoreP12(t, "changeit")), Password: "changeit"}},
		"PKCS12 inline":             {store: StoreConfig{Type: "PKCS12", Certificates: b64(p.truststoreP12(t, "pw")), Password: "pw"}},
		"PKCS12 key store as trust": {store: StoreConfig{Type: "PKCS12", Certificates: b64(p.keystoreP12(t, "pw")), Password: "pw"}},
		"PKCS12 wrong password":     {store: StoreConfig{Type: "PKCS12", Certificates: b64(p.truststoreP12(t, "pw")), Password: "nope"}, err: "PKCS12"},
		"PKCS12 not base64":         {store: StoreConfig{Type: "PKCS12", Certificates: "%%%"}, err: "base64"},
		"JKS file":                  {store: StoreConfig{Type: "JKS", Location: writeFile(t, "trust.jks", p.truststoreJKS(t, "changeit")), Password: "changeit"}},
		"JKS default type":          {store: StoreConfig{Location: writeFile(t, "truststore", p.truststoreJKS(t, "changeit")), Password: "changeit"}},
		"JKS inline":                {store: StoreConfig{Type: "JKS", Certificates: b64(p.truststoreJKS(t, "pw")), Password: "pw"}},
		"JKS key store as trust":    {store: StoreConfig{Type: "JKS", Certificates: b64(p.keystoreJKS(t, "pw", "pw")), Password: "pw"}},
		"JKS wrong password":        {store: StoreConfig{Type: "JKS", Certificates: b64(p.truststoreJKS(t, "pw")), Password: "nope"}, err: "digest"},
		"missing file":              {store: StoreConfig{Type: "PEM", Location: "/nonexistent/ca.pem"}, err: "no such file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pool, err := loadTrustStore(tc.store)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.none {
				if pool != nil {
					t.Fatal("a pool for no store")
				}
				return
			}
			_, verr := p.server.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"})
			if tc.notOurs != (verr != nil) {
				t.Fatalf("verifying the server with the loaded pool: %v", verr)
			}
		})
	}
}

func TestLoadKeyStore(t *testing.T) {
	p := newPKI(t, "key")
	b64 := base64.StdEncoding.EncodeToString
	keyPEM, certPEM := p.clientKeyPEM(t), p.clientCertPEM()
	//lint:ignore SA1019 tests the legacy PEM encryption that key stores may hold.
	encBlock, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(p.clientKey), []byte("kp"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	encKeyPEM := pem.EncodeToMemory(encBlock)
	tests := map[string]struct {
		store StoreConfig
		none  bool
		err   string
	}{
		"no store":            {store: StoreConfig{}, none: true},
		"NONE":                {store: StoreConfig{Type: "NONE", Key: "x"}, none: true},
		"PEM inline":          {store: StoreConfig{Type: "PEM", Key: string(keyPEM), CertificateChain: string(certPEM)}},
		"PEM inferred":        {store: StoreConfig{Key: string(keyPEM), CertificateChain: string(certPEM)}},
		"PEM file with both":  {store: StoreConfig{Type: "PEM", Location: writeFile(t, "client.pem", append(append([]byte{}, certPEM...), keyPEM...))}},
		"PEM encrypted key":   {store: StoreConfig{Type: "PEM", Key: string(encKeyPEM), CertificateChain: string(certPEM), KeyPassword: "kp"}},
		"PEM encrypted no pw": {store: StoreConfig{Type: "PEM", Key: string(encKeyPEM), CertificateChain: string(certPEM)}, err: "key_password"},
		"PEM wrong key":       {store: StoreConfig{Type: "PEM", Key: string(newPKI(t, "x").clientKeyPEM(t)), CertificateChain: string(certPEM)}, err: "private key does not match"},
		"PEM without chain":   {store: StoreConfig{Type: "PEM", Key: string(keyPEM)}, err: "needs key and certificate_chain"},
		"PKCS12 file":         {store: StoreConfig{Type: "PKCS12", Location: writeFile(t, "client.p12", p.keystoreP12(t, "pw")), Password: "pw"}},
		"PKCS12 inline":       {store: StoreConfig{Type: "PKCS12", Key: b64(p.keystoreP12(t, "pw")), Password: "pw"}},
		"PKCS12 bad password": {store: StoreConfig{Type: "PKCS12", Key: b64(p.keystoreP12(t, "pw")), Password: "no"}, err: "PKCS12"},
		"JKS file":            {store: StoreConfig{Type: "JKS", Location: writeFile(t, "client.jks", p.keystoreJKS(t, "sp", "sp")), Password: "sp"}},
		"JKS key password":    {store: StoreConfig{Type: "JKS", Key: b64(p.keystoreJKS(t, "sp", "kp")), Password: "sp", KeyPassword: "kp"}},
		"JKS bad key pw":      {store: StoreConfig{Type: "JKS", Key: b64(p.keystoreJKS(t, "sp", "kp")), Password: "sp", KeyPassword: "no"}, err: "JKS key"},
		"JKS trust only":      {store: StoreConfig{Type: "JKS", Key: b64(p.truststoreJKS(t, "sp")), Password: "sp"}, err: "no private key entry"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cert, err := loadKeyStore(tc.store)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.none {
				if cert != nil {
					t.Fatal("a certificate for no store")
				}
				return
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil || !leaf.Equal(p.client) {
				t.Fatalf("leaf %v, %v", leaf.Subject, err)
			}
			if pub, ok := cert.PrivateKey.(crypto.Signer); !ok || !p.client.PublicKey.(*rsa.PublicKey).Equal(pub.Public()) {
				t.Fatal("private key does not belong to the certificate")
			}
		})
	}
}
