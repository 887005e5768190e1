package plan

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// apiKey is the api-key plan. Only digests of the keys are kept, so a heap
// dump or a careless log of the plan shows no key.
type apiKey struct {
	api, header, query string
	subs               []keySub
	// others holds the digests of keys issued for other APIs.
	others map[[sha256.Size]byte]bool
}

type keySub struct {
	digest [sha256.Size]byte
	id     string
	app    string
}

func newAPIKey(api string, c Config, keys map[[sha256.Size]byte][]string) (*apiKey, error) {
	p := &apiKey{api: api, header: c.Header, query: c.QueryParam, others: map[[sha256.Size]byte]bool{}}
	if p.header == "" {
		p.header = DefaultAPIKeyHeader
	}
	if p.query == "" {
		p.query = DefaultAPIKeyQueryParam
	}
	if len(c.Subscriptions) == 0 {
		return nil, errors.New("an api-key plan needs at least one subscription")
	}
	ids := map[[sha256.Size]byte]string{}
	for _, s := range c.Subscriptions {
		if s.APIKey == "" {
			return nil, errors.New("subscription " + s.ID + " has an empty api_key")
		}
		d := sha256.Sum256([]byte(s.APIKey))
		if prev, dup := ids[d]; dup {
			// One key naming two subscriptions would pick one silently.
			return nil, errors.New("subscriptions " + prev + " and " + s.ID + " have the same api_key")
		}
		ids[d] = s.ID
		p.subs = append(p.subs, keySub{digest: d, id: s.ID, app: application(s)})
	}
	for d, apis := range keys {
		for _, a := range apis {
			if a != api {
				p.others[d] = true
			}
		}
	}
	return p, nil
}

func (p *apiKey) typ() string { return TypeAPIKey }
func (p *apiKey) close()      {}

func (p *apiKey) carries(r *Request) bool {
	return p.key(r) != ""
}

func (p *apiKey) key(r *Request) string {
	if k := r.Header(p.header); k != "" {
		return k
	}
	return r.Query(p.query)
}

// authenticate compares the key with every subscription's in constant time:
// digests have one length whatever the key's, and the loop never stops
// early, so the answer's timing says nothing about how close a guess was.
func (p *apiKey) authenticate(_ context.Context, r *Request) (Result, *Denial) {
	d := sha256.Sum256([]byte(p.key(r)))
	found := -1
	for i := range p.subs {
		if subtle.ConstantTimeCompare(d[:], p.subs[i].digest[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		if p.others[d] {
			return Result{}, forbidden(TypeAPIKey, "the API key belongs to a subscription of another API")
		}
		return Result{}, unauthorized(TypeAPIKey, "unknown API key")
	}
	s := p.subs[found]
	return Result{
		Plan:         TypeAPIKey,
		Subscription: s.id,
		Application:  s.app,
		StripHeaders: []string{p.header},
		StripQuery:   []string{p.query},
	}, nil
}
