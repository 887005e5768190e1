package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeConfig(t *testing.T) {
	defaults := &config{QoS: "auto", Heartbeat: 5 * time.Second}
	tests := map[string]struct {
		json    string
		want    *config
		wantErr string // substring of the diagnostics, "" for none
	}{
		"empty":      {json: ``, want: defaults},
		"null":       {json: `null`, want: defaults},
		"all absent": {json: `{"qos":null,"heartbeat_interval_in_ms":null,"metadata_as_comment":null,"headers_as_comment":null}`, want: defaults},
		"all set": {
			json: `{"qos":"at-least-once","heartbeat_interval_in_ms":2000,"metadata_as_comment":true,"headers_as_comment":true}`,
			want: &config{QoS: "at-least-once", Heartbeat: 2 * time.Second, MetadataAsComment: true, HeadersAsComment: true},
		},
		"heartbeat below minimum": {json: `{"heartbeat_interval_in_ms":1999}`, wantErr: "heartbeat_interval_in_ms: heartbeat_interval_in_ms must be at least 2000"},
		"heartbeat fraction":      {json: `{"heartbeat_interval_in_ms":2000.5}`, wantErr: "whole number"},
		"heartbeat wrong type":    {json: `{"heartbeat_interval_in_ms":"5000"}`, wantErr: "expected a number, got a JSON string"},
		"unsupported qos":         {json: `{"qos":"exactly-once"}`, wantErr: `unsupported qos "exactly-once"`},
		"unknown attribute":       {json: `{"heartbeat":1}`, wantErr: `unsupported attribute "heartbeat"`},
		"not an object":           {json: `[1]`, wantErr: "not a JSON object"},
		"every problem reported": {
			json:    `{"qos":"x","heartbeat_interval_in_ms":1}`,
			wantErr: `qos: unsupported qos "x"; the sse entrypoint accepts none, auto, at-most-once, at-least-once; heartbeat_interval_in_ms: heartbeat_interval_in_ms must be at least 2000`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodeConfig([]byte(tc.json))
			if tc.wantErr != "" {
				err := diags.Err()
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				if cfg != nil {
					t.Fatalf("got a config with errors: %+v", cfg)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Err())
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Fatalf("got %+v, want %+v", cfg, tc.want)
			}
		})
	}
}
