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

func start(t *testing.T, filter string) (*plugintest.Harness, *warnings) {
	t.Helper()
	p := New()
	w := &warnings{}
	p.warn = w.add
	h := plugintest.Start(t, p)
	if d := h.ConfigureAPI(t, "i", "message-filtering", "orders", map[string]any{"filter": filter}); d.HasErrors() {
		t.Fatal(d.Err())
	}
	return h, w
}

func TestOnMessages(t *testing.T) {
	batch := func() []*gateway.Message {
		return []*gateway.Message{
			{Content: []byte("vip:1"), Headers: gateway.Headers{"X-Keep": {"y"}}, Tag: 1},
			{Content: []byte("plain"), Tag: 2},
			{Content: []byte("vip:2"), Metadata: map[string]any{"partition": int64(1)}, Tag: 3},
			{Error: &gateway.Failure{Status: 500, Message: "broken"}},
		}
	}
	tests := map[string]struct {
		filter string
		want   []string
		warns  int
	}{
		"content":              {filter: "{#message.content matches 'vip:.*'}", want: []string{"vip:1", "vip:2", ""}},
		"header":               {filter: "{#message.headers['x-keep'] != null}", want: []string{"vip:1", ""}},
		"metadata":             {filter: "{#message.metadata['partition'] == 1}", want: []string{"vip:2", ""}},
		"request":              {filter: "{#request.headers['X-All'] != null}", want: []string{"vip:1", "plain", "vip:2", ""}},
		"none":                 {filter: "{#message.content == 'nothing'}", want: []string{""}},
		"failing filter drops": {filter: "{#message.headers['X-Keep'][0] == 'y'}", want: []string{"vip:1", ""}, warns: 2},
		"non-boolean drops":    {filter: "{#message.content}", want: []string{""}},
	}
	for name, tc := range tests {
		for _, phase := range []string{policy.PhasePublish, policy.PhaseSubscribe} {
			t.Run(name+"/"+phase, func(t *testing.T) {
				h, w := start(t, tc.filter)
				c := &gateway.Context{Request: &gateway.Request{Headers: gateway.Headers{"X-All": {"1"}}}}
				got, f := h.OnMessages(t, "i", phase, c, batch()...)
				if f != nil {
					t.Fatal(f)
				}
				var contents []string
				for _, m := range got {
					contents = append(contents, string(m.Content))
				}
				if !reflect.DeepEqual(contents, tc.want) {
					t.Fatalf("kept %q, want %q", contents, tc.want)
				}
				// Kept messages keep their tags, for acknowledgements.
				for _, m := range got {
					if m.Error == nil && m.Tag == 0 {
						t.Fatalf("message %q lost its tag", m.Content)
					}
				}
				if w.count() != tc.warns {
					t.Fatalf("%d warnings, want %d", w.count(), tc.warns)
				}
			})
		}
	}
}

func TestValidate(t *testing.T) {
	h := plugintest.Start(t, New())
	// The plugin's own diagnostics, for blocks the core's schema check would
	// stop first.
	h.SkipSchema = true
	tests := map[string]struct {
		config map[string]any
		err    string
	}{
		"valid":         {config: map[string]any{"filter": "{#message.content == 'x'}"}},
		"missing":       {config: map[string]any{}, err: "filter is required"},
		"not EL":        {config: map[string]any{"filter": "true"}, err: "is not EL"},
		"bad EL":        {config: map[string]any{"filter": "{#message.contnt == 'x'}"}, err: "no field contnt"},
		"unknown field": {config: map[string]any{"filter": "{#true}", "condition": "x"}, err: "unknown field"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := h.Validate(t, "message-filtering", tc.config)
			if tc.err == "" {
				if d.HasErrors() {
					t.Fatal(d.Err())
				}
				return
			}
			if !d.HasErrors() || !strings.Contains(d.Err().Error(), tc.err) {
				t.Fatalf("diagnostics %v, want an error containing %q", d, tc.err)
			}
		})
	}
}
