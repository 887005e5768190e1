package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// Configuration defaults and bounds (docs/behaviour.md 5.1).
const (
	defaultHeartbeatMs = 5000
	minHeartbeatMs     = 2000
	defaultQoS         = endpoint.QoSAuto
)

// supportedQoS are the QoS levels SSE can honour with Kafka: at-most-once and
// at-least-once resume from Last-Event-ID.
var supportedQoS = []string{endpoint.QoSNone, endpoint.QoSAuto, endpoint.QoSAtMostOnce, endpoint.QoSAtLeastOnce}

// configSchema is the HCL block of `entrypoint "sse"`.
var configSchema = schema.Schema{
	Attributes: []schema.Attribute{
		{
			Name:        "qos",
			Type:        schema.String,
			Description: "Quality of service asked of the endpoint: none, auto, at-most-once or at-least-once. The at-* levels give events ids and resume from Last-Event-ID.",
			Enum:        supportedQoS,
			Default:     defaultQoS,
		},
		{
			Name:        "heartbeat_interval_in_ms",
			Type:        schema.Number,
			Description: "A comment line (\":\") is sent when nothing was written for this long, so proxies keep the stream open and dead clients are noticed. At least 2000.",
			Default:     defaultHeartbeatMs,
		},
		{
			Name:        "metadata_as_comment",
			Type:        schema.Bool,
			Description: "Send each message's metadata as comment lines \":key: value\" after its data.",
			Default:     false,
		},
		{
			Name:        "headers_as_comment",
			Type:        schema.Bool,
			Description: "Send each message's headers as comment lines \":name: v1,v2\" after its data.",
			Default:     false,
		},
	},
}

// config is one decoded instance configuration.
type config struct {
	// QoS is passed to the endpoint on Subscribe.
	QoS string
	// Heartbeat is the idle time after which a heartbeat is written.
	Heartbeat time.Duration
	// MetadataAsComment adds metadata comment lines to events.
	MetadataAsComment bool
	// HeadersAsComment adds header comment lines to events.
	HeadersAsComment bool
}

// rawConfig is the JSON the core sends: snake_case names, null for absent
// attributes.
type rawConfig struct {
	QoS                   *string  `json:"qos"`
	HeartbeatIntervalInMs *float64 `json:"heartbeat_interval_in_ms"`
	MetadataAsComment     *bool    `json:"metadata_as_comment"`
	HeadersAsComment      *bool    `json:"headers_as_comment"`
}

var knownAttributes = []string{"qos", "heartbeat_interval_in_ms", "metadata_as_comment", "headers_as_comment"}

// decodeConfig decodes and checks a configuration block, applying defaults.
// Every problem is reported, not only the first.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	cfg := &config{QoS: defaultQoS, Heartbeat: defaultHeartbeatMs * time.Millisecond}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return cfg, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		diags.Errorf(nil, "configuration is not a JSON object: %v", err)
		return nil, diags
	}
	for _, k := range sortedKeys(fields) {
		if !contains(knownAttributes, k) {
			diags.Errorf([]string{k}, "unsupported attribute %q; allowed: %s", k, strings.Join(knownAttributes, ", "))
		}
	}
	var raw rawConfig
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"qos", &raw.QoS},
		{"heartbeat_interval_in_ms", &raw.HeartbeatIntervalInMs},
		{"metadata_as_comment", &raw.MetadataAsComment},
		{"headers_as_comment", &raw.HeadersAsComment},
	} {
		if v, ok := fields[f.name]; ok {
			if err := json.Unmarshal(v, f.dst); err != nil {
				diags.Errorf([]string{f.name}, "invalid value %s: %s", v, typeProblem(err))
			}
		}
	}
	if raw.QoS != nil {
		if !contains(supportedQoS, *raw.QoS) {
			diags.Errorf([]string{"qos"}, "unsupported qos %q; the sse entrypoint accepts %s", *raw.QoS, strings.Join(supportedQoS, ", "))
		} else {
			cfg.QoS = *raw.QoS
		}
	}
	if raw.HeartbeatIntervalInMs != nil {
		ms := *raw.HeartbeatIntervalInMs
		switch {
		case ms != math.Trunc(ms) || math.IsInf(ms, 0):
			diags.Errorf([]string{"heartbeat_interval_in_ms"}, "heartbeat_interval_in_ms must be a whole number of milliseconds, got %v", ms)
		case ms < minHeartbeatMs:
			diags.Errorf([]string{"heartbeat_interval_in_ms"}, "heartbeat_interval_in_ms must be at least %d, got %v: shorter heartbeats only add traffic", minHeartbeatMs, ms)
		case ms > float64(math.MaxInt64/int64(time.Millisecond)):
			diags.Errorf([]string{"heartbeat_interval_in_ms"}, "heartbeat_interval_in_ms is too large: %v", ms)
		default:
			cfg.Heartbeat = time.Duration(ms) * time.Millisecond
		}
	}
	if raw.MetadataAsComment != nil {
		cfg.MetadataAsComment = *raw.MetadataAsComment
	}
	if raw.HeadersAsComment != nil {
		cfg.HeadersAsComment = *raw.HeadersAsComment
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// typeProblem turns a JSON decoding error into words an operator can act on.
func typeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Float64:
			want = "number"
		case reflect.Bool:
			want = "bool"
		}
		return fmt.Sprintf("expected a %s, got a JSON %s", want, te.Value)
	}
	return err.Error()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
