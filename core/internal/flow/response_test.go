package flow

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/el"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// headerPolicy serves OnRequest in both per-request phases and records each
// call. Its behaviour depends on the instance id:
//
//	deny    interrupts with 403
//	rm      removes X-Gone
//	attr    sets the attribute "seen" to "yes"
//	other   appends its id to X-Order (set with every value so far)
//
// It works on the response headers in the response phase and on the request
// headers otherwise, as the protocol says.
type headerPolicy struct {
	pluginv1.UnimplementedPolicyServer
	mu    sync.Mutex
	calls []string // "phase:instance:status"
}

func (h *headerPolicy) OnRequest(_ context.Context, req *pluginv1.OnRequest_Request) (*pluginv1.OnRequest_Response, error) {
	h.mu.Lock()
	h.calls = append(h.calls, req.GetPhase()+":"+req.GetInstanceId()+":"+strconv.Itoa(int(req.GetResponseStatus())))
	h.mu.Unlock()
	headers := req.GetContext().GetRequest().GetHeaders()
	if req.GetPhase() == PhaseResponse {
		headers = req.GetResponseHeaders()
	}
	resp := &pluginv1.OnRequest_Response{}
	switch req.GetInstanceId() {
	case "deny":
		resp.Interrupt = &pluginv1.Failure{Status: 403, Key: "DENIED", Message: "no"}
	case "rm":
		resp.RemoveHeaders = []string{"x-gone"}
	case "attr":
		resp.SetAttributes = map[string]*structpb.Value{"seen": structpb.NewStringValue("yes")}
	default:
		var order []string
		for _, x := range headers {
			if strings.EqualFold(x.GetName(), "X-Order") {
				order = append(order, x.GetValues()...)
			}
		}
		resp.SetHeaders = []*pluginv1.Header{{Name: "x-order", Values: append(order, req.GetInstanceId())}}
	}
	return resp, nil
}

func (h *headerPolicy) recorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

func newHeaderPolicy(t *testing.T) (*headerPolicy, *fakePlugin) {
	h := &headerPolicy{}
	return h, startFakePlugin(t, "hdr", func(g *grpc.Server) { pluginv1.RegisterPolicyServer(g, h) })
}

// headerMap flattens a header list for comparisons; names keep their case.
func headerMap(hs []*pluginv1.Header) map[string][]string {
	out := map[string][]string{}
	for _, h := range hs {
		out[h.GetName()] = append(out[h.GetName()], h.GetValues()...)
	}
	return out
}

func TestOnResponse(t *testing.T) {
	type stepSpec struct{ id, cond string }
	tests := map[string]struct {
		steps       []stepSpec
		calls       []string
		headers     map[string][]string
		interrupted int32
		attr        string
	}{
		"runs in flow order, each seeing the changes before it": {
			steps:   []stepSpec{{"a", ""}, {"b", ""}, {"rm", ""}},
			calls:   []string{"response:a:202", "response:b:202", "response:rm:202"},
			headers: map[string][]string{"X-Keep": {"k"}, "x-order": {"a", "b"}},
		},
		"false condition costs no hop": {
			steps:   []stepSpec{{"a", "{#request.headers['X-Absent'] != null}"}, {"b", ""}},
			calls:   []string{"response:b:202"},
			headers: map[string][]string{"X-Keep": {"k"}, "X-Gone": {"g"}, "x-order": {"b"}},
		},
		"interrupt stops the chain": {
			steps:       []stepSpec{{"a", ""}, {"deny", ""}, {"b", ""}},
			calls:       []string{"response:a:202", "response:deny:202"},
			interrupted: 403,
		},
		"conditions see attributes set before": {
			steps:   []stepSpec{{"attr", ""}, {"a", "{#context.attributes['seen'] == 'yes'}"}},
			calls:   []string{"response:attr:202", "response:a:202"},
			headers: map[string][]string{"X-Keep": {"k"}, "X-Gone": {"g"}, "x-order": {"a"}},
			attr:    "yes",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, p := newHeaderPolicy(t)
			e := NewEngine()
			defer e.Close()
			var steps []*PolicyInstance
			for _, sp := range tc.steps {
				pi := &PolicyInstance{Type: "t", InstanceID: sp.id, Plugin: p}
				if sp.cond != "" {
					pi.Condition = el.MustCompile(sp.cond)
				}
				steps = append(steps, pi)
			}
			c := request("GET", "/")
			original := []*pluginv1.Header{{Name: "X-Keep", Values: []string{"k"}}, {Name: "X-Gone", Values: []string{"g"}}}
			r := &Response{Status: 202, Headers: original}
			f := e.OnResponse(context.Background(), steps, c, r)
			if got := h.recorded(); !reflect.DeepEqual(got, tc.calls) {
				t.Fatalf("calls %v, want %v", got, tc.calls)
			}
			if tc.interrupted != 0 {
				if f.GetStatus() != tc.interrupted {
					t.Fatalf("failure %v, want status %d", f, tc.interrupted)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			if got := headerMap(r.Headers); !reflect.DeepEqual(got, tc.headers) {
				t.Fatalf("headers %v, want %v", got, tc.headers)
			}
			if len(original) != 2 || original[1].GetName() != "X-Gone" {
				t.Fatalf("the caller's header list was changed: %v", original)
			}
			if got := c.GetAttributes()["seen"].GetStringValue(); got != tc.attr {
				t.Fatalf("attribute seen = %q, want %q", got, tc.attr)
			}
		})
	}
}

// TestOnResponseEmptyChainNoCall: a response phase with no selected step
// never reaches a plugin (one without clients would fail the call).
func TestOnResponseEmptyChainNoCall(t *testing.T) {
	e := NewEngine()
	defer e.Close()
	r := &Response{Status: 200}
	if f := e.OnResponse(context.Background(), nil, request("GET", "/"), r); f != nil || r.Headers != nil {
		t.Fatalf("empty chain: %v, %v", f, r.Headers)
	}
	sel := Select(Flows{{Name: "other", Selector: Selector{Methods: []string{"POST"}},
		Response: []*PolicyInstance{{Type: "t", InstanceID: "x"}}}}, request("GET", "/"))
	if f := e.OnResponse(context.Background(), sel.Response, request("GET", "/"), r); f != nil {
		t.Fatalf("unselected flow ran: %v", f)
	}
}

// TestOnRequestHeaderChanges: request-phase header changes replace the
// request's headers, which the entrypoint is then opened with, and later
// conditions see them.
func TestOnRequestHeaderChanges(t *testing.T) {
	h, p := newHeaderPolicy(t)
	e := NewEngine()
	defer e.Close()
	steps := []*PolicyInstance{
		{Type: "t", InstanceID: "a", Plugin: p},
		{Type: "t", InstanceID: "rm", Plugin: p},
		{Type: "t", InstanceID: "b", Plugin: p, Condition: el.MustCompile("{#request.headers['X-Order'][0] == 'a'}")},
		{Type: "t", InstanceID: "c", Plugin: p, Condition: el.MustCompile("{#request.headers['X-Gone'] != null}")},
	}
	c := request("GET", "/", "X-Gone", "g", "X-Keep", "k")
	if f := e.OnRequest(context.Background(), steps, c); f != nil {
		t.Fatal(f)
	}
	if got, want := h.recorded(), []string{"request:a:0", "request:rm:0", "request:b:0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	want := map[string][]string{"X-Keep": {"k"}, "x-order": {"a", "b"}}
	if got := headerMap(c.GetRequest().GetHeaders()); !reflect.DeepEqual(got, want) {
		t.Fatalf("request headers %v, want %v", got, want)
	}
}

func TestChangeHeaders(t *testing.T) {
	in := []*pluginv1.Header{{Name: "A", Values: []string{"1"}}, {Name: "b", Values: []string{"2"}}, {Name: "C", Values: []string{"3"}}}
	tests := map[string]struct {
		remove []string
		set    []*pluginv1.Header
		want   map[string][]string
	}{
		"nothing":                    {want: map[string][]string{"A": {"1"}, "b": {"2"}, "C": {"3"}}},
		"remove ignores case":        {remove: []string{"a", "B"}, want: map[string][]string{"C": {"3"}}},
		"set replaces spelling":      {set: []*pluginv1.Header{{Name: "c", Values: []string{"x", "y"}}}, want: map[string][]string{"A": {"1"}, "b": {"2"}, "c": {"x", "y"}}},
		"set after remove":           {remove: []string{"D"}, set: []*pluginv1.Header{{Name: "D", Values: []string{"4"}}}, want: map[string][]string{"A": {"1"}, "b": {"2"}, "C": {"3"}, "D": {"4"}}},
		"set without values removes": {set: []*pluginv1.Header{{Name: "A"}}, want: map[string][]string{"b": {"2"}, "C": {"3"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ChangeHeaders(in, tc.remove, tc.set)
			if m := headerMap(got); !reflect.DeepEqual(m, tc.want) {
				t.Fatalf("got %v, want %v", m, tc.want)
			}
			if len(in) != 3 || in[0].GetName() != "A" || in[2].GetValues()[0] != "3" {
				t.Fatalf("input changed: %v", in)
			}
		})
	}
}
