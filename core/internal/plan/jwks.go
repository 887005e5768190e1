package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
)

// maxJWKSBytes bounds a JWKS document: a key set is a few kilobytes, and an
// identity provider gone wrong must not exhaust the gateway's memory.
const maxJWKSBytes = 1 << 20

type jwksKey struct {
	key any
	alg string
}

// jwks is a JWK set, downloaded or read from a file. A downloaded set is
// cached for its TTL and downloaded again when it is older or when a token
// names a key id it does not hold (an identity provider rotating its keys).
// Downloads are at least minInterval apart whatever the tokens say; when a
// download fails the keys already held keep serving (stale rather than
// refusing every client while the identity provider is down).
type jwks struct {
	url         string
	client      *http.Client
	timeout     time.Duration
	ttl         time.Duration
	minInterval time.Duration
	now         func() time.Time
	log         *slog.Logger

	// fetchMu serialises downloads: concurrent requests missing a key wait
	// for one download instead of starting their own.
	fetchMu sync.Mutex

	mu        sync.Mutex
	keys      map[string]jwksKey
	fetched   time.Time // last successful download; zero for a file
	attempted time.Time // last download attempt
	static    bool
}

func staticJWKS(keys map[string]jwksKey) *jwks {
	return &jwks{keys: keys, static: true}
}

func newJWKS(cfg JWTConfig, opts Options) *jwks {
	j := &jwks{
		url: cfg.JWKSURL, client: opts.HTTPClient, now: opts.Now, log: opts.Logger,
		timeout: cfg.JWKSTimeout, ttl: cfg.JWKSCacheTTL, minInterval: cfg.JWKSMinRefreshInterval,
	}
	if j.timeout <= 0 {
		j.timeout = DefaultJWKSTimeout
	}
	if j.ttl <= 0 {
		j.ttl = DefaultJWKSCacheTTL
	}
	if j.minInterval <= 0 {
		j.minInterval = DefaultJWKSMinRefreshInterval
	}
	return j
}

func (j *jwks) close() {}

// lookup returns the key with id kid ("" takes the set's only key).
func (j *jwks) lookup(ctx context.Context, kid string) (jwksKey, error) {
	k, found, fresh := j.find(kid)
	if j.static {
		if !found {
			return jwksKey{}, unknownKid(kid)
		}
		return k, nil
	}
	if found && fresh {
		return k, nil
	}
	j.refresh(ctx)
	if k, found, _ = j.find(kid); !found {
		return jwksKey{}, unknownKid(kid)
	}
	return k, nil
}

func unknownKid(kid string) error {
	if kid == "" {
		return errors.New("the token names no key id (kid) and the key set holds more than one key")
	}
	return fmt.Errorf("no key with id %q in the key set", kid)
}

// find looks kid up; fresh is false when the set has expired.
func (j *jwks) find(kid string) (k jwksKey, found, fresh bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fresh = j.static || (!j.fetched.IsZero() && j.now().Sub(j.fetched) < j.ttl)
	if kid == "" {
		if len(j.keys) == 1 {
			for _, k := range j.keys {
				return k, true, fresh
			}
		}
		return jwksKey{}, false, fresh
	}
	k, found = j.keys[kid]
	return k, found, fresh
}

// refresh downloads the set unless a download was attempted less than
// minInterval ago.
func (j *jwks) refresh(ctx context.Context) {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	j.mu.Lock()
	now := j.now()
	if !j.attempted.IsZero() && now.Sub(j.attempted) < j.minInterval {
		j.mu.Unlock()
		return
	}
	j.attempted = now
	j.mu.Unlock()

	keys, err := j.download(ctx)
	if err != nil {
		j.mu.Lock()
		held := len(j.keys)
		j.mu.Unlock()
		j.log.Warn("JWKS download failed; the keys already held keep serving", "url", j.url, "keys_held", held, "err", err)
		return
	}
	j.mu.Lock()
	j.keys, j.fetched = keys, j.now()
	j.mu.Unlock()
}

func (j *jwks) download(ctx context.Context) (map[string]jwksKey, error) {
	// The request's own context is not used: a client hanging up must not
	// cancel a download other requests wait for.
	_ = ctx
	dctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("the key set is larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(b, Options{Logger: j.log})
}

// parseJWKS reads a JWK set's public signature keys. Symmetric keys and
// keys for encryption are left out: a key set is public, so an HMAC key in
// it would let anyone sign tokens.
func parseJWKS(b []byte, opts Options) (map[string]jwksKey, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	keys := map[string]jwksKey{}
	for i, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		if m.KTY == jwkset.KtyOct {
			log.Warn("JWKS: symmetric key ignored", "kid", m.KID)
			continue
		}
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			log.Warn("JWKS: key ignored", "index", i, "kid", m.KID, "err", err)
			continue
		}
		keys[m.KID] = jwksKey{key: k.Key(), alg: string(m.ALG)}
	}
	if len(keys) == 0 {
		return nil, errors.New("the set holds no usable signature key")
	}
	return keys, nil
}
