// Package plan authenticates requests against an API's plans before any
// plugin is called: a rejected request costs no plugin hop.
//
// An API has plans in file order. A request is served by the first plan
// whose credential it carries (an API key header or query parameter, a
// bearer token, a client certificate); keyless carries every request, so
// it takes the rest. Once a plan is chosen it decides alone: a wrong API
// key is refused even when a keyless plan follows, as the reference gateway
// (Gravitee APIM's security chain) does. A request no plan carries, or one
// whose credential is invalid, gets 401; a valid credential that has no
// subscription on this API gets 403.
//
// A plan that accepts the request names a subscription. Its id becomes the
// client identifier (and so the Kafka consumer group): two clients sharing
// one API key share one consumer group and split the records.
package plan

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Plan types, as the label of a plan block.
const (
	TypeAPIKey  = "api-key"
	TypeJWT     = "jwt"
	TypeMTLS    = "mtls"
	TypeKeyless = "keyless"
)

// Defaults of the plans' optional settings.
const (
	// DefaultAPIKeyHeader is the header an api-key plan reads.
	DefaultAPIKeyHeader = "X-Gravitee-Api-Key"
	// DefaultAPIKeyQueryParam is the query parameter an api-key plan reads
	// when the header is absent.
	DefaultAPIKeyQueryParam = "api-key"
	// AccessTokenQueryParam carries a bearer token for clients that cannot
	// set headers (a browser's EventSource); RFC 6750 section 2.3.
	AccessTokenQueryParam = "access_token"
	// DefaultJWKSTimeout bounds one JWKS download.
	DefaultJWKSTimeout = 5 * time.Second
	// DefaultJWKSCacheTTL is how long a downloaded JWKS is used before it
	// is downloaded again.
	DefaultJWKSCacheTTL = 5 * time.Minute
	// DefaultJWKSMinRefreshInterval is the least time between two
	// downloads, so tokens with made-up key ids cannot make the gateway
	// hammer the identity provider.
	DefaultJWKSMinRefreshInterval = 10 * time.Second
)

// Messages of the failures, as the reference gateway spells them.
const (
	MsgUnauthorized = "Unauthorized"
	MsgForbidden    = "Forbidden"
)

// Config is one plan block, decoded and checked by the config package.
type Config struct {
	// Type is one of the Type constants.
	Type string
	// Header is the api-key plan's header. Optional. Default:
	// DefaultAPIKeyHeader.
	Header string
	// QueryParam is the api-key plan's query parameter. Optional. Default:
	// DefaultAPIKeyQueryParam.
	QueryParam string
	// JWT holds the jwt plan's settings; nil for the other types.
	JWT *JWTConfig
	// Subscriptions are the plan's subscriptions in file order; keyless has
	// none.
	Subscriptions []Subscription
}

// Subscription is one subscription block: who may use the plan.
type Subscription struct {
	// ID is the subscription block's label; it becomes the client
	// identifier of the requests it accepts.
	ID string
	// Application is exposed as gravitee.attribute.application. Optional.
	// Default: ID.
	Application string
	// APIKey is the api-key plan's key. Sensitive.
	APIKey string
	// ClientID is the jwt plan's client id, matched against the token's
	// client id claim.
	ClientID string
	// ClientCertificate is the mtls plan's client certificate, PEM.
	ClientCertificate string
}

// JWTConfig is a jwt plan's settings.
type JWTConfig struct {
	// Signature is the one algorithm tokens must use (HS256, RS384, ...).
	Signature string
	// Secret is the HMAC key of HS* signatures. Sensitive.
	Secret string
	// PublicKey is a PEM public key or certificate, for RS*, PS* and ES*.
	PublicKey string
	// JWKSFile is the absolute path of a JWK set file.
	JWKSFile string
	// JWKSURL is where the JWK set is downloaded from.
	JWKSURL string
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Audience, when set, must be one of the aud claim's values.
	Audience string
	// ClockSkew is the leeway of the exp and nbf checks. Optional. Default: 0.
	ClockSkew time.Duration
	// ClientIDClaim names the claim matched against the subscriptions.
	// Optional. Default: azp, then client_id.
	ClientIDClaim string
	// JWKSTimeout bounds one JWKS download. Optional. Default:
	// DefaultJWKSTimeout.
	JWKSTimeout time.Duration
	// JWKSCacheTTL is how long a downloaded JWKS is used. Optional.
	// Default: DefaultJWKSCacheTTL.
	JWKSCacheTTL time.Duration
	// JWKSMinRefreshInterval is the least time between two downloads.
	// Optional. Default: DefaultJWKSMinRefreshInterval.
	JWKSMinRefreshInterval time.Duration
}

// Options are what every authenticator of a gateway shares.
type Options struct {
	// Logger receives why requests are refused (never the credential) and
	// JWKS download problems. Optional. Default: discard.
	Logger *slog.Logger
	// HTTPClient downloads JWK sets; each download is bounded by the
	// plan's JWKSTimeout. Optional. Default: a client with Go's default
	// transport.
	HTTPClient *http.Client
	// Now is the clock. Optional. Default: time.Now. Tests replace it.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Request is what the plans read from a request.
type Request struct {
	// Header returns a request header's first value, "" when absent.
	Header func(name string) string
	// Query returns a query parameter's first value, "" when absent.
	Query func(name string) string
	// PeerCertificates are the client's verified TLS certificates, leaf
	// first; empty without TLS or without a client certificate.
	PeerCertificates []*x509.Certificate
}

// Result is what an accepting plan decided.
type Result struct {
	// Plan is the accepting plan's type.
	Plan string
	// Subscription is the subscription id; "" for keyless.
	Subscription string
	// Application is the subscription's application; "" for keyless.
	Application string
	// Claims are a verified token's claims (jwt plan only).
	Claims map[string]any
	// StripHeaders and StripQuery name the credentials to remove from the
	// request before it reaches a plugin, so no plugin (and no Kafka
	// record made of request headers) sees an API key.
	StripHeaders, StripQuery []string
}

// Keyless reports whether the keyless plan accepted the request.
func (r Result) Keyless() bool { return r.Plan == TypeKeyless }

// Denial is a refused request.
type Denial struct {
	// Status is 401 or 403.
	Status int
	// Message is the failure message the client sees.
	Message string
	// Plan is the plan that refused, "" when no plan carried the request.
	Plan string
	// Reason says why, for the gateway's log. It never holds the
	// credential.
	Reason string
}

func unauthorized(plan, reason string) *Denial {
	return &Denial{Status: http.StatusUnauthorized, Message: MsgUnauthorized, Plan: plan, Reason: reason}
}

func forbidden(plan, reason string) *Denial {
	return &Denial{Status: http.StatusForbidden, Message: MsgForbidden, Plan: plan, Reason: reason}
}

// plan is one compiled plan.
type plan interface {
	typ() string
	// carries reports whether the request carries this plan's credential.
	carries(r *Request) bool
	// authenticate decides about a request the plan carries.
	authenticate(ctx context.Context, r *Request) (Result, *Denial)
	// close releases background resources.
	close()
}

// Authenticator holds one API's compiled plans.
type Authenticator struct {
	plans []plan
	docs  []PlanDoc
	log   *slog.Logger
}

// Authenticate runs the first plan whose credential r carries. Exactly one
// of the results is set.
func (a *Authenticator) Authenticate(ctx context.Context, r *Request) (Result, *Denial) {
	if a == nil {
		return Result{Plan: TypeKeyless}, nil
	}
	for _, p := range a.plans {
		if p.carries(r) {
			return p.authenticate(ctx, r)
		}
	}
	return Result{}, unauthorized("", "the request carries no credential of this API's plans")
}

// Types lists the plan types in order, for the admin listener.
func (a *Authenticator) Types() []string {
	if a == nil {
		return []string{TypeKeyless}
	}
	out := make([]string, 0, len(a.plans))
	for _, p := range a.plans {
		out = append(out, p.typ())
	}
	return out
}

// Close stops the background work of the plans (JWKS downloads).
func (a *Authenticator) Close() {
	if a == nil {
		return
	}
	for _, p := range a.plans {
		p.close()
	}
}

// Build compiles the plans of every API of a gateway; apis maps an API name
// to its plans in file order. Building them together lets an api-key plan
// tell a key of another API (403) from a key nobody issued (401). An API
// with no plans is keyless.
func Build(apis map[string][]Config, opts Options) (map[string]*Authenticator, error) {
	opts.defaults()
	// Every key's digest and the APIs it belongs to.
	keys := map[[sha256.Size]byte][]string{}
	for api, cfgs := range apis {
		for _, c := range cfgs {
			if c.Type != TypeAPIKey {
				continue
			}
			for _, s := range c.Subscriptions {
				d := sha256.Sum256([]byte(s.APIKey))
				keys[d] = append(keys[d], api)
			}
		}
	}
	out := map[string]*Authenticator{}
	var errs []error
	for api, cfgs := range apis {
		a := &Authenticator{log: opts.Logger}
		if len(cfgs) == 0 {
			cfgs = []Config{{Type: TypeKeyless}}
		}
		for _, c := range cfgs {
			p, err := compile(api, c, keys, opts)
			if err != nil {
				errs = append(errs, fmt.Errorf("api %q > plan %q: %w", api, c.Type, err))
				continue
			}
			a.plans = append(a.plans, p)
			a.docs = append(a.docs, describe(c))
		}
		out[api] = a
	}
	if err := errors.Join(errs...); err != nil {
		for _, a := range out {
			a.Close()
		}
		return nil, err
	}
	return out, nil
}

func compile(api string, c Config, keys map[[sha256.Size]byte][]string, opts Options) (plan, error) {
	switch c.Type {
	case TypeKeyless:
		return keyless{}, nil
	case TypeAPIKey:
		return newAPIKey(api, c, keys)
	case TypeJWT:
		return newJWT(c, opts)
	case TypeMTLS:
		return newMTLS(c)
	}
	return nil, fmt.Errorf("unknown plan type %q; the types are %s", c.Type, strings.Join([]string{TypeAPIKey, TypeJWT, TypeMTLS, TypeKeyless}, ", "))
}

// keyless accepts every request; the client is identified by its address.
type keyless struct{}

func (keyless) typ() string           { return TypeKeyless }
func (keyless) carries(*Request) bool { return true }
func (keyless) close()                {}
func (keyless) authenticate(context.Context, *Request) (Result, *Denial) {
	return Result{Plan: TypeKeyless}, nil
}

// application defaults a subscription's application to its id.
func application(s Subscription) string {
	if s.Application != "" {
		return s.Application
	}
	return s.ID
}
