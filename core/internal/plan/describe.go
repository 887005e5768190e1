package plan

import "crypto/sha256"

// Sensitive replaces a secret wherever the gateway shows its configuration.
const Sensitive = "(sensitive)"

// PlanDoc describes one plan for the admin listener. Secrets are never in
// it: API keys and HMAC secrets show as Sensitive.
type PlanDoc struct {
	// Type is the plan type.
	Type string `json:"type"`
	// Header and QueryParam are where an api-key plan reads the key.
	Header     string `json:"header,omitempty"`
	QueryParam string `json:"query_param,omitempty"`
	// JWT holds a jwt plan's settings.
	JWT *JWTDoc `json:"jwt,omitempty"`
	// Subscriptions are the plan's subscriptions.
	Subscriptions []SubscriptionDoc `json:"subscriptions,omitempty"`
}

// JWTDoc is a jwt plan's settings without its secret.
type JWTDoc struct {
	Signature        string `json:"signature"`
	Secret           string `json:"secret,omitempty"`
	PublicKey        string `json:"public_key,omitempty"`
	JWKSFile         string `json:"jwks_file,omitempty"`
	JWKSURL          string `json:"jwks_url,omitempty"`
	Issuer           string `json:"issuer,omitempty"`
	Audience         string `json:"audience,omitempty"`
	ClockSkewSeconds int    `json:"clock_skew_seconds"`
	ClientIDClaim    string `json:"client_id_claim,omitempty"`
}

// SubscriptionDoc is a subscription without its secret.
type SubscriptionDoc struct {
	ID          string `json:"id"`
	Application string `json:"application"`
	APIKey      string `json:"api_key,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	// ClientCertificateSHA256 identifies an mtls subscription's certificate
	// (certificates are public, but a fingerprint reads better than PEM).
	ClientCertificateSHA256 string `json:"client_certificate_sha256,omitempty"`
}

func describe(c Config) PlanDoc {
	d := PlanDoc{Type: c.Type}
	if c.Type == TypeAPIKey {
		d.Header, d.QueryParam = c.Header, c.QueryParam
		if d.Header == "" {
			d.Header = DefaultAPIKeyHeader
		}
		if d.QueryParam == "" {
			d.QueryParam = DefaultAPIKeyQueryParam
		}
	}
	if j := c.JWT; j != nil {
		d.JWT = &JWTDoc{Signature: j.Signature, JWKSFile: j.JWKSFile, JWKSURL: j.JWKSURL, Issuer: j.Issuer,
			Audience: j.Audience, ClockSkewSeconds: int(j.ClockSkew.Seconds()), ClientIDClaim: j.ClientIDClaim}
		if j.Secret != "" {
			d.JWT.Secret = Sensitive
		}
		if j.PublicKey != "" {
			d.JWT.PublicKey = "(PEM)"
		}
	}
	for _, s := range c.Subscriptions {
		sd := SubscriptionDoc{ID: s.ID, Application: application(s), ClientID: s.ClientID}
		if s.APIKey != "" {
			sd.APIKey = Sensitive
		}
		if s.ClientCertificate != "" {
			if cert, err := ParseCertificate([]byte(s.ClientCertificate)); err == nil {
				sum := sha256.Sum256(cert.Raw)
				sd.ClientCertificateSHA256 = hexString(sum[:])
			}
		}
		d.Subscriptions = append(d.Subscriptions, sd)
	}
	return d
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&0xf])
	}
	return string(out)
}

// Describe returns the plans in order, without secrets.
func (a *Authenticator) Describe() []PlanDoc {
	if a == nil {
		return []PlanDoc{{Type: TypeKeyless}}
	}
	return append([]PlanDoc(nil), a.docs...)
}
