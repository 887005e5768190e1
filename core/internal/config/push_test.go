package config

import (
	"encoding/json"
	"testing"
)

// TestPushSubscriptions checks what a push plan decodes to: the ids, the
// dlq reference and the JSON the webhook entrypoint receives, with the
// plan not counted as a request plan (the API stays keyless for HTTP).
func TestPushSubscriptions(t *testing.T) {
	f := mustLoad(t, "testdata/valid/push.hcl")
	api := f.APIs[0]
	if len(api.Push) != 2 {
		t.Fatalf("push subscriptions = %d, want 2", len(api.Push))
	}
	if len(api.Plans) != 1 || api.Plans[0].Type != "keyless" {
		t.Errorf("request plans = %+v, want keyless only", api.Plans)
	}
	if len(api.Endpoints) != 2 || api.Endpoints[1].Name != "dead" {
		t.Errorf("endpoints = %d, want default and dead", len(api.Endpoints))
	}
	tests := []struct {
		id, callback, dlq string
		check             func(t *testing.T, m map[string]any)
	}{
		{"billing-hook", "https://billing.example/hooks/orders", "dead", func(t *testing.T, m map[string]any) {
			h := m["header"].([]any)[0].(map[string]any)
			if h["name"] != "X-Token" || h["value"] != "secret" {
				t.Errorf("header = %v", h)
			}
			r := m["retry"].(map[string]any)
			if r["retry_strategy"] != "EXPONENTIAL" || r["max_attempts"] != float64(5) {
				t.Errorf("retry = %v", r)
			}
			o := m["auth"].(map[string]any)["oauth2"].(map[string]any)
			if o["client_id"] != "gw" || o["scopes"].([]any)[0] != "hooks" {
				t.Errorf("oauth2 = %v", o)
			}
			if m["ssl"].(map[string]any)["trust_all"] != true {
				t.Errorf("ssl = %v", m["ssl"])
			}
		}},
		{"audit", "http://127.0.0.1:8099/audit", "", func(t *testing.T, m map[string]any) {
			if b := m["auth"].(map[string]any)["basic"].(map[string]any); b["username"] != "u" {
				t.Errorf("basic = %v", b)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			ps := api.Push[i]
			if ps.ID != tt.id || ps.CallbackURL != tt.callback || ps.DLQ != tt.dlq {
				t.Errorf("got %s %s %s", ps.ID, ps.CallbackURL, ps.DLQ)
			}
			var m map[string]any
			if err := json.Unmarshal(ps.ConfigJSON, &m); err != nil {
				t.Fatal(err)
			}
			if m["callback_url"] != tt.callback {
				t.Errorf("callback_url = %v", m["callback_url"])
			}
			tt.check(t, m)
		})
	}
}
