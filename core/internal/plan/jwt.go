package plan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Signatures lists the algorithms a jwt plan accepts, one per plan.
var Signatures = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
}

// HMACMinSecretBytes is the shortest secret an HS* plan takes: RFC 7518
// section 3.2 requires a key at least as long as the hash output.
var HMACMinSecretBytes = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// jwtPlan is the jwt plan. Verification is golang-jwt's; this type only
// chooses the key and maps the client id claim onto a subscription.
type jwtPlan struct {
	cfg     JWTConfig
	parser  *jwt.Parser
	secret  []byte
	static  any
	set     *jwks
	byID    map[string]Subscription
	claimID []string
}

func newJWT(c Config, opts Options) (*jwtPlan, error) {
	if c.JWT == nil {
		return nil, errors.New("a jwt plan needs its settings")
	}
	cfg := *c.JWT
	if !contains(Signatures, cfg.Signature) {
		return nil, fmt.Errorf("signature %q is not one of %s", cfg.Signature, strings.Join(Signatures, ", "))
	}
	p := &jwtPlan{cfg: cfg, byID: map[string]Subscription{}}
	// The one configured algorithm is the only one accepted: a token
	// saying "none", or HS256 signed with an RSA public key as the HMAC
	// secret (algorithm confusion), fails before any key is looked at.
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{cfg.Signature}),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithTimeFunc(opts.Now),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		popts = append(popts, jwt.WithAudience(cfg.Audience))
	}
	p.parser = jwt.NewParser(popts...)

	sources := 0
	for _, s := range []string{cfg.Secret, cfg.PublicKey, cfg.JWKSFile, cfg.JWKSURL} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("give exactly one of secret, public_key, jwks_file and jwks_url")
	}
	hmac := strings.HasPrefix(cfg.Signature, "HS")
	switch {
	case hmac && cfg.Secret == "":
		return nil, fmt.Errorf("%s needs a secret", cfg.Signature)
	case !hmac && cfg.Secret != "":
		return nil, fmt.Errorf("%s is verified with a public key: give public_key, jwks_file or jwks_url instead of secret", cfg.Signature)
	case hmac:
		if len(cfg.Secret) < HMACMinSecretBytes[cfg.Signature] {
			return nil, fmt.Errorf("the secret is %d bytes; %s needs at least %d", len(cfg.Secret), cfg.Signature, HMACMinSecretBytes[cfg.Signature])
		}
		p.secret = []byte(cfg.Secret)
	case cfg.PublicKey != "":
		k, err := ParsePublicKey([]byte(cfg.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("public_key: %w", err)
		}
		if err := keyFits(cfg.Signature, k); err != nil {
			return nil, fmt.Errorf("public_key: %w", err)
		}
		p.static = k
	case cfg.JWKSFile != "":
		b, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		keys, err := parseJWKS(b, opts)
		if err != nil {
			return nil, fmt.Errorf("jwks_file %s: %w", cfg.JWKSFile, err)
		}
		p.set = staticJWKS(keys)
	default:
		p.set = newJWKS(cfg, opts)
	}

	p.claimID = []string{"azp", "client_id"}
	if cfg.ClientIDClaim != "" {
		p.claimID = []string{cfg.ClientIDClaim}
	}
	if len(c.Subscriptions) == 0 {
		return nil, errors.New("a jwt plan needs at least one subscription")
	}
	for _, s := range c.Subscriptions {
		if s.ClientID == "" {
			return nil, fmt.Errorf("subscription %s has an empty client_id", s.ID)
		}
		if prev, dup := p.byID[s.ClientID]; dup {
			return nil, fmt.Errorf("subscriptions %s and %s have the same client_id", prev.ID, s.ID)
		}
		p.byID[s.ClientID] = s
	}
	return p, nil
}

func (p *jwtPlan) typ() string { return TypeJWT }

func (p *jwtPlan) close() {
	if p.set != nil {
		p.set.close()
	}
}

// token returns the bearer token of the Authorization header, or else of
// the access_token query parameter (RFC 6750 sections 2.1 and 2.3).
func (p *jwtPlan) token(r *Request) (tok string, fromQuery bool) {
	h := r.Header("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), false
	}
	if q := r.Query(AccessTokenQueryParam); q != "" {
		return q, true
	}
	return "", false
}

func (p *jwtPlan) carries(r *Request) bool {
	t, _ := p.token(r)
	return t != ""
}

func (p *jwtPlan) authenticate(ctx context.Context, r *Request) (Result, *Denial) {
	raw, fromQuery := p.token(r)
	claims := jwt.MapClaims{}
	if _, err := p.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) { return p.key(ctx, t) }); err != nil {
		return Result{}, unauthorized(TypeJWT, "invalid token: "+err.Error())
	}
	var clientID string
	for _, name := range p.claimID {
		if s, ok := claims[name].(string); ok && s != "" {
			clientID = s
			break
		}
	}
	if clientID == "" {
		return Result{}, forbidden(TypeJWT, "the token has no client id claim ("+strings.Join(p.claimID, ", ")+")")
	}
	s, ok := p.byID[clientID]
	if !ok {
		return Result{}, forbidden(TypeJWT, fmt.Sprintf("no subscription for client id %q", clientID))
	}
	res := Result{Plan: TypeJWT, Subscription: s.ID, Application: application(s), Claims: claims}
	if fromQuery {
		res.StripQuery = []string{AccessTokenQueryParam}
	}
	return res, nil
}

// key returns the key that verifies t; golang-jwt has already checked that
// t's algorithm is the configured one.
func (p *jwtPlan) key(ctx context.Context, t *jwt.Token) (any, error) {
	switch {
	case p.secret != nil:
		return p.secret, nil
	case p.static != nil:
		return p.static, nil
	}
	kid, _ := t.Header["kid"].(string)
	k, err := p.set.lookup(ctx, kid)
	if err != nil {
		return nil, err
	}
	if k.alg != "" && k.alg != p.cfg.Signature {
		return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.alg, p.cfg.Signature)
	}
	if err := keyFits(p.cfg.Signature, k.key); err != nil {
		return nil, fmt.Errorf("key %q: %w", kid, err)
	}
	return k.key, nil
}

// ParsePublicKey reads a PEM public key (PKIX, PKCS#1 RSA) or certificate.
func ParsePublicKey(b []byte) (any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or a certificate", block.Type)
}

// keyFits reports whether key can verify alg: the family must match, and
// for ES* the curve too.
func keyFits(alg string, key any) error {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		if _, ok := key.(*rsa.PublicKey); !ok {
			return fmt.Errorf("%s needs an RSA public key, not %T", alg, key)
		}
	case strings.HasPrefix(alg, "ES"):
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%s needs an ECDSA public key, not %T", alg, key)
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if k.Curve != want {
			return fmt.Errorf("%s needs a key on curve %s, not %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
	case strings.HasPrefix(alg, "HS"):
		if _, ok := key.([]byte); !ok {
			return fmt.Errorf("%s needs a secret", alg)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
