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
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/twmb/franz-go/pkg/kfake"
	ymkpkcs8 "github.com/youmark/pkcs8"
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

// goldenKey is an EC key that OpenSSL 3.0 encrypted below with the password
// "changeit" (`openssl pkcs8 -topk8 -v1 ...`/`-v2 ...`, `openssl pkey
// -traditional -aes-256-cbc`): fixed vectors from an independent
// implementation, for the schemes Go cannot produce.
const goldenKey = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg49HHmzzBbF7DC2Rz
g2J1+F+8UVluvuEgvpuLc+XDCo6hRANCAARWZLdsnsxfcXE8LFx3iKRZ6fSD1x2g
aU22R8VVP7fD6mu+L1AGrGXaa4kWLXmiiwMa3AlOA+MLSJhcGqf+ErfG
-----END PRIVATE KEY-----
`

var goldenEncrypted = map[string]string{
	"PBE-SHA1-3DES": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGxMBwGCiqGSIb3DQEMAQMwDgQI9potUGXBpO0CAggABIGQzgdQgyToGjwstu72
d90slBix+J2KOD9m8ORXEQF1Dnv8DX34NFSTWuEGDbgLdfagXm/JUaos/LaL432n
PuPMaVo4zUf27+9SabCE/3cdnko2KuLpajZBACJQiHxWSL76GLRPXIRpx00+PLwh
zj4DFE3wrB/Ez2BjwD9kQOFAS0YN6alMS2agn4wGxDtCAKfu
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBE-SHA1-2DES": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGxMBwGCiqGSIb3DQEMAQQwDgQInwn1MRDFThICAggABIGQAjHFALwVLONjnDx5
a6riSC9C4FRyszm8wZYvHY5hWftwtzW6jo1N2X7Pv7MDjkbdcxXR8yHA7U3IGFzi
rliqWvLsErHXqzYUnGBvaSrScck7p3fnPhp0F/JuG2CkVGbyXnEwlFcT79qyf4fY
AOVoQJ/B987U7GPSG3NvrwrG2td6mS4sFs1tuqFa26sMv4oQ
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBE-MD5-DES": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGwMBsGCSqGSIb3DQEFAzAOBAjzC7TdQTsgIAICCAAEgZCUAht58cJO6rdwG97b
EdX1k+NwGEibNUuq5vg/drXitQ878YxCk0qPphjQp28S7EHyBdulvFc9q+R9T26n
uXMQeqbvXOaVU3K1eZVFUol89S9tTms8fXku77jZA3LlL16aCJxLSUlIPfBCwqh2
S9tZjYw3i2BuTWQxNpWtxFO4y6ouOREqTE84urVfLjiRXwk=
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBE-SHA1-DES": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGwMBsGCSqGSIb3DQEFCjAOBAgDL8F8tB82fAICCAAEgZCv4KFbOeVQlItRMsOZ
YqZ52y6LZRnTqDUrraNZcNB0bALutVLzQOrlMKyKzwP4oTkbFqTP7+DuJJ0aNmdm
ReSdWyaCYklLq/GJhQbJWdrKsSZ5ctdJVtPaua6moF2NUnIdGSoA3Mv+9rrXjNHL
pzGC9dKogGT6dGzf02jSLUx94R1nuSBVmwzjD2KYWB3ydb0=
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBES2 AES-256-CBC HMAC-SHA256": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAisU2INHqHuagICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEPKUkzGXWDbRuR0gMLuWHgAEgZBe
jHy30QhVXlqdFqpDaMvKid/P5CBCezHj2lGWIdOfBxT+BupXwCunsWDqwgAPsrSp
+DLCeWuF5rGWkiTcg5kb5BiWhVHVZd/hAzuhXHQLsIGW6UIYw5J4PfX1FSvtHNjF
hh9eUIAHxcepirQHfi12p6Io60ta9jKhlMD0wEPFJCdSo5eAo/JPV1IATPWOIRs=
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBES2 AES-128-CBC HMAC-SHA1": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHeMEkGCSqGSIb3DQEFDTA8MBsGCSqGSIb3DQEFDDAOBAjOCCXRxhMcpAICCAAw
HQYJYIZIAWUDBAECBBD0n7F8QdslW84W3Tc0gCHnBIGQEmMW1I0vwOVv9jFyoehv
pSm0Uss2kNKaC88q0iTR+eEJKzFONj7mdjh0pUZlAXnLKxXgb1SGRz6ytK96mpr1
KCJt+TKgwQfeX4q8mJUTBcUvPFVeMSZs3mtigzhsOOeQX+vFsKTS4mjpD+KuIVro
Pb5bX3TSdWu9lqNJ+43DswEj9D1fhp234lnjGfnIoVql
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBES2 DES-EDE3-CBC": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHjME4GCSqGSIb3DQEFDTBBMCkGCSqGSIb3DQEFDDAcBAjJZkyInf1PVwICCAAw
DAYIKoZIhvcNAgkFADAUBggqhkiG9w0DBwQIjxe7UTlIB4IEgZCrU5mMpXku1CSH
nlPsY/wpr75SiEzmY6s3vzQRkaLJFOG9i8Hxzf8izsjSX29ws7CJCMdWG5PhQTw8
WYvbvHFumi8C60JhN2u6By7rZ5XCu/p54wPeTcq8tYFJ8q2bZxdalzl9an4ltLjp
xHep29SiF9sC40GhOL43Qu3A4s9rjZIs8Far8oHUK7qZPC+pkgY=
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBES2 scrypt AES-256-CBC": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHkME8GCSqGSIb3DQEFDTBCMCEGCSsGAQQB2kcECzAUBAjT6O5J8rijMgICQAAC
AQgCAQEwHQYJYIZIAWUDBAEqBBAb/ZAkc6yENTK+4lW3FrqnBIGQywieOew+iRKJ
e9SgHPwK/hA8wBepOQNa9ahmI+hf1/Ee0/tI1hxjEAQmvXHRPCF4OapB6Hl7LN9c
PAPhNii58K/CVr1jPVw7BiCnxTET/DGnuF47n+Mou3Pg2wySopC2ke8a3bRxEuau
quBpaP0khdZwcOsnOFtbjy/UMMxyQthuhKSQTnccpRwt/FpbBCt1
-----END ENCRYPTED PRIVATE KEY-----
`,
	"PBES2 AES-256-CBC HMAC-SHA512": `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgVpHhFjWeqIgICCAAw
DAYIKoZIhvcNAgsFADAdBglghkgBZQMEASoEEHtpW2uaT/b93Qh/InrMKsYEgZAG
Q5Bf0YZNaX9jMk71B2N88FBt82okRzPrVYWWMovAymgPJc+zfDXaMHOg2GEG2zMG
sWUt9lTaLbVyJOHU8u8hlEBK7OD9cnQ0XSslWw1vc/CDSy48kEJNdHU4oijPWkCG
HLmVOt9DxbZurbOw/BEa2o87cTKR8KfuDn+SuWPBxg9M+GG6aOXZQq900DYaat4=
-----END ENCRYPTED PRIVATE KEY-----
`,
	"legacy AES-256-CBC": `-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,A3937F3CD048662E003BFEDC6C5DB8D5

FBsHAKxL2FlwX+i7DlcY0rSv9TwOj7zQBCwX9rMNP0gncIZ2AjMIBsexzcJLNoOB
YU40TVAvGTjq4c85QHx6JQNu8KrYsaMnV0sEyJZae8u4RjltuSoQXJRc1udKfgNp
MdI74KktOb3IS3xIcRJfxKJ+WdHpD1MhTJKj6jTjsNQ=
-----END EC PRIVATE KEY-----
`,
	"legacy DES-EDE3-CBC": `-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: DES-EDE3-CBC,A753D1DBD9C9996F

Q2gGekhk8oYpaATltI/lCnMz/wbQVRKBzPikuce53r3DuHi9p5l0EugXIIl38obm
sS+SLy6EjnhwSKcmAcszHXSHoH/scaH5vbJitUSzx2W7/shf86ZD4Xbr9+/P4rm/
zbWOMtwaAT+QKm9DVSSULGXMSUIvKBUO8SdEpD+qM2Q=
-----END EC PRIVATE KEY-----
`,
}

// parseKeyBlock parses an unencrypted PEM private key of any encoding.
func parseKeyBlock(t *testing.T, b *pem.Block) crypto.Signer {
	t.Helper()
	var k any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		t.Fatalf("%s: %v", b.Type, err)
	}
	return k.(crypto.Signer)
}

func TestDecryptOpenSSLVectors(t *testing.T) {
	gb, _ := pem.Decode([]byte(goldenKey))
	want := parseKeyBlock(t, gb).(*ecdsa.PrivateKey)
	unsupported := map[string]string{"PBES2 AES-256-CBC HMAC-SHA512": "unsupported hash function"}
	for name, text := range goldenEncrypted {
		t.Run(name, func(t *testing.T) {
			b, _ := pem.Decode([]byte(text))
			plain, err := decryptPEMKey(b, []keyPassword{{"key_password", "changeit"}})
			if msg, ok := unsupported[name]; ok {
				var kde *keyDecryptionError
				if !errors.As(err, &kde) || !strings.Contains(err.Error(), msg) {
					t.Fatalf("error = %v, want a key decryption error containing %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := parseKeyBlock(t, plain); !want.Equal(got) {
				t.Fatal("decrypted to another key")
			}
			_, err = decryptPEMKey(b, []keyPassword{{"key_password", "changeiT"}})
			if err == nil || !strings.Contains(err.Error(), "wrong password (tried key_password)") {
				t.Fatalf("wrong password: error = %v", err)
			}
		})
	}
}

// encryptedPKCS8 encrypts key with PBES2 (github.com/youmark/pkcs8).
func encryptedPKCS8(t *testing.T, key any, password string, opts *ymkpkcs8.Opts) []byte {
	t.Helper()
	der, err := ymkpkcs8.MarshalPrivateKey(key, []byte(password), opts)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

// pkcs12ShroudedKey encrypts key with pbeWithSHAAnd3-KeyTripleDES-CBC: it
// lets go-pkcs12 write a legacy PKCS#12 file, whose key bag is exactly an
// EncryptedPrivateKeyInfo, and takes that bag out.
func pkcs12ShroudedKey(t *testing.T, key any, cert *x509.Certificate, password string) []byte {
	t.Helper()
	pfx, err := pkcs12.LegacyDES.Encode(key, cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	type safeBag struct {
		ID         asn1.ObjectIdentifier
		Value      asn1.RawValue   `asn1:"tag:0,explicit"`
		Attributes []asn1.RawValue `asn1:"set,optional"`
	}
	var p struct {
		Version  int
		AuthSafe contentInfo
		MacData  asn1.RawValue `asn1:"optional"`
	}
	var safes []contentInfo
	var authSafe []byte
	if _, err := asn1.Unmarshal(pfx, &p); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(p.AuthSafe.Content.Bytes, &authSafe); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(authSafe, &safes); err != nil {
		t.Fatal(err)
	}
	oidData := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidShroudedKeyBag := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	for _, ci := range safes {
		if !ci.ContentType.Equal(oidData) {
			continue
		}
		var content []byte
		var bags []safeBag
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &content); err != nil {
			t.Fatal(err)
		}
		if _, err := asn1.Unmarshal(content, &bags); err != nil {
			t.Fatal(err)
		}
		for _, b := range bags {
			if !b.ID.Equal(oidShroudedKeyBag) {
				continue
			}
			var info encryptedPrivateKeyInfo
			if _, err := asn1.Unmarshal(b.Value.Bytes, &info); err != nil {
				t.Fatal(err)
			}
			if !info.Algorithm.Algorithm.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}) {
				t.Fatalf("go-pkcs12 encrypted the key with %v", info.Algorithm.Algorithm)
			}
			return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: b.Value.Bytes})
		}
	}
	t.Fatal("no shrouded key bag in the PKCS#12 file")
	return nil
}

// legacyPEM encrypts key with OpenSSL's traditional PEM encryption.
func legacyPEM(t *testing.T, key *rsa.PrivateKey, password string, alg x509.PEMCipher) []byte {
	t.Helper()
	//lint:ignore SA1019 tests the legacy PEM encryption that key stores may hold.
	b, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte(password), alg) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(b)
}

// Every encryption of a PEM key store's key, inline and in a location file,
// with the passwords right, wrong, missing, or split between key_password
// and password.
func TestEncryptedPEMKeyStore(t *testing.T) {
	p := newPKI(t, "enc")
	chain := string(p.clientCertPEM())
	formats := map[string][]byte{
		"PKCS#8 PBES2 AES-256-CBC HMAC-SHA256": encryptedPKCS8(t, p.clientKey, "changeit", nil),
		"PKCS#8 PBES2 AES-128-CBC HMAC-SHA1": encryptedPKCS8(t, p.clientKey, "changeit", &ymkpkcs8.Opts{Cipher: ymkpkcs8.AES128CBC,
			KDFOpts: ymkpkcs8.PBKDF2Opts{SaltSize: 8, IterationCount: 2048, HMACHash: crypto.SHA1}}),
		"PKCS#8 PBES2 DES-EDE3-CBC":      encryptedPKCS8(t, p.clientKey, "changeit", &ymkpkcs8.Opts{Cipher: ymkpkcs8.TripleDESCBC, KDFOpts: ymkpkcs8.DefaultOpts.KDFOpts}),
		"PKCS#8 PKCS#12 PBE SHA1-3DES":   pkcs12ShroudedKey(t, p.clientKey, p.client, "changeit"),
		"legacy PEM AES-256-CBC":         legacyPEM(t, p.clientKey, "changeit", x509.PEMCipherAES256),
		"legacy PEM DES-EDE3-CBC":        legacyPEM(t, p.clientKey, "changeit", x509.PEMCipher3DES),
		"unencrypted (passwords unused)": p.clientKeyPEM(t),
	}
	const encryptedOnly = "encrypted only"
	scenarios := map[string]struct {
		keyPassword, password string
		location              bool
		err                   string
	}{
		"inline, key_password":                    {keyPassword: "changeit"},
		"inline, password only":                   {password: "changeit"},
		"inline, both":                            {keyPassword: "changeit", password: "store-pass"},
		"inline, wrong key_password, password ok": {keyPassword: "nope", password: "changeit"},
		"inline, wrong key_password":              {keyPassword: "nope", err: encryptedOnly + "wrong password (tried key_password)"},
		"inline, both wrong":                      {keyPassword: "nope", password: "nope2", err: encryptedOnly + "wrong password (tried key_password, then password)"},
		"inline, no password":                     {err: encryptedOnly + "the private key is encrypted: set key_password"},
		"location, key_password":                  {keyPassword: "changeit", location: true},
		"location, password only":                 {password: "changeit", location: true},
		"location, wrong key_password":            {keyPassword: "nope", location: true, err: encryptedOnly + "wrong password (tried key_password)"},
		"location, no password":                   {location: true, err: encryptedOnly + "set key_password"},
	}
	for fname, keyPEM := range formats {
		for sname, sc := range scenarios {
			t.Run(fname+"/"+sname, func(t *testing.T) {
				store := StoreConfig{Type: "PEM", KeyPassword: sc.keyPassword, Password: sc.password}
				if sc.location {
					store.Location = writeFile(t, "client.pem", append(append([]byte{}, keyPEM...), chain...))
				} else {
					store.Key, store.CertificateChain = string(keyPEM), chain
				}
				cert, err := loadKeyStore(store)
				if msg, ok := strings.CutPrefix(sc.err, encryptedOnly); ok && !strings.HasPrefix(fname, "unencrypted") {
					var kde *keyDecryptionError
					if !errors.As(err, &kde) || !strings.Contains(err.Error(), msg) {
						t.Fatalf("error = %v, want a key decryption error containing %q", err, msg)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if pub, ok := cert.PrivateKey.(crypto.Signer); !ok || !p.client.PublicKey.(*rsa.PublicKey).Equal(pub.Public()) {
					t.Fatal("private key does not belong to the certificate")
				}
			})
		}
	}
}

// mkEncryptedKey assembles an EncryptedPrivateKeyInfo by hand, for the
// malformed shapes no encoder writes.
func mkEncryptedKey(t *testing.T, alg asn1.ObjectIdentifier, params any, data []byte) []byte {
	t.Helper()
	ai := pkix.AlgorithmIdentifier{Algorithm: alg}
	if params != nil {
		b, err := asn1.Marshal(params)
		if err != nil {
			t.Fatal(err)
		}
		ai.Parameters = asn1.RawValue{FullBytes: b}
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{Algorithm: ai, EncryptedData: data})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// pbes2Params is PBES2's parameters, for mkEncryptedKey.
func pbes2Params(t *testing.T, kdf asn1.ObjectIdentifier, kdfParams any, enc asn1.ObjectIdentifier, iv []byte) any {
	t.Helper()
	kp, err := asn1.Marshal(kdfParams)
	if err != nil {
		t.Fatal(err)
	}
	ivb, err := asn1.Marshal(iv)
	if err != nil {
		t.Fatal(err)
	}
	return struct{ KDF, Enc pkix.AlgorithmIdentifier }{
		pkix.AlgorithmIdentifier{Algorithm: kdf, Parameters: asn1.RawValue{FullBytes: kp}},
		pkix.AlgorithmIdentifier{Algorithm: enc, Parameters: asn1.RawValue{FullBytes: ivb}},
	}
}

// Malformed and unsupported encrypted keys are errors, never panics, and
// never take long.
func TestDecryptPKCS8Malformed(t *testing.T) {
	aes256CBC := asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	pbkdf2 := func(iter int) any {
		return struct {
			Salt []byte
			Iter int
			PRF  pkix.AlgorithmIdentifier
		}{[]byte("saltsalt"), iter, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, Parameters: asn1.NullRawValue}}
	}
	sha3DES := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	tests := map[string]struct {
		der []byte
		err string
	}{
		"not DER":            {der: []byte("garbage"), err: "not an EncryptedPrivateKeyInfo"},
		"trailing data":      {der: append(mkEncryptedKey(t, sha3DES, pbeParameters{[]byte("salt"), 1}, make([]byte, 16)), 0), err: "not an EncryptedPrivateKeyInfo"},
		"unknown scheme":     {der: mkEncryptedKey(t, asn1.ObjectIdentifier{1, 2, 3, 4}, nil, make([]byte, 16)), err: "unsupported encryption scheme (OID 1.2.3.4)"},
		"RC2 named":          {der: mkEncryptedKey(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}, pbeParameters{[]byte("s"), 1}, make([]byte, 16)), err: "pbeWithSHAAnd40BitRC2-CBC"},
		"PBES1 no params":    {der: mkEncryptedKey(t, sha3DES, nil, make([]byte, 16)), err: "malformed parameters"},
		"PBES1 0 iterations": {der: mkEncryptedKey(t, sha3DES, pbeParameters{[]byte("salt"), 0}, make([]byte, 16)), err: "malformed parameters"},
		"PBES1 huge count":   {der: mkEncryptedKey(t, sha3DES, pbeParameters{[]byte("salt"), 1 << 40}, make([]byte, 16)), err: "malformed parameters"},
		"PBES1 odd length":   {der: mkEncryptedKey(t, sha3DES, pbeParameters{[]byte("salt"), 1}, make([]byte, 13)), err: "malformed ciphertext"},
		"PBES1 empty data":   {der: mkEncryptedKey(t, sha3DES, pbeParameters{[]byte("salt"), 1}, nil), err: "malformed ciphertext"},
		"PBES1 bad padding":  {der: mkEncryptedKey(t, sha3DES, pbeParameters{[]byte("salt"), 1}, make([]byte, 16)), err: "wrong password"},
		"PBES2 no params":    {der: mkEncryptedKey(t, oidPBES2, nil, make([]byte, 16)), err: "malformed parameters"},
		"PBES2 short IV":     {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, oidPBKDF2, pbkdf2(1), aes256CBC, []byte{1, 2, 3}), make([]byte, 32)), err: "malformed key"},
		"PBES2 odd length":   {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, oidPBKDF2, pbkdf2(1), aes256CBC, make([]byte, 16)), make([]byte, 17)), err: "malformed key"},
		"PBES2 huge count":   {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, oidPBKDF2, pbkdf2(1<<30), aes256CBC, make([]byte, 16)), make([]byte, 32)), err: "iteration count 1073741824 is out of range"},
		"PBES2 huge scrypt": {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, oidScrypt, struct {
			Salt    []byte
			N, R, P int
		}{[]byte("salt"), 1 << 30, 8, 1}, aes256CBC, make([]byte, 16)), make([]byte, 32)), err: "scrypt parameters"},
		"PBES2 AES-GCM":     {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, oidPBKDF2, pbkdf2(1), oidPBES2AES256GCM, make([]byte, 12)), make([]byte, 32)), err: "AES-GCM is not supported"},
		"PBES2 unknown KDF": {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, asn1.ObjectIdentifier{1, 2, 3}, pbkdf2(1), aes256CBC, make([]byte, 16)), make([]byte, 32)), err: "unsupported KDF"},
		"PBES2 wrong key":   {der: mkEncryptedKey(t, oidPBES2, pbes2Params(t, oidPBKDF2, pbkdf2(1), aes256CBC, make([]byte, 16)), make([]byte, 32)), err: "wrong password"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decryptPKCS8(tc.der, "changeit")
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// The PKCS#12 key derivation against the vectors of
// golang.org/x/crypto/pkcs12's tests (the second one carries into a leading
// zero byte, which broke an earlier big.Int implementation there).
func TestPKCS12KDF(t *testing.T) {
	tests := map[string]struct {
		password, salt []byte
		want           string
	}{
		"sesame, 2048 iterations": {password: []byte("\x00s\x00e\x00s\x00a\x00m\x00e\x00\x00"), salt: bytes.Repeat([]byte{0xff}, 8),
			want: "7cd9fd3e2b3be7691a44e3bef0f9ea0fb9b897d4e325d9d1"},
		"empty password, leading zero": {password: []byte{0, 0}, salt: []byte("\xf3\x7e\x05\xb5\x18\x32\x4b\x4b"),
			want: "00f759ff47d14dd03665d5943cb3c4a39a2555c02aed66e1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := hex.EncodeToString(pkcs12KDF(tc.password, tc.salt, 2048, 1, 24)); got != tc.want {
				t.Fatalf("key %s, want %s", got, tc.want)
			}
		})
	}
	if key, _ := pkcs12Derive(24)("sesame", bytes.Repeat([]byte{0xff}, 8), 2048); hex.EncodeToString(key) != tests["sesame, 2048 iterations"].want {
		t.Fatalf("BMPString encoding of the password: key %x", key)
	}
}

// A key store whose static key the passwords do not open is refused when
// the configuration is validated and configured; with EL the key is known per
// request, where the failure is FAILURE_ENDPOINT_CONFIGURATION_INVALID.
func TestValidateEncryptedKey(t *testing.T) {
	p := newPKI(t, "validate")
	key := string(encryptedPKCS8(t, p.clientKey, "changeit", nil))
	chain := string(p.clientCertPEM())
	location := writeFile(t, "client.pem", append([]byte(key), chain...))
	cfg := func(protocol string, keystore map[string]any) map[string]any {
		return map[string]any{"bootstrap_servers": "b:1", "security": map[string]any{"protocol": protocol, "ssl": map[string]any{"keystore": keystore}}}
	}
	tests := map[string]struct {
		cfg map[string]any
		err string
	}{
		"right key_password":   {cfg: cfg("SSL", map[string]any{"type": "PEM", "key": key, "certificate_chain": chain, "key_password": "changeit"})},
		"right password, file": {cfg: cfg("SSL", map[string]any{"location": location, "password": "changeit"})},
		"wrong key_password": {cfg: cfg("SSL", map[string]any{"type": "PEM", "key": key, "certificate_chain": chain, "key_password": "nope"}),
			err: "wrong password (tried key_password)"},
		"no password, file":             {cfg: cfg("SSL", map[string]any{"location": location}), err: "set key_password"},
		"EL key_password":               {cfg: cfg("SSL", map[string]any{"type": "PEM", "key": key, "certificate_chain": chain, "key_password": "{#context.attributes['kp']}"})},
		"protocol without TLS":          {cfg: cfg("PLAINTEXT", map[string]any{"type": "PEM", "key": key, "certificate_chain": chain, "key_password": "nope"})},
		"missing file left to requests": {cfg: cfg("SSL", map[string]any{"type": "PEM", "location": "/nonexistent/client.pem", "key_password": "x"})},
		"PKCS12 left to requests":       {cfg: cfg("SSL", map[string]any{"type": "PKCS12", "key": base64.StdEncoding.EncodeToString(p.keystoreP12(t, "pw")), "password": "nope"})},
	}
	h, _ := startPlugin(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for call, d := range map[string]lifecycle.Diagnostics{
				"Validate":  h.Validate(t, "kafka", tc.cfg),
				"Configure": h.Configure(t, "i-"+name, "kafka", tc.cfg),
			} {
				if tc.err == "" {
					if d.HasErrors() {
						t.Fatalf("%s: %v", call, d.Err())
					}
					continue
				}
				if len(d) != 1 || d[0].Severity != lifecycle.Error || strings.Join(d[0].Path, ".") != "security.ssl.keystore.key_password" ||
					!strings.Contains(d[0].Summary, tc.err) {
					t.Fatalf("%s: diagnostics %+v, want one error on security.ssl.keystore.key_password containing %q", call, d, tc.err)
				}
			}
		})
	}
}

// Mutual TLS with an encrypted key whose password comes per request: the
// right one connects (the broker requires the client certificate, and a
// publish returns once it acknowledged), a wrong one is
// FAILURE_ENDPOINT_CONFIGURATION_INVALID.
func TestEncryptedKeyPerRequest(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "broker")
	c := startCluster(t, map[string]int32{"secure": 1}, kfake.TLS(p.serverTLS(true)))
	h, _ := startPlugin(t)
	configure(t, h, "i", map[string]any{"bootstrap_servers": c.addrs,
		"security": map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"type": "PEM", "certificates": string(p.caPEM)},
			"keystore": map[string]any{"type": "PEM", "key": string(pkcs12ShroudedKey(t, p.clientKey, p.client, "changeit")),
				"certificate_chain": string(p.clientCertPEM()), "key_password": "{#context.attributes['kp']}"}}},
		"producer": map[string]any{"enabled": true, "topics": []string{"secure"}}})
	tests := map[string]struct {
		password string
		key      string
	}{
		"right password": {password: "changeit"},
		"wrong password": {password: "nope", key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID"},
		"no password":    {password: "", key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := h.Publish(t, "i", subCtx("c", map[string]any{"kp": tc.password}), &gateway.Message{Content: []byte(name)})
			if tc.key == "" && f != nil {
				t.Fatalf("failure %+v", f)
			}
			if tc.key != "" && (f == nil || f.Key != tc.key) {
				t.Fatalf("failure %+v, want %s", f, tc.key)
			}
		})
	}
}

func FuzzDecryptPKCS8(f *testing.F) {
	for _, text := range goldenEncrypted {
		if b, _ := pem.Decode([]byte(text)); b.Type == "ENCRYPTED PRIVATE KEY" {
			f.Add(b.Bytes)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		if plain, err := decryptPKCS8(der, "changeit"); err == nil && !parsesAsPrivateKey("PRIVATE KEY", plain) {
			t.Fatal("decrypted to something that is not a key")
		}
	})
}
