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

// The entrypoint types this plugin provides.
const (
	typeGet     = "http-get"
	typePost    = "http-post"
	typeWebhook = "webhook"
)

const defaultQoS = endpoint.QoSAuto

// QoS levels each type accepts (docs/behaviour.md 5): GET has no "none" because
// it must commit what it returned; POST has no at-* because the client
// cannot resume a publish.
var (
	getQoS     = []string{endpoint.QoSAuto, endpoint.QoSAtMostOnce, endpoint.QoSAtLeastOnce}
	postQoS    = []string{endpoint.QoSNone, endpoint.QoSAuto}
	webhookQoS = []string{endpoint.QoSNone, endpoint.QoSAuto, endpoint.QoSAtMostOnce, endpoint.QoSAtLeastOnce}
)

// HTTP GET defaults (docs/behaviour.md 5.2).
const (
	defaultLimitCount      = 500
	defaultLimitDurationMs = 5000
)

func qosAttribute(levels []string) schema.Attribute {
	return schema.Attribute{
		Name:        "qos",
		Type:        schema.String,
		Description: "Quality of service asked of the endpoint: " + strings.Join(levels, ", ") + ".",
		Enum:        levels,
		Default:     defaultQoS,
	}
}

var getSchema = schema.Schema{Attributes: []schema.Attribute{
	qosAttribute(getQoS),
	{Name: "messages_limit_count", Type: schema.Number, Default: defaultLimitCount,
		Description: "Most messages one GET returns; the limit query parameter can only lower it."},
	{Name: "messages_limit_duration_ms", Type: schema.Number, Default: defaultLimitDurationMs,
		Description: "Longest a GET waits for messages before answering with what it has; 0 waits until the count is reached."},
	{Name: "headers_in_payload", Type: schema.Bool, Default: false,
		Description: "Include each message's headers in the response."},
	{Name: "metadata_in_payload", Type: schema.Bool, Default: false,
		Description: "Include each message's metadata (topic, partition, offset...) in the response."},
}}

var postSchema = schema.Schema{Attributes: []schema.Attribute{
	qosAttribute(postQoS),
	{Name: "request_headers_to_message", Type: schema.Bool, Default: false,
		Description: "Copy the request headers into the published message's headers."},
}}

// getConfig is one decoded http-get instance.
type getConfig struct {
	QoS               string
	LimitCount        int64
	LimitDurationMs   int64
	HeadersInPayload  bool
	MetadataInPayload bool
}

// postConfig is one decoded http-post instance.
type postConfig struct {
	QoS                     string
	RequestHeadersToMessage bool
}

func decodeGet(data []byte) (*getConfig, lifecycle.Diagnostics) {
	cfg := &getConfig{QoS: defaultQoS, LimitCount: defaultLimitCount, LimitDurationMs: defaultLimitDurationMs}
	d := newDecoder(data, getSchema)
	qos(d, "qos", getQoS, typeGet, &cfg.QoS)
	d.WholeNumber("messages_limit_count", 0, math.MaxInt32, &cfg.LimitCount)
	d.WholeNumber("messages_limit_duration_ms", 0, math.MaxInt64/int64(time.Millisecond), &cfg.LimitDurationMs)
	d.Bool("headers_in_payload", &cfg.HeadersInPayload)
	d.Bool("metadata_in_payload", &cfg.MetadataInPayload)
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	return cfg, d.Diagnostics()
}

func decodePost(data []byte) (*postConfig, lifecycle.Diagnostics) {
	cfg := &postConfig{QoS: defaultQoS}
	d := newDecoder(data, postSchema)
	qos(d, "qos", postQoS, typePost, &cfg.QoS)
	d.Bool("request_headers_to_message", &cfg.RequestHeadersToMessage)
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	return cfg, d.Diagnostics()
}

// qos decodes the qos attribute of an entrypoint type, naming the type
// and the levels it accepts when the value is not one of them.
func qos(d *instances.Decoder, name string, allowed []string, typ string, dst *string) {
	var s string
	if !d.String(name, &s) {
		return
	}
	if !slices.Contains(allowed, s) {
		d.Errorf(name, "unsupported qos %q; the %s entrypoint accepts %s", s, typ, strings.Join(allowed, ", "))
		return
	}
	*dst = s
}

// newDecoder reads a block of one of the types. Every unknown field is an
// "attribute or block", whether the type has blocks or not.
func newDecoder(data []byte, s schema.Schema) *instances.Decoder {
	return instances.NewDecoder(data, s, instances.Noun("attribute or block"))
}
