package main

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/md5"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/youmark/pkcs8"
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
		return pemKeyPair(certPEM, keyPEM, pemKeyPasswords(s))
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

// checkKeyStore reports, at load time, a PEM key store whose private key the
// configured passwords do not decrypt (or whose encryption is unsupported),
// so a wrong key_password stops the configuration instead of failing every
// request. Only a static key store is checked: with EL in any of its fields
// the key is known per request, where the same error becomes
// FAILURE_ENDPOINT_CONFIGURATION_INVALID. Other load problems (a missing
// file, a chain that does not match) are left to request time as before, so
// that validating a configuration on another machine does not need the
// files.
func (c *Config) checkKeyStore(d *lifecycle.Diagnostics) {
	if !isTLS(normalizeEnum(c.Security.Protocol, protocols)) {
		return
	}
	s := c.Security.SSL.Keystore
	for _, v := range []string{s.Type, s.Location, s.Password, s.Key, s.KeyPassword, s.CertificateChain} {
		if el.HasEL(v) {
			return
		}
	}
	if storeType(s, s.Key+s.CertificateChain) != "PEM" {
		return
	}
	_, err := loadKeyStore(s)
	var kde *keyDecryptionError
	if errors.As(err, &kde) {
		d.Errorf([]string{"security", "ssl", "keystore", "key_password"}, "%v", err)
	}
}

// keyPassword is one password to try on an encrypted PEM private key, with
// the name of the field it came from, for error messages.
type keyPassword struct{ field, value string }

// pemKeyPasswords returns the passwords that may decrypt a PEM private key,
// in the order they are tried: key_password (Kafka's ssl.key.password, the
// key's own password), then password. A PEM key store has no store password
// of its own, so a configuration that sets only password (as for PKCS12 and
// JKS, where the key password defaults to the store password) still opens
// its key; with both set, key_password wins and password is the fallback.
func pemKeyPasswords(s StoreConfig) []keyPassword {
	var out []keyPassword
	if s.KeyPassword != "" {
		out = append(out, keyPassword{"key_password", s.KeyPassword})
	}
	if s.Password != "" && s.Password != s.KeyPassword {
		out = append(out, keyPassword{"password", s.Password})
	}
	return out
}

// keyDecryptionError reports an encrypted PEM private key that the
// configured passwords cannot decrypt: no password, a wrong one, or an
// encryption this plugin does not implement. It is a configuration error
// detected without a broker, which Validate reports at load time.
type keyDecryptionError struct{ err error }

// Error returns the underlying message.
func (e *keyDecryptionError) Error() string { return e.err.Error() }

// Unwrap exposes the underlying error to errors.Is and errors.As.
func (e *keyDecryptionError) Unwrap() error { return e.err }

// pemKeyPair pairs a PEM certificate chain with a PEM private key, which may
// be encrypted (see decryptPEMKey).
func pemKeyPair(certPEM, keyPEM []byte, passwords []keyPassword) (*tls.Certificate, error) {
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
		plain, err := decryptPEMKey(b, passwords)
		if err != nil {
			return nil, err
		}
		key = pem.EncodeToMemory(plain)
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

// errWrongPassword is what a decryption returns when the password does not
// open the key, so that the next candidate password is tried.
var errWrongPassword = errors.New("wrong password")

// decryptPEMKey returns the unencrypted form of a PEM private key block:
//
//   - "ENCRYPTED PRIVATE KEY" (encrypted PKCS#8, what `openssl pkcs8 -topk8`
//     and Kafka's ssl.keystore.key use) is decrypted by decryptPKCS8;
//   - a block with "Proc-Type: 4,ENCRYPTED" and "DEK-Info" headers (OpenSSL's
//     traditional encryption of PKCS#1 and SEC 1 keys, `openssl genrsa
//     -aes256` or `openssl rsa -des3`) by x509.DecryptPEMBlock;
//   - an unencrypted block is returned as is: a password given for it is
//     not an error (a key store's password is commonly set for every store
//     type), it is simply unused.
//
// Each password of passwords is tried in order; the first that yields a
// parsable private key wins.
func decryptPEMKey(b *pem.Block, passwords []keyPassword) (*pem.Block, error) {
	pkcs8Encrypted := b.Type == "ENCRYPTED PRIVATE KEY"
	//lint:ignore SA1019 see decryptLegacyPEM.
	legacy := x509.IsEncryptedPEMBlock(b) //nolint:staticcheck
	if !pkcs8Encrypted && !legacy {
		return b, nil
	}
	if len(passwords) == 0 {
		return nil, &keyDecryptionError{errors.New("the private key is encrypted: set key_password")}
	}
	var tried []string
	for _, pw := range passwords {
		var plain *pem.Block
		var err error
		if pkcs8Encrypted {
			var der []byte
			der, err = decryptPKCS8(b.Bytes, pw.value)
			plain = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		} else {
			plain, err = decryptLegacyPEM(b, pw.value)
		}
		if err == nil {
			return plain, nil
		}
		if !errors.Is(err, errWrongPassword) {
			return nil, &keyDecryptionError{fmt.Errorf("decrypting the private key: %w", err)}
		}
		tried = append(tried, pw.field)
	}
	return nil, &keyDecryptionError{fmt.Errorf("decrypting the private key: wrong password (tried %s)", strings.Join(tried, ", then "))}
}

// decryptLegacyPEM decrypts OpenSSL's traditional PEM encryption (RFC 1423:
// DES-CBC, DES-EDE3-CBC or AES-CBC keyed by an MD5-based derivation).
// x509.DecryptPEMBlock is deprecated because that scheme is weak and its
// unauthenticated padding can act as a padding oracle. It is still used
// here: such keys are what OpenSSL 1.x and many deployment tools wrote and
// operators still hold, the standard library's implementation is the
// maintained one in Go, and no oracle exists in this use (the plugin
// decrypts its own configuration; nobody can submit ciphertexts to it).
// Operators should prefer encrypted PKCS#8; the README says so.
func decryptLegacyPEM(b *pem.Block, password string) (*pem.Block, error) {
	//lint:ignore SA1019 the deprecation is weighed above.
	der, err := x509.DecryptPEMBlock(b, []byte(password)) //nolint:staticcheck
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, errWrongPassword
	}
	if err != nil {
		return nil, fmt.Errorf("legacy PEM encryption: %w", err)
	}
	// The padding check lets about one wrong password in 256 through:
	// only a key that parses is the right one.
	if !parsesAsPrivateKey(b.Type, der) {
		return nil, errWrongPassword
	}
	return &pem.Block{Type: b.Type, Bytes: der}, nil
}

// parsesAsPrivateKey reports whether der is a private key of the encoding
// the PEM type names (PKCS#1, SEC 1 or PKCS#8; any of them when the type
// names none).
func parsesAsPrivateKey(pemType string, der []byte) bool {
	parsers := map[string]func([]byte) error{
		"RSA PRIVATE KEY": func(d []byte) error { _, err := x509.ParsePKCS1PrivateKey(d); return err },
		"EC PRIVATE KEY":  func(d []byte) error { _, err := x509.ParseECPrivateKey(d); return err },
		"PRIVATE KEY":     func(d []byte) error { _, err := x509.ParsePKCS8PrivateKey(d); return err },
	}
	if p, ok := parsers[pemType]; ok {
		return p(der) == nil
	}
	for _, p := range parsers {
		if p(der) == nil {
			return true
		}
	}
	return false
}

// Object identifiers of the password-based encryption schemes an encrypted
// PKCS#8 key may name (RFC 8018 appendix A.3 and B.2, RFC 7292 appendix C).
var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBES2AES128GCM = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 6}
	oidPBES2AES192GCM = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 26}
	oidPBES2AES256GCM = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
)

// pbeScheme is a PBES1 or PKCS#12 password-based encryption: a key and IV
// derivation and a block cipher in CBC mode. A nil derive marks a scheme
// that is recognised, to name it in the error, but not implemented.
type pbeScheme struct {
	name   string
	derive func(password string, salt []byte, iterations int) (key, iv []byte)
	block  func(key []byte) (cipher.Block, error)
}

// pbeSchemes are the schemes before PBES2, by OID. The Java Kafka client
// (through the JDK's EncryptedPrivateKeyInfo) reads these and not PBES2, so
// keys written for it, typically `openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES`,
// use them. RC2 and RC4 variants have no implementation in Go's standard
// library and are refused with their name.
var pbeSchemes = map[string]pbeScheme{
	"1.2.840.113549.1.12.1.3": {"pbeWithSHAAnd3-KeyTripleDES-CBC", pkcs12Derive(24), des.NewTripleDESCipher},
	"1.2.840.113549.1.12.1.4": {"pbeWithSHAAnd2-KeyTripleDES-CBC", pkcs12Derive(16), func(k []byte) (cipher.Block, error) {
		return des.NewTripleDESCipher(append(append([]byte{}, k...), k[:8]...)) // K1 K2 K1
	}},
	"1.2.840.113549.1.5.3":    {"pbeWithMD5AndDES-CBC", pbkdf1Derive(md5.New), des.NewCipher},
	"1.2.840.113549.1.5.10":   {"pbeWithSHA1AndDES-CBC", pbkdf1Derive(sha1.New), des.NewCipher},
	"1.2.840.113549.1.5.1":    {name: "pbeWithMD2AndDES-CBC"},
	"1.2.840.113549.1.5.4":    {name: "pbeWithMD2AndRC2-CBC"},
	"1.2.840.113549.1.5.6":    {name: "pbeWithMD5AndRC2-CBC"},
	"1.2.840.113549.1.5.11":   {name: "pbeWithSHA1AndRC2-CBC"},
	"1.2.840.113549.1.12.1.1": {name: "pbeWithSHAAnd128BitRC4"},
	"1.2.840.113549.1.12.1.2": {name: "pbeWithSHAAnd40BitRC4"},
	"1.2.840.113549.1.12.1.5": {name: "pbeWithSHAAnd128BitRC2-CBC"},
	"1.2.840.113549.1.12.1.6": {name: "pbeWithSHAAnd40BitRC2-CBC"},
}

// maxPBEIterations bounds the iteration count of PBES1 and PKCS#12 keys: a
// corrupt count of billions would otherwise hold Validate for minutes.
// OpenSSL writes 2048.
const maxPBEIterations = 10_000_000

// encryptedPrivateKeyInfo is PKCS#8's EncryptedPrivateKeyInfo (RFC 5958).
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbeParameters are the parameters of PBES1 (RFC 8018 A.3) and of the
// PKCS#12 schemes (RFC 7292 appendix C), which share the shape.
type pbeParameters struct {
	Salt       []byte
	Iterations int
}

// decryptPKCS8 decrypts the DER of an encrypted PKCS#8 key with password and
// returns the DER of the unencrypted PKCS#8 key. PBES2 (PBKDF2 with
// HMAC-SHA1 or HMAC-SHA256, or scrypt; AES-CBC or DES-EDE3-CBC) goes to
// github.com/youmark/pkcs8; that library implements PBES2 only, so the
// PBES1 and PKCS#12 schemes, which take a few lines each, are implemented
// here. errWrongPassword reports a password that does not open the key.
func decryptPKCS8(der []byte, password string) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, errors.New("encrypted PKCS#8: not an EncryptedPrivateKeyInfo structure")
	}
	oid := info.Algorithm.Algorithm
	if oid.Equal(oidPBES2) {
		return decryptPBES2(der, info.Algorithm.Parameters.FullBytes, password)
	}
	s, ok := pbeSchemes[oid.String()]
	if !ok {
		return nil, fmt.Errorf("encrypted PKCS#8: unsupported encryption scheme (OID %s): use PBES2 with AES-CBC or PBE-SHA1-3DES", oid)
	}
	if s.derive == nil {
		return nil, fmt.Errorf("encrypted PKCS#8: unsupported encryption scheme %s: use PBES2 with AES-CBC or PBE-SHA1-3DES", s.name)
	}
	var params pbeParameters
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) > 0 ||
		params.Iterations < 1 || params.Iterations > maxPBEIterations {
		return nil, fmt.Errorf("encrypted PKCS#8 (%s): malformed parameters", s.name)
	}
	key, iv := s.derive(password, params.Salt, params.Iterations)
	block, err := s.block(key)
	if err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 (%s): %w", s.name, err)
	}
	plain, err := cbcDecrypt(block, iv, info.EncryptedData)
	if err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 (%s): %w", s.name, err)
	}
	if !parsesAsPrivateKey("PRIVATE KEY", plain) {
		return nil, errWrongPassword
	}
	return plain, nil
}

// decryptPBES2 decrypts a PBES2 key with github.com/youmark/pkcs8. That
// library panics on some malformed input (an IV or a ciphertext of the wrong
// length reaches crypto/cipher's CBC mode unchecked), so panics become
// errors here; and it decrypts its "GCM" ciphers as CBC, so keys naming
// AES-GCM are refused before they reach it rather than reported as a wrong
// password.
func decryptPBES2(der, params []byte, password string) (plain []byte, err error) {
	var p struct {
		KeyDerivationFunc pkix.AlgorithmIdentifier
		EncryptionScheme  pkix.AlgorithmIdentifier
	}
	if rest, err := asn1.Unmarshal(params, &p); err != nil || len(rest) > 0 {
		return nil, errors.New("encrypted PKCS#8 (PBES2): malformed parameters")
	}
	if enc := p.EncryptionScheme.Algorithm; enc.Equal(oidPBES2AES128GCM) || enc.Equal(oidPBES2AES192GCM) || enc.Equal(oidPBES2AES256GCM) {
		return nil, errors.New("encrypted PKCS#8 (PBES2): AES-GCM is not supported: use AES-CBC")
	}
	if err := checkKDFCost(p.KeyDerivationFunc); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			plain, err = nil, fmt.Errorf("encrypted PKCS#8 (PBES2): malformed key (%v)", r)
		}
	}()
	key, err := pkcs8.ParsePKCS8PrivateKey(der, []byte(password))
	if err != nil {
		// The library has no exported error for this case, only its text.
		if err.Error() == "pkcs8: incorrect password" {
			return nil, errWrongPassword
		}
		return nil, fmt.Errorf("encrypted PKCS#8 (PBES2): %w", err)
	}
	return x509.MarshalPKCS8PrivateKey(key)
}

// Object identifiers of PBES2's key derivation functions (RFC 8018 A.2,
// RFC 7914 section 7).
var (
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
)

// maxScryptBlocks bounds scrypt's N*r, which sets its memory (128*N*r
// bytes): 2^21 is 256 MiB, sixteen times what OpenSSL's defaults use.
const maxScryptBlocks = 1 << 21

// checkKDFCost refuses PBES2 derivations whose parameters would take
// minutes or gigabytes, as a corrupt or hostile key could ask for. Shapes
// it does not recognise are left to the library to reject.
func checkKDFCost(kdf pkix.AlgorithmIdentifier) error {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p struct {
			Salt           []byte
			IterationCount int
		}
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err == nil && (p.IterationCount < 1 || p.IterationCount > maxPBEIterations) {
			return fmt.Errorf("encrypted PKCS#8 (PBES2): PBKDF2 iteration count %d is out of range", p.IterationCount)
		}
	case kdf.Algorithm.Equal(oidScrypt):
		var p struct {
			Salt    []byte
			N, R, P int
		}
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err == nil &&
			(p.N < 2 || p.R < 1 || p.P < 1 || p.N > maxScryptBlocks/p.R || p.P > 16) {
			return fmt.Errorf("encrypted PKCS#8 (PBES2): scrypt parameters N=%d r=%d p=%d are out of range", p.N, p.R, p.P)
		}
	}
	return nil
}

// cbcDecrypt decrypts ciphertext in CBC mode and removes its PKCS#5
// padding. Bad padding means a wrong key, hence a wrong password; lengths
// that do not fit the cipher mean a malformed key.
func cbcDecrypt(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs || len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, errors.New("malformed ciphertext")
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	n := int(plain[len(plain)-1])
	if n == 0 || n > bs {
		return nil, errWrongPassword
	}
	for _, b := range plain[len(plain)-n:] {
		if int(b) != n {
			return nil, errWrongPassword
		}
	}
	return plain[:len(plain)-n], nil
}

// pkcs12Derive returns the PKCS#12 derivation (RFC 7292 appendix B.2, with
// SHA-1) of a keySize-byte key (ID 1) and an 8-byte IV (ID 2, the DES block
// size) from the password as a NUL-terminated BMPString.
func pkcs12Derive(keySize int) func(string, []byte, int) ([]byte, []byte) {
	return func(password string, salt []byte, iterations int) ([]byte, []byte) {
		units := utf16.Encode([]rune(password))
		p := make([]byte, 0, 2*len(units)+2)
		for _, u := range units {
			p = append(p, byte(u>>8), byte(u))
		}
		p = append(p, 0, 0)
		return pkcs12KDF(p, salt, iterations, 1, keySize), pkcs12KDF(p, salt, iterations, 2, des.BlockSize)
	}
}

// pkcs12KDF is RFC 7292 appendix B.2 with SHA-1 (u = 20, v = 64 bytes).
func pkcs12KDF(password, salt []byte, iterations int, id byte, size int) []byte {
	const v = 64
	// fill repeats b up to the next multiple of v bytes, as the steps that
	// build S, P and B require (nothing for an empty b).
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := bytes.Repeat([]byte{id}, v)
	in := append(fill(salt), fill(password)...)
	var out []byte
	for {
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			return out[:size]
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block I_j of I.
		b := fill(a)
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				x := int(in[j+k]) + int(b[k]) + carry
				in[j+k], carry = byte(x), x>>8
			}
		}
	}
}

// pbkdf1Derive returns PBKDF1 (RFC 8018 section 5.1) as PBES1 uses it: the
// first 8 bytes of the derived key are the DES key, the next 8 the IV.
func pbkdf1Derive(newHash func() hash.Hash) func(string, []byte, int) ([]byte, []byte) {
	return func(password string, salt []byte, iterations int) ([]byte, []byte) {
		h := newHash()
		h.Write([]byte(password))
		h.Write(salt)
		t := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			h.Reset()
			h.Write(t)
			t = h.Sum(t[:0])
		}
		return t[:8], t[8:16]
	}
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
