package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// tlsConfig builds the TLS configuration of the SSL and SASL_SSL protocols.
// Without a trust store the system roots authenticate the brokers; host
// names are verified, as Kafka's default https endpoint identification does.
func tlsConfig(ssl SSLConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	roots, err := loadTrustStore(ssl.Truststore)
	if err != nil {
		return nil, fmt.Errorf("truststore: %w", err)
	}
	cfg.RootCAs = roots
	cert, err := loadKeyStore(ssl.Keystore)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg, nil
}

// storeType returns the effective type of a store: the configured one, or
// PEM when the content is PEM, JKS otherwise (the reference's default).
// "" means no store is configured.
func storeType(s StoreConfig, inline string) string {
	if t := normalizeEnum(s.Type, storeTypes); t != "" {
		return t
	}
	if s.Location == "" && inline == "" {
		return ""
	}
	if strings.Contains(inline, "-----BEGIN") {
		return "PEM"
	}
	switch l := strings.ToLower(s.Location); {
	case strings.HasSuffix(l, ".pem"), strings.HasSuffix(l, ".crt"), strings.HasSuffix(l, ".cer"), strings.HasSuffix(l, ".key"):
		return "PEM"
	case strings.HasSuffix(l, ".p12"), strings.HasSuffix(l, ".pfx"):
		return "PKCS12"
	}
	return "JKS"
}

// storeBytes returns a store's content: the file at location, or the inline
// value (PEM text as is, binary stores base64-decoded).
func storeBytes(location, inline string, binary bool) ([]byte, error) {
	if location != "" {
		b, err := os.ReadFile(location)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	if inline == "" {
		return nil, errors.New("neither location nor inline content is set")
	}
	if !binary {
		return []byte(inline), nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(inline), ""))
	if err != nil {
		return nil, fmt.Errorf("inline store is not base64: %w", err)
	}
	return b, nil
}

// loadTrustStore returns the pool of trusted certificates, or nil for the
// system roots (no store, or type NONE).
func loadTrustStore(s StoreConfig) (*x509.CertPool, error) {
	typ := storeType(s, s.Certificates)
	if typ == "" || typ == "NONE" {
		return nil, nil
	}
	data, err := storeBytes(s.Location, s.Certificates, typ != "PEM")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	switch typ {
	case "PEM":
		certs, err = pemCertificates(data)
	case "PKCS12":
		certs, err = pkcs12Certificates(data, s.Password)
	case "JKS":
		certs, err = jksCertificates(data, s.Password)
	}
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s store holds no certificate", typ)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// pemCertificates parses every CERTIFICATE block.
func pemCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// pkcs12Certificates reads a PKCS12 trust store: Java trust anchors first,
// else the certificates of a key store.
func pkcs12Certificates(data []byte, password string) ([]*x509.Certificate, error) {
	certs, err := pkcs12.DecodeTrustStore(data, password)
	if err == nil && len(certs) > 0 {
		return certs, nil
	}
	if _, cert, cas, err2 := pkcs12.DecodeChain(data, password); err2 == nil {
		return append([]*x509.Certificate{cert}, cas...), nil
	}
	if err == nil {
		err = errors.New("no certificate found")
	}
	return nil, fmt.Errorf("PKCS12: %w", err)
}

// jksCertificates reads a JKS trust store: its trusted certificate entries,
// or, when it has none, the certificates of its key entries (Java's trust
// manager accepts both).
func jksCertificates(data []byte, password string) ([]*x509.Certificate, error) {
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(data), []byte(password)); err != nil {
		return nil, fmt.Errorf("JKS: %w", err)
	}
	var out []*x509.Certificate
	for _, alias := range ks.Aliases() {
		if !ks.IsTrustedCertificateEntry(alias) {
			continue
		}
		e, err := ks.GetTrustedCertificateEntry(alias)
		if err != nil {
			return nil, fmt.Errorf("JKS entry %q: %w", alias, err)
		}
		c, err := x509.ParseCertificate(e.Certificate.Content)
		if err != nil {
			return nil, fmt.Errorf("JKS entry %q: %w", alias, err)
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, alias := range ks.Aliases() {
		chain, err := ks.GetPrivateKeyEntryCertificateChain(alias)
		if err != nil {
			continue
		}
		for _, cc := range chain {
			if c, err := x509.ParseCertificate(cc.Content); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// loadKeyStore returns the client certificate, or nil when no key store is
// configured.
func loadKeyStore(s StoreConfig) (*tls.Certificate, error) {
	inline := s.Key
	typ := storeType(s, inline+s.CertificateChain)
	if typ == "" || typ == "NONE" {
		return nil, nil
	}
	keyPassword := s.KeyPassword
	if keyPassword == "" {
		keyPassword = s.Password
	}
	switch typ {
	case "PEM":
		var certPEM, keyPEM []byte
		if s.Location != "" {
			b, err := os.ReadFile(s.Location)
			if err != nil {
				return nil, err
			}
			certPEM, keyPEM = b, b
		}
		if s.CertificateChain != "" {
			certPEM = []byte(s.CertificateChain)
		}
		if s.Key != "" {
			keyPEM = []byte(s.Key)
		}
		if len(certPEM) == 0 || len(keyPEM) == 0 {
			return nil, errors.New("a PEM key store needs key and certificate_chain, or a location holding both")
		}
		return pemKeyPair(certPEM, keyPEM, keyPassword)
	case "PKCS12":
		data, err := storeBytes(s.Location, inline, true)
		if err != nil {
			return nil, err
		}
		key, cert, cas, err := pkcs12.DecodeChain(data, s.Password)
		if err != nil {
			return nil, fmt.Errorf("PKCS12: %w", err)
		}
		out := &tls.Certificate{PrivateKey: key, Leaf: cert, Certificate: [][]byte{cert.Raw}}
		for _, ca := range cas {
			out.Certificate = append(out.Certificate, ca.Raw)
		}
		return out, nil
	case "JKS":
		data, err := storeBytes(s.Location, inline, true)
		if err != nil {
			return nil, err
		}
		return jksKeyPair(data, s.Password, keyPassword)
	}
	return nil, fmt.Errorf("unsupported store type %q", s.Type)
}

// pemKeyPair pairs a PEM certificate chain with a PEM private key, which
// may be encrypted with the legacy PEM encryption (Proc-Type: 4,ENCRYPTED).
func pemKeyPair(certPEM, keyPEM []byte, password string) (*tls.Certificate, error) {
	var chain []byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, pem.EncodeToMemory(b)...)
		}
	}
	var key []byte
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("encrypted PKCS#8 keys are not supported: decrypt the key (openssl pkcs8) or use a PKCS12 store")
		}
		//lint:ignore SA1019 legacy PEM encryption is what Kafka's PEM key stores may contain.
		if x509.IsEncryptedPEMBlock(b) { //nolint:staticcheck
			if password == "" {
				return nil, errors.New("the private key is encrypted: set key_password")
			}
			der, err := x509.DecryptPEMBlock(b, []byte(password)) //nolint:staticcheck
			if err != nil {
				return nil, fmt.Errorf("decrypting the private key: %w", err)
			}
			b = &pem.Block{Type: b.Type, Bytes: der}
		}
		key = pem.EncodeToMemory(b)
		break
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	if len(key) == 0 {
		return nil, errors.New("no PEM private key found")
	}
	c, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// jksKeyPair reads the first private key entry of a JKS key store.
func jksKeyPair(data []byte, storePassword, keyPassword string) (*tls.Certificate, error) {
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(data), []byte(storePassword)); err != nil {
		return nil, fmt.Errorf("JKS: %w", err)
	}
	for _, alias := range ks.Aliases() {
		if !ks.IsPrivateKeyEntry(alias) {
			continue
		}
		e, err := ks.GetPrivateKeyEntry(alias, []byte(keyPassword))
		if err != nil {
			return nil, fmt.Errorf("JKS key %q: %w", alias, err)
		}
		key, err := x509.ParsePKCS8PrivateKey(e.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("JKS key %q: %w", alias, err)
		}
		out := &tls.Certificate{PrivateKey: key}
		for _, c := range e.CertificateChain {
			out.Certificate = append(out.Certificate, c.Content)
		}
		if len(out.Certificate) == 0 {
			return nil, fmt.Errorf("JKS key %q has no certificate chain", alias)
		}
		if leaf, err := x509.ParseCertificate(out.Certificate[0]); err == nil {
			out.Leaf = leaf
		}
		return out, nil
	}
	return nil, errors.New("JKS: no private key entry")
}
