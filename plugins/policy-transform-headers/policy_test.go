package main

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/sluice-gw/sluice/sdk/policy"
)

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, fmt.Sprint(append([]any{msg}, args...)...))
}

func (w *warnings) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

func start(t *testing.T, config map[string]any) (*plugintest.Harness, *warnings) {
	t.Helper()
	p := New()
	w := &warnings{}
	p.warn = w.add
	h := plugintest.Start(t, p)
	if d := h.ConfigureAPI(t, "i", "transform-headers", "orders", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	return h, w
}

// apply does to hs what the core does with a request- or response-phase
// answer: remove the names listed (ignoring case), then set each header,
// replacing every spelling of its name.
func apply(hs gateway.Headers, r *policy.RequestResult) gateway.Headers {
	out := hs.Clone()
	if out == nil {
		out = gateway.Headers{}
	}
	for _, name := range r.RemoveHeaders {
		deleteFold(out, name)
	}
	for name, values := range r.SetHeaders {
		deleteFold(out, name)
		out[name] = values
	}
	return out
}

// run transforms in through the policy in phase and returns the headers it
// leaves: request headers, response headers or a message's headers.
func run(t *testing.T, h *plugintest.Harness, phase string, in gateway.Headers) gateway.Headers {
	t.Helper()
	c := &gateway.Context{APIID: "orders", Request: &gateway.Request{Method: "POST", Headers: gateway.Headers{}},
		Attributes: map[string]any{"tenant": "acme", "n": int64(3)}}
	switch phase {
	case policy.PhaseRequest:
		c.Request.Headers = in.Clone()
		r := h.OnPhase(t, &policy.RequestPhase{InstanceID: "i", Phase: phase, Context: c})
		if r.Interrupt != nil || r.SetAttributes != nil {
			t.Fatalf("request phase answered %+v", r)
		}
		return apply(in, r)
	case policy.PhaseResponse:
		r := h.OnResponse(t, "i", c, 200, in.Clone())
		if r.Interrupt != nil || r.SetAttributes != nil {
			t.Fatalf("response phase answered %+v", r)
		}
		return apply(in, r)
	default:
		out, f := h.OnMessages(t, "i", phase, c, &gateway.Message{Content: []byte("m"), Headers: in.Clone()})
		if f != nil || len(out) != 1 || string(out[0].Content) != "m" {
			t.Fatalf("%s phase answered %v, %v", phase, out, f)
		}
		if out[0].Headers == nil {
			return gateway.Headers{}
		}
		return out[0].Headers
	}
}

var phases = []string{policy.PhaseRequest, policy.PhaseResponse, policy.PhasePublish, policy.PhaseSubscribe}

func hdr(name, value string) map[string]any { return map[string]any{"name": name, "value": value} }

// TestOperations runs every operation, and the reference's order between
// them, in every phase: the same configuration changes request, response
// and message headers alike.
func TestOperations(t *testing.T) {
	tests := map[string]struct {
		config map[string]any
		in     gateway.Headers
		want   gateway.Headers
		warns  int
	}{
		"add sets a new header": {
			config: map[string]any{"add_header": []any{hdr("X-New", "v")}},
			in:     gateway.Headers{"X-Old": {"o"}},
			want:   gateway.Headers{"X-Old": {"o"}, "X-New": {"v"}},
		},
		"add replaces every value under any spelling": {
			config: map[string]any{"add_header": []any{hdr("X-A", "3")}},
			in:     gateway.Headers{"x-a": {"1", "2"}},
			want:   gateway.Headers{"X-A": {"3"}},
		},
		"append keeps the values": {
			config: map[string]any{"append_header": []any{hdr("x-a", "2")}},
			in:     gateway.Headers{"X-A": {"1"}},
			want:   gateway.Headers{"X-A": {"1", "2"}},
		},
		"append creates": {
			config: map[string]any{"append_header": []any{hdr("X-A", "1")}},
			want:   gateway.Headers{"X-A": {"1"}},
		},
		"remove ignores case": {
			config: map[string]any{"remove_headers": []any{"x-a"}},
			in:     gateway.Headers{"X-A": {"1"}, "X-B": {"2"}},
			want:   gateway.Headers{"X-B": {"2"}},
		},
		"whitelist keeps only what it lists": {
			config: map[string]any{"whitelist_headers": []any{"x-a", "Content-Type"}},
			in:     gateway.Headers{"X-A": {"1"}, "X-B": {"2"}, "content-type": {"text/plain"}},
			want:   gateway.Headers{"X-A": {"1"}, "content-type": {"text/plain"}},
		},
		"add before append": {
			config: map[string]any{"append_header": []any{hdr("X-A", "2")}, "add_header": []any{hdr("X-A", "1")}},
			in:     gateway.Headers{"X-A": {"0"}},
			want:   gateway.Headers{"X-A": {"1", "2"}},
		},
		"whitelist after add removes what was just added": {
			config: map[string]any{"add_header": []any{hdr("X-New", "v"), hdr("X-A", "new")}, "whitelist_headers": []any{"X-A"}},
			in:     gateway.Headers{"X-A": {"1"}, "X-B": {"2"}},
			want:   gateway.Headers{"X-A": {"new"}},
		},
		"remove comes last": {
			config: map[string]any{"add_header": []any{hdr("X-A", "new")}, "append_header": []any{hdr("X-B", "more")}, "remove_headers": []any{"X-A", "x-b"}},
			in:     gateway.Headers{"X-B": {"1"}, "X-C": {"3"}},
			want:   gateway.Headers{"X-C": {"3"}},
		},
		"EL from the context and the api": {
			config: map[string]any{"add_header": []any{hdr("X-Tenant", "{#context.attributes['tenant']}-{#api.id}")}},
			want:   gateway.Headers{"X-Tenant": {"acme-orders"}},
		},
		"EL that is not text is written as text": {
			config: map[string]any{"add_header": []any{hdr("X-N", "{#context.attributes['n']}"), hdr("X-Post", "{#request.method == 'POST'}")}},
			want:   gateway.Headers{"X-N": {"3"}, "X-Post": {"true"}},
		},
		"EL null sets nothing": {
			config: map[string]any{"add_header": []any{hdr("X-Null", "{#context.attributes['missing']}")}},
			in:     gateway.Headers{"X-A": {"1"}},
			want:   gateway.Headers{"X-A": {"1"}},
		},
		"EL error is logged and the header left alone": {
			config: map[string]any{"add_header": []any{hdr("X-A", "{#context.attributes['missing'].length() > 1}"), hdr("X-B", "ok")}},
			in:     gateway.Headers{"X-A": {"1"}},
			want:   gateway.Headers{"X-A": {"1"}, "X-B": {"ok"}},
			warns:  1,
		},
	}
	for name, tc := range tests {
		for _, phase := range phases {
			t.Run(name+"/"+phase, func(t *testing.T) {
				h, w := start(t, tc.config)
				got := run(t, h, phase, tc.in)
				want := tc.want
				if want == nil {
					want = gateway.Headers{}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
				if w.count() != tc.warns {
					t.Fatalf("%d warnings, want %d: %v", w.count(), tc.warns, w.msgs)
				}
			})
		}
	}
}

// TestValuesSeeHeadersAsTheyCame: every value is evaluated before any
// header changes, so one add_header can copy the value another replaces,
// in the request phase (#request.headers) and the message phases
// (#message.headers).
func TestValuesSeeHeadersAsTheyCame(t *testing.T) {
	tests := map[string]struct {
		phase, expr string
	}{
		"request": {policy.PhaseRequest, "{#request.headers['X-A'][0]}"},
		"publish": {policy.PhasePublish, "{#message.headers['X-A'][0]}"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, _ := start(t, map[string]any{"add_header": []any{hdr("X-A", "new"), hdr("X-Copy", tc.expr)}})
			got := run(t, h, tc.phase, gateway.Headers{"X-A": {"old"}})
			want := gateway.Headers{"X-A": {"new"}, "X-Copy": {"old"}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestRequestPhaseAnswersOnlyChanges: the answer names only the headers
// that changed, so the core leaves the others (and their spelling) alone,
// and a phase that changes nothing answers nothing.
func TestRequestPhaseAnswersOnlyChanges(t *testing.T) {
	h, _ := start(t, map[string]any{"add_header": []any{hdr("x-same", "1"), hdr("X-New", "n")}, "remove_headers": []any{"X-Gone"}})
	c := &gateway.Context{Request: &gateway.Request{Headers: gateway.Headers{"X-Same": {"1"}, "X-Gone": {"g"}, "X-Other": {"o"}}}}
	r := h.OnPhase(t, &policy.RequestPhase{InstanceID: "i", Phase: policy.PhaseRequest, Context: c})
	if !reflect.DeepEqual(r.SetHeaders, gateway.Headers{"X-New": {"n"}}) || !reflect.DeepEqual(r.RemoveHeaders, []string{"X-Gone"}) {
		t.Fatalf("set %v, remove %v", r.SetHeaders, r.RemoveHeaders)
	}
	h2, _ := start(t, map[string]any{"remove_headers": []any{"X-Absent"}})
	r = h2.OnResponse(t, "i", c, 200, gateway.Headers{"X-A": {"1"}})
	if r.SetHeaders != nil || r.RemoveHeaders != nil {
		t.Fatalf("no-op answered set %v, remove %v", r.SetHeaders, r.RemoveHeaders)
	}
}

func TestMetadataDeclaresEveryPhase(t *testing.T) {
	ti := New().Metadata().Types[0]
	if !reflect.DeepEqual(ti.Phases, phases) {
		t.Fatalf("phases %v, want %v", ti.Phases, phases)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := map[string]struct {
		config map[string]any
		want   string
	}{
		"bad EL":      {map[string]any{"add_header": []any{hdr("X-A", "{#request.headres['x']}")}}, "headres"},
		"bad name":    {map[string]any{"add_header": []any{hdr("X A", "v")}}, "invalid header name"},
		"bad scope":   {map[string]any{"scope": "BOTH"}, `"scope"`},
		"unknown key": {map[string]any{"set": map[string]any{}}, "Unsupported argument"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := plugintest.Start(t, New())
			d := h.Configure(t, "i", "transform-headers", tc.config)
			if !d.HasErrors() || !strings.Contains(d.Err().Error(), tc.want) {
				t.Fatalf("diagnostics %v, want an error containing %q", d, tc.want)
			}
		})
	}
}
