package main

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/instances"
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

// decodeConfig decodes and checks a configuration block, applying defaults.
// Every problem is reported, not only the first.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	cfg := &config{QoS: defaultQoS, Heartbeat: defaultHeartbeatMs * time.Millisecond}
	d := instances.NewDecoder(data, configSchema)
	var qos string
	if d.String("qos", &qos) {
		if !slices.Contains(supportedQoS, qos) {
			d.Errorf("qos", "unsupported qos %q; the sse entrypoint accepts %s", qos, strings.Join(supportedQoS, ", "))
		} else {
			cfg.QoS = qos
		}
	}
	var heartbeat *float64
	if d.Value("heartbeat_interval_in_ms", &heartbeat) {
		ms := *heartbeat
		switch {
		case ms != math.Trunc(ms) || math.IsInf(ms, 0):
			d.Errorf("heartbeat_interval_in_ms", "heartbeat_interval_in_ms must be a whole number of milliseconds, got %v", ms)
		case ms < minHeartbeatMs:
			d.Errorf("heartbeat_interval_in_ms", "heartbeat_interval_in_ms must be at least %d, got %v: shorter heartbeats only add traffic", minHeartbeatMs, ms)
		case ms > float64(math.MaxInt64/int64(time.Millisecond)):
			d.Errorf("heartbeat_interval_in_ms", "heartbeat_interval_in_ms is too large: %v", ms)
		default:
			cfg.Heartbeat = time.Duration(ms) * time.Millisecond
		}
	}
	d.Bool("metadata_as_comment", &cfg.MetadataAsComment)
	d.Bool("headers_as_comment", &cfg.HeadersAsComment)
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	return cfg, d.Diagnostics()
}
