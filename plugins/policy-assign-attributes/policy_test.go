package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/sluice-gw/sluice/sdk/policy"
)

func attrs(pairs ...string) map[string]any {
	var list []any
	for i := 0; i+1 < len(pairs); i += 2 {
		list = append(list, map[string]any{"name": pairs[i], "value": pairs[i+1]})
	}
	return map[string]any{"attribute": list}
}

// start configures instance "i" and records the warnings the plugin logs.
func start(t *testing.T, config any) (*plugintest.Harness, *warnings) {
	t.Helper()
	p := New()
	w := &warnings{}
	p.warn = w.add
	h := plugintest.Start(t, p)
	// Some cases send blocks the core's schema check would refuse, to show
	// the plugin skips them as the reference does.
	h.SkipSchema = true
	if d := h.ConfigureAPI(t, "i", "assign-attributes", "orders", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	return h, w
}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, fmt.Sprint(append([]any{msg}, args...)...))
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

func requestContext() *gateway.Context {
	return &gateway.Context{
		APIID: "orders",
		Request: &gateway.Request{
			Method:     "GET",
			Path:       "/orders/eu",
			Headers:    gateway.Headers{"X-Topic-Override-Request-Level": {"test-topic-attribute"}, "X-Key": {"k1"}},
			PathParams: map[string]string{"newTopic": "from-path"},
		},
		Attributes: map[string]any{"gravitee.attribute.kafka.oauthbearer.token": "tok"},
	}
}

func TestOnRequest(t *testing.T) {
	tests := map[string]struct {
		config map[string]any
		want   map[string]any
		warns  int
	}{
		"literal (vector 3)": {
			config: attrs("gravitee.attribute.kafka.topics", "test-topic,test-topic-attribute"),
			want:   map[string]any{"gravitee.attribute.kafka.topics": "test-topic,test-topic-attribute"},
		},
		"header": {
			config: attrs("gravitee.attribute.kafka.topics", "{#request.headers['X-Topic-Override-Request-Level'][0]}"),
			want:   map[string]any{"gravitee.attribute.kafka.topics": "test-topic-attribute"},
		},
		"a single expression keeps its type": {
			config: attrs("has", "{#request.headers['X-Key'] != null}", "list", "{#request.headers['X-Key']}"),
			want:   map[string]any{"has": true, "list": []any{"k1"}},
		},
		"text around an expression is a string": {
			config: attrs("group", "group-{#request.pathParams['newTopic']}"),
			want:   map[string]any{"group": "group-from-path"},
		},
		"context attributes": {
			config: attrs("copy", "{#context.attributes['gravitee.attribute.kafka.oauthbearer.token']}"),
			want:   map[string]any{"copy": "tok"},
		},
		"later entries read earlier ones": {
			config: attrs("a", "one", "b", "{#context.attributes['a']}-two", "c", "{#context.attributes['b']}-three"),
			want:   map[string]any{"a": "one", "b": "one-two", "c": "one-two-three"},
		},
		"api root": {
			config: attrs("api", "{#api.id}"),
			want:   map[string]any{"api": "orders"},
		},
		"null result sets nothing": {
			config: attrs("missing", "{#request.pathParams['nope']}", "kept", "x"),
			want:   map[string]any{"kept": "x"},
		},
		"EL error is logged and skipped": {
			config: attrs("bad", "{#request.headers['Nope'][0]}", "kept", "x"),
			want:   map[string]any{"kept": "x"},
			warns:  1,
		},
		"blank name and missing value are skipped": {
			config: map[string]any{"attribute": []any{
				map[string]any{"name": " ", "value": "x"},
				map[string]any{"name": "no-value"},
				map[string]any{"name": "ok", "value": "y"},
			}},
			want: map[string]any{"ok": "y"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, w := start(t, tc.config)
			c := requestContext()
			got, interrupt := h.OnRequest(t, "i", c)
			if interrupt != nil {
				t.Fatal(interrupt)
			}
			if !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
			if n := len(w.all()); n != tc.warns {
				t.Fatalf("%d warnings (%q), want %d", n, w.all(), tc.warns)
			}
		})
	}
}

func TestOnRequestLeavesTheCallersAttributesAlone(t *testing.T) {
	p := New()
	if d := configure(p, attrs("a", "1", "b", "{#context.attributes['a']}")); d.HasErrors() {
		t.Fatal(d.Err())
	}
	c := requestContext()
	var out policy.RequestResult
	if err := p.OnRequest(t.Context(), &policy.RequestPhase{InstanceID: "i", Context: c}, &out); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Attributes["a"]; ok || len(c.Attributes) != 1 {
		t.Fatalf("context attributes changed: %v", c.Attributes)
	}
	if !reflect.DeepEqual(out.SetAttributes, map[string]any{"a": "1", "b": "1"}) {
		t.Fatalf("set %v", out.SetAttributes)
	}
}

func configure(p *Plugin, config map[string]any) lifecycle.Diagnostics {
	var resp lifecycle.ConfigureResponse
	b, _ := json.Marshal(config)
	p.Configure(context.Background(), &lifecycle.ConfigureRequest{InstanceID: "i", Type: typeName, APIID: "orders", ConfigJSON: b}, &resp)
	return resp.Diagnostics
}

func TestOnMessages(t *testing.T) {
	h, w := start(t, attrs(
		"gravitee.attribute.kafka.recordKey", "{#message.headers['X-Key'][0]}",
		"topic", "{#message.metadata['topic']}",
		"size", "{#message.contentLength}",
		"echo", "{#message.content}",
		"fromRequest", "{#request.headers['X-Key'][0]}",
	))
	msgs := []*gateway.Message{
		{Content: []byte("first"), Headers: gateway.Headers{"x-key": {"k-1"}}, Metadata: map[string]any{"topic": "t1"}, Tag: 1},
		{Content: []byte("second!"), Metadata: map[string]any{"topic": "t2"}, Attributes: map[string]any{"kept": true}, Tag: 2},
	}
	got, interrupt := h.OnMessages(t, "i", policy.PhasePublish, requestContext(), msgs...)
	if interrupt != nil {
		t.Fatal(interrupt)
	}
	if len(got) != 2 || string(got[0].Content) != "first" || string(got[1].Content) != "second!" || got[0].Tag != 1 || got[1].Tag != 2 {
		t.Fatalf("messages %+v", got)
	}
	want0 := map[string]any{"gravitee.attribute.kafka.recordKey": "k-1", "topic": "t1", "size": int64(5), "echo": "first", "fromRequest": "k1"}
	want1 := map[string]any{"kept": true, "topic": "t2", "size": int64(7), "echo": "second!", "fromRequest": "k1"}
	if !reflect.DeepEqual(got[0].Attributes, want0) {
		t.Fatalf("first message attributes %#v", got[0].Attributes)
	}
	if !reflect.DeepEqual(got[1].Attributes, want1) {
		t.Fatalf("second message attributes %#v", got[1].Attributes)
	}
	// The second message has no X-Key header: that attribute is skipped.
	if ws := w.all(); len(ws) != 1 || !strings.Contains(ws[0], "gravitee.attribute.kafka.recordKey") {
		t.Fatalf("warnings %q", ws)
	}
}

func TestOnMessagesSubscribePhase(t *testing.T) {
	h, _ := start(t, attrs("id", "{#message.id}"))
	got, _ := h.OnMessages(t, "i", policy.PhaseSubscribe, requestContext(),
		&gateway.Message{ID: "dGVzdC10b3BpY0AwIzA=", Content: []byte("m")},
		&gateway.Message{Content: []byte("no id")})
	if got[0].Attribute("id") != "dGVzdC10b3BpY0AwIzA=" || got[1].Attribute("id") != nil {
		t.Fatalf("attributes %v / %v", got[0].Attributes, got[1].Attributes)
	}
}

func TestUnconfiguredInstance(t *testing.T) {
	p := New()
	var out policy.RequestResult
	if err := p.OnRequest(t.Context(), &policy.RequestPhase{InstanceID: "x"}, &out); err == nil {
		t.Fatal("want an error")
	}
	if _, err := p.OnMessages(t.Context(), &policy.MessagesPhase{InstanceID: "x"}); err == nil {
		t.Fatal("want an error")
	}
}

func TestDecodeConfig(t *testing.T) {
	tests := map[string]struct {
		json    string
		entries []string
		wantErr string
		warn    bool
	}{
		"empty":                        {json: ``},
		"no attributes":                {json: `{"attribute":[]}`},
		"entries":                      {json: `{"attribute":[{"name":"a","value":"1"},{"name":"b","value":"{#request.method}"}]}`, entries: []string{"a", "b"}},
		"scope ignored with a warning": {json: `{"scope":"REQUEST","attribute":[{"name":"a","value":"1"}]}`, entries: []string{"a"}, warn: true},
		"unknown scope":                {json: `{"scope":"EVERYWHERE"}`, wantErr: `scope: unsupported scope "EVERYWHERE"`},
		"bad EL":                       {json: `{"attribute":[{"name":"a","value":"1"},{"name":"b","value":"{#request.method"}]}`, wantErr: "attribute.1.value: el: "},
		"unknown field":                {json: `{"attribute":[{"name":"a","value":"1","scope":"x"}]}`, wantErr: `attribute.0.scope: unsupported attribute "scope"`},
		"value not a string":           {json: `{"attribute":[{"name":"a","value":1}]}`, wantErr: "attribute.0.value: invalid value 1: expected a string"},
		"attribute not a list":         {json: `{"attribute":{"name":"a"}}`, wantErr: "attribute: invalid attribute blocks"},
		"unknown top-level":            {json: `{"attributes":[]}`, wantErr: `unsupported attribute or block "attributes"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodeConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err := diags.Err(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if diags.HasErrors() || (len(diags) > 0) != tc.warn {
				t.Fatalf("diagnostics %+v", diags)
			}
			var names []string
			for _, e := range cfg.entries {
				names = append(names, e.name)
			}
			if !reflect.DeepEqual(names, tc.entries) {
				t.Fatalf("entries %q, want %q", names, tc.entries)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	h := plugintest.Start(t, New())
	ty := h.Metadata(t).Types[0]
	if ty.Name != "policy-assign-attributes" || !reflect.DeepEqual(ty.Aliases, []string{"assign-attributes"}) ||
		!reflect.DeepEqual(ty.Phases, []string{"request", "response", "publish", "subscribe"}) {
		t.Fatalf("type %+v", ty)
	}
	for _, typ := range []string{"policy-assign-attributes", "assign-attributes"} {
		if d := h.Validate(t, typ, attrs("a", "b")); d.HasErrors() {
			t.Fatalf("%s: %v", typ, d.Err())
		}
	}
	if d := h.Validate(t, "other", nil); !d.HasErrors() {
		t.Fatal("want an error")
	}
}
