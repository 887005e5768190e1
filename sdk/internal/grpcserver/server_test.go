package grpcserver

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	"github.com/sluice-gw/sluice/sdk/schema"
)

type lc struct{ md lifecycle.Metadata }

func (p lc) Metadata() lifecycle.Metadata { return p.md }
func (lc) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}
func (lc) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}
func (lc) Unconfigure(context.Context, string) {}

type ep struct{ lc }

func (ep) Publish(context.Context, *endpoint.PublishRequest) error { return nil }
func (ep) Subscribe(context.Context, *endpoint.SubscribeRequest, endpoint.Subscription) error {
	return nil
}

type en struct{ lc }

func (en) Connect(context.Context, *entrypoint.Open, entrypoint.Conn) error { return nil }

type po struct{ lc }

func (po) OnRequest(context.Context, *policy.RequestPhase, *policy.RequestResult) error { return nil }
func (po) OnMessages(context.Context, *policy.MessagesPhase) ([]*gateway.Message, error) {
	return nil, nil
}

type both struct {
	ep
	en
}

func (b both) Metadata() lifecycle.Metadata { return b.ep.md }
func (both) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}
func (both) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}
func (both) Unconfigure(context.Context, string) {}

func TestKindOf(t *testing.T) {
	tests := map[string]struct {
		p       lifecycle.Plugin
		want    lifecycle.Kind
		wantErr string
	}{
		"endpoint":   {ep{}, lifecycle.KindEndpoint, ""},
		"entrypoint": {en{}, lifecycle.KindEntrypoint, ""},
		"policy":     {po{}, lifecycle.KindPolicy, ""},
		"none":       {lc{}, "", "grpcserver.lc implements none of endpoint.Endpoint, entrypoint.Entrypoint and policy.Policy"},
		"two":        {both{}, "", "grpcserver.both implements [endpoint entrypoint]"},
		"nil":        {nil, "", "plugin is nil"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := KindOf(tc.p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestNewChecksMetadata(t *testing.T) {
	typ := []lifecycle.TypeInfo{{Name: "t"}}
	match := []lifecycle.TypeInfo{{Name: "t", Match: &lifecycle.Match{}}}
	tests := map[string]struct {
		p       lifecycle.Plugin
		wantErr string
	}{
		"kind filled in":   {ep{lc{lifecycle.Metadata{Name: "n", Types: typ}}}, ""},
		"kind mismatch":    {ep{lc{lifecycle.Metadata{Kind: lifecycle.KindPolicy, Name: "n", Types: typ}}}, `is an endpoint plugin but its Metadata says kind "policy"`},
		"no name":          {ep{lc{lifecycle.Metadata{Types: typ}}}, "Name is empty"},
		"no types":         {ep{lc{lifecycle.Metadata{Name: "n"}}}, "no types"},
		"unnamed type":     {ep{lc{lifecycle.Metadata{Name: "n", Types: []lifecycle.TypeInfo{{}}}}}, "type 0 has no name"},
		"entrypoint match": {en{lc{lifecycle.Metadata{Name: "n", Types: typ}}}, `entrypoint type "t" has no Match`},
		"entrypoint ok":    {en{lc{lifecycle.Metadata{Name: "n", Types: match}}}, ""},
		"bad default": {po{lc{lifecycle.Metadata{Name: "n", Types: []lifecycle.TypeInfo{{
			Name: "t", Schema: schema.Schema{Attributes: []schema.Attribute{{Name: "a", Default: make(chan int)}}},
		}}}}}, `type "t": attribute "a": default`},
		"not a kind": {lc{}, "implements none"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := New(tc.p, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k, _ := KindOf(tc.p)
			if s.Kind() != k || s.Metadata().Kind != k {
				t.Fatalf("kind %v, metadata kind %v; want %v", s.Kind(), s.Metadata().Kind, k)
			}
		})
	}
}

func TestOfferLatest(t *testing.T) {
	tests := map[string]struct {
		offers []uint64
		want   uint64
	}{
		"one":                {[]uint64{3}, 3},
		"newer replaces":     {[]uint64{3, 5}, 5},
		"older never wins":   {[]uint64{5, 3}, 5},
		"many, reader slow":  {[]uint64{1, 2, 3, 4, 10, 9}, 10},
		"equal tags are one": {[]uint64{2, 2}, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch := make(chan uint64, 1)
			for _, o := range tc.offers {
				offerLatest(ch, o)
			}
			if got := <-ch; got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
			select {
			case extra := <-ch:
				t.Fatalf("extra tag %d", extra)
			default:
			}
		})
	}
}

func TestFailureOf(t *testing.T) {
	var typedNil *gateway.Failure
	if f := failureOf(typedNil, &endpointUnknown, nil, "x"); f != nil {
		t.Fatalf("typed nil failure = %v, want success", f)
	}
	if f := failureOf(nil, &endpointUnknown, nil, "x"); f != nil {
		t.Fatalf("nil = %v", f)
	}
}
