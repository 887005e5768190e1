package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/sluice-gw/sluice/sdk/policy"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// add builds the JSON form of add_header blocks, as the core sends them.
func add(pairs ...string) []map[string]any {
	var out []map[string]any
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, map[string]any{"name": pairs[i], "value": pairs[i+1]})
	}
	return out
}

// warnings records what the plugin logs instead of writing it to stderr.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, fmt.Sprint(append([]any{msg, " "}, args...)...))
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// start serves a fresh plugin through plugintest and configures instance
// "i" of API "orders" with config.
func start(t *testing.T, config any) (*plugintest.Harness, *warnings) {
	t.Helper()
	p := New()
	w := &warnings{}
	p.warn = w.add
	h := plugintest.Start(t, p)
	if d := h.ConfigureAPI(t, "i", typeName, "orders", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	return h, w
}

func requestContext() *gateway.Context {
	return &gateway.Context{
		APIID: "orders",
		Request: &gateway.Request{
			Method:  "POST",
			Path:    "/orders",
			Headers: gateway.Headers{"X-Tenant": {"acme"}, "Content-Type": {"application/json"}},
		},
		Attributes: map[string]any{"gravitee.attribute.clientIdentifier": "client-1"},
	}
}

func TestMetadata(t *testing.T) {
	h := plugintest.Start(t, New())
	md := h.Metadata(t)
	if md.Kind != lifecycle.KindPolicy || md.Name != pluginName {
		t.Fatalf("kind %q name %q, want policy %q", md.Kind, md.Name, pluginName)
	}
	if len(md.Types) != 1 || md.Types[0].Name != typeName {
		t.Fatalf("types = %+v, want one %q", md.Types, typeName)
	}
	if got, want := md.Types[0].Phases, []string{policy.PhasePublish, policy.PhaseSubscribe}; !reflect.DeepEqual(got, want) {
		t.Errorf("phases = %v, want %v", got, want)
	}
	// The schema survives the round trip the core makes (Go -> wire -> Go).
	if !reflect.DeepEqual(md.Types[0].Schema, configSchema) {
		t.Errorf("schema after the round trip = %+v\nwant %+v", md.Types[0].Schema, configSchema)
	}
	// `describe` prints what serve.Describe returns; `sluice plugins` reads it.
	d, err := serve.Describe(New())
	if err != nil {
		t.Fatal(err)
	}
	if d.ProtocolVersion != serve.ProtocolVersion || d.Kind != "policy" || d.Name != pluginName {
		t.Errorf("describe = %+v", d)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		typ    string
		config any
		// want lists "path: summary fragment" per diagnostic, in order.
		want []string
		// warning is true when the diagnostics are warnings only.
		warning bool
	}{
		"empty block": {config: nil},
		"everything": {config: map[string]any{
			"remove_headers":    []string{"X-Internal"},
			"whitelist_headers": []string{"Content-Type", "X-Trace"},
			"add_header":        add("X-Tenant", "{#request.headers['X-Tenant'][0]}", "X-Source", "sluice"),
		}},
		"unknown type": {typ: "transform-header", want: []string{": unknown type \"transform-header\""}},
		"unknown field": {
			config: map[string]any{"set": map[string]string{"a": "b"}},
			want:   []string{`: configuration does not match the transform-headers schema: json: unknown field "set"`},
		},
		"not an object": {config: []byte(`[1]`), want: []string{": configuration does not match"}},
		"missing name": {
			config: map[string]any{"add_header": []map[string]any{{"value": "v"}}},
			want:   []string{"add_header.0.name: add_header needs a name"},
		},
		"missing value": {
			config: map[string]any{"add_header": []map[string]any{{"name": "X-A"}}},
			want:   []string{"add_header.0.value: add_header needs a value"},
		},
		"bad names": {
			config: map[string]any{
				"remove_headers":    []string{"X Bad"},
				"whitelist_headers": []string{""},
				"add_header":        add("ok", "1", "X:Colon", "v"),
			},
			want: []string{
				`remove_headers: "X Bad" is not a valid header name`,
				`whitelist_headers: "" is not a valid header name`,
				`add_header.1.name: "X:Colon" is not a valid header name`,
			},
		},
		"bad name and bad value are both reported": {
			config: map[string]any{"add_header": add("X Bad", "{#request.headers[}")},
			want:   []string{`add_header.0.name: "X Bad" is not a valid header name`, "add_header.0.value: el: {#request.headers[}"},
		},
		"expression that does not compile": {
			config: map[string]any{"add_header": add("X-A", "ok", "X-B", "id={#request.headers[}")},
			want:   []string{"add_header.1.value: el: {#request.headers[} at column"},
		},
		"header added twice": {
			config:  map[string]any{"add_header": add("X-A", "1", "x-a", "2")},
			want:    []string{`add_header.1.name: header "x-a" is added twice; the last add_header wins`},
			warning: true,
		},
	}
	h := plugintest.Start(t, New())
	// These cases test the plugin's own decoder, including values the core's
	// schema check would stop first (TestSchemaChecked shows that check).
	h.SkipSchema = true
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			typ := tc.typ
			if typ == "" {
				typ = typeName
			}
			d := h.Validate(t, typ, tc.config)
			if len(d) != len(tc.want) {
				t.Fatalf("got %d diagnostics %+v, want %d", len(d), d, len(tc.want))
			}
			for i, w := range tc.want {
				path, summary, _ := strings.Cut(w, ": ")
				if got := strings.Join(d[i].Path, "."); got != path {
					t.Errorf("diagnostic %d path = %q, want %q", i, got, path)
				}
				if !strings.Contains(d[i].Summary, summary) {
					t.Errorf("diagnostic %d summary = %q, want it to contain %q", i, d[i].Summary, summary)
				}
			}
			if len(d) > 0 && d.HasErrors() == tc.warning {
				t.Errorf("HasErrors = %v, want %v", d.HasErrors(), !tc.warning)
			}
		})
	}
}

func TestConfigureRejectsInvalid(t *testing.T) {
	h := plugintest.Start(t, New())
	d := h.Configure(t, "i", typeName, map[string]any{"add_header": add("X A", "v")})
	if !d.HasErrors() {
		t.Fatal("Configure accepted an invalid header name")
	}
	// The instance must not exist: a batch for it is a gateway fault.
	_, f := h.OnMessages(t, "i", policy.PhasePublish, requestContext(), &gateway.Message{Content: []byte("x")})
	if f == nil || f.Status != 500 || f.Key != "FAILURE_POLICY_UNKNOWN_ERROR" {
		t.Fatalf("failure = %+v, want the SDK's 500 FAILURE_POLICY_UNKNOWN_ERROR", f)
	}
}

func TestOnMessages(t *testing.T) {
	tests := map[string]struct {
		config any
		phase  string
		in     gateway.Headers
		want   gateway.Headers
		warns  int
	}{
		"remove ignores case": {
			config: map[string]any{"remove_headers": []string{"x-internal", "X-Debug"}},
			in:     gateway.Headers{"X-Internal": {"1"}, "x-debug": {"2"}, "Keep": {"3"}},
			want:   gateway.Headers{"Keep": {"3"}},
		},
		"whitelist keeps only the listed headers": {
			config: map[string]any{"whitelist_headers": []string{"content-type"}},
			in:     gateway.Headers{"Content-Type": {"text/plain"}, "Host": {"h"}, "User-Agent": {"curl"}},
			want:   gateway.Headers{"Content-Type": {"text/plain"}},
		},
		"added headers survive the whitelist": {
			config: map[string]any{"whitelist_headers": []string{"Content-Type"}, "add_header": add("X-Source", "sluice")},
			in:     gateway.Headers{"Content-Type": {"a"}, "Host": {"h"}},
			want:   gateway.Headers{"Content-Type": {"a"}, "X-Source": {"sluice"}},
		},
		"add replaces every spelling": {
			config: map[string]any{"add_header": add("X-Tenant", "new")},
			in:     gateway.Headers{"x-tenant": {"old1", "old2"}, "X-TENANT": {"old3"}},
			want:   gateway.Headers{"X-Tenant": {"new"}},
		},
		"add to a message without headers": {
			config: map[string]any{"add_header": add("X-A", "1")},
			in:     nil,
			want:   gateway.Headers{"X-A": {"1"}},
		},
		"request EL in the publish phase": {
			config: map[string]any{"add_header": add("X-Tenant", "{#request.headers['x-tenant'][0]}", "X-Api", "{#api.id}")},
			want:   gateway.Headers{"X-Tenant": {"acme"}, "X-Api": {"orders"}},
		},
		"message EL in the subscribe phase": {
			config: map[string]any{"add_header": add("X-Origin", "{#message.metadata['topic']}@{#message.metadata['partition']}")},
			phase:  policy.PhaseSubscribe,
			want:   gateway.Headers{"X-Origin": {"orders@2"}},
		},
		"context attribute": {
			config: map[string]any{"add_header": add("X-Client", "{#context.attributes['gravitee.attribute.clientIdentifier']}")},
			want:   gateway.Headers{"X-Client": {"client-1"}},
		},
		"null leaves the header unset": {
			config: map[string]any{"add_header": add("X-None", "{#request.headers['X-Absent']}")},
			in:     gateway.Headers{"A": {"1"}},
			want:   gateway.Headers{"A": {"1"}},
		},
		"a failing expression is logged and skipped": {
			config: map[string]any{"add_header": add("X-Bad", "{#request.headers['X-Absent'][0]}", "X-Good", "ok")},
			want:   gateway.Headers{"X-Good": {"ok"}},
			warns:  1,
		},
		"a list is joined with commas": {
			config: map[string]any{"add_header": add("X-Types", "{#request.headers['Content-Type']}")},
			want:   gateway.Headers{"X-Types": {"application/json"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, w := start(t, tc.config)
			phase := tc.phase
			if phase == "" {
				phase = policy.PhasePublish
			}
			in := &gateway.Message{
				Content:  []byte("payload"),
				Headers:  tc.in,
				Metadata: map[string]any{"topic": "orders", "partition": 2},
				Tag:      7,
			}
			out, f := h.OnMessages(t, "i", phase, requestContext(), in)
			if f != nil {
				t.Fatalf("interrupted: %v", f)
			}
			if len(out) != 1 {
				t.Fatalf("got %d messages, want 1", len(out))
			}
			got := out[0]
			if !reflect.DeepEqual(got.Headers, tc.want) && !(len(got.Headers) == 0 && len(tc.want) == 0) {
				t.Errorf("headers = %v, want %v", got.Headers, tc.want)
			}
			if string(got.Content) != "payload" || got.Tag != 7 {
				t.Errorf("content %q tag %d: the policy must leave both alone", got.Content, got.Tag)
			}
			if n := len(w.all()); n != tc.warns {
				t.Errorf("warnings = %q, want %d", w.all(), tc.warns)
			}
		})
	}
}

func TestBatchOrderAndErrorMessages(t *testing.T) {
	h, _ := start(t, map[string]any{"remove_headers": []string{"X-Drop"}, "add_header": add("X-Seq", "{#message.attributes['seq']}")})
	failure := &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_UNKNOWN_ERROR", Message: "Endpoint unknown error"}
	msgs := []*gateway.Message{
		{Content: []byte("a"), Headers: gateway.Headers{"X-Drop": {"1"}}, Attributes: map[string]any{"seq": "1"}, Tag: 1},
		{Error: failure, Headers: gateway.Headers{"X-Drop": {"kept on error messages"}}},
		{Content: []byte("b"), Attributes: map[string]any{"seq": "2"}, Tag: 2},
	}
	out, f := h.OnMessages(t, "i", policy.PhaseSubscribe, requestContext(), msgs...)
	if f != nil {
		t.Fatalf("interrupted: %v", f)
	}
	var got []string
	for _, m := range out {
		got = append(got, fmt.Sprintf("%s|%v|%d|%v", m.Content, m.Headers, m.Tag, m.Error != nil))
	}
	want := []string{
		"a|map[X-Seq:[1]]|1|false",
		"|map[X-Drop:[kept on error messages]]|0|true",
		"b|map[X-Seq:[2]]|2|false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("batch =\n%q\nwant\n%q", got, want)
	}
}

func TestInstancesAreIndependent(t *testing.T) {
	h, _ := start(t, map[string]any{"add_header": add("X-Which", "first")})
	if d := h.Configure(t, "j", typeName, map[string]any{"add_header": add("X-Which", "second")}); d.HasErrors() {
		t.Fatal(d.Err())
	}
	for id, want := range map[string]string{"i": "first", "j": "second"} {
		out, f := h.OnMessages(t, id, policy.PhasePublish, requestContext(), &gateway.Message{Content: []byte("x")})
		if f != nil {
			t.Fatalf("%s: interrupted: %v", id, f)
		}
		if got := out[0].Headers.Get("X-Which"); got != want {
			t.Errorf("instance %s set %q, want %q", id, got, want)
		}
	}
	h.Unconfigure(t, "j")
	if _, f := h.OnMessages(t, "j", policy.PhasePublish, requestContext(), &gateway.Message{Content: []byte("x")}); f == nil {
		t.Error("an unconfigured instance still transformed messages")
	}
}

func TestOnRequestRefuses(t *testing.T) {
	h, _ := start(t, nil)
	attrs, f := h.OnRequest(t, "i", requestContext())
	if len(attrs) != 0 {
		t.Errorf("attributes = %v, want none", attrs)
	}
	if f == nil || f.Status != 500 || f.Key != "FAILURE_POLICY_PHASE_UNSUPPORTED" {
		t.Fatalf("failure = %+v, want 500 FAILURE_POLICY_PHASE_UNSUPPORTED", f)
	}
}

// TestSchemaChecked shows what an operator sees for blocks the declared
// schema refuses: the harness checks them as the core does, before the
// plugin's Validate.
func TestSchemaChecked(t *testing.T) {
	h := plugintest.Start(t, New())
	tests := map[string]struct {
		config any
		path   string
		want   string
	}{
		"unknown attribute": {map[string]any{"set": 1}, "set", `Unsupported argument or block "set"`},
		"wrong type":        {map[string]any{"remove_headers": "X-A"}, "remove_headers", "Incorrect attribute value type"},
		"missing required":  {map[string]any{"add_header": []any{map[string]any{"name": "X-A"}}}, "add_header.0.value", "Missing required argument"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := h.Validate(t, typeName, tc.config)
			if len(d) != 1 || d[0].Summary != tc.want || strings.Join(d[0].Path, ".") != tc.path {
				t.Fatalf("Validate = %+v, want one %q at %s", d, tc.want, tc.path)
			}
		})
	}
}
