package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
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
	d.qos("qos", getQoS, typeGet, &cfg.QoS)
	d.wholeNumber("messages_limit_count", 0, math.MaxInt32, &cfg.LimitCount)
	d.wholeNumber("messages_limit_duration_ms", 0, math.MaxInt64/int64(time.Millisecond), &cfg.LimitDurationMs)
	d.boolean("headers_in_payload", &cfg.HeadersInPayload)
	d.boolean("metadata_in_payload", &cfg.MetadataInPayload)
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return cfg, d.diags
}

func decodePost(data []byte) (*postConfig, lifecycle.Diagnostics) {
	cfg := &postConfig{QoS: defaultQoS}
	d := newDecoder(data, postSchema)
	d.qos("qos", postQoS, typePost, &cfg.QoS)
	d.boolean("request_headers_to_message", &cfg.RequestHeadersToMessage)
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return cfg, d.diags
}

// decoder reads one JSON object of configuration, collecting every problem
// as a diagnostic with its attribute path. Absent and null values leave the
// default in place.
type decoder struct {
	fields map[string]json.RawMessage
	path   []string
	diags  lifecycle.Diagnostics
}

// newDecoder parses data and reports attributes and blocks that s does not
// declare.
func newDecoder(data []byte, s schema.Schema) *decoder {
	d := &decoder{}
	d.init(data, s)
	return d
}

func (d *decoder) init(data []byte, s schema.Schema) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return
	}
	if err := json.Unmarshal(data, &d.fields); err != nil {
		d.diags.Errorf(d.path, "configuration is not a JSON object: %v", err)
		return
	}
	var known []string
	for _, a := range s.Attributes {
		known = append(known, a.Name)
	}
	for _, b := range s.Blocks {
		known = append(known, b.Name)
	}
	for _, k := range sortedKeys(d.fields) {
		if !contains(known, k) {
			d.diags.Errorf(d.at(k), "unsupported attribute or block %q; allowed: %s", k, strings.Join(known, ", "))
		}
	}
}

// at is the path of a field of this object.
func (d *decoder) at(name string) []string {
	return append(append([]string(nil), d.path...), name)
}

// value decodes field name into dst (a pointer to a pointer); it reports
// whether a non-null value was there.
func (d *decoder) value(name string, dst any) bool {
	v, ok := d.fields[name]
	if !ok {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		d.diags.Errorf(d.at(name), "invalid value %s: %s", v, typeProblem(err))
		return false
	}
	return !reflect.ValueOf(dst).Elem().IsNil()
}

func (d *decoder) str(name string, dst *string) bool {
	var v *string
	if d.value(name, &v) {
		*dst = *v
		return true
	}
	return false
}

func (d *decoder) boolean(name string, dst *bool) {
	var v *bool
	if d.value(name, &v) {
		*dst = *v
	}
}

func (d *decoder) wholeNumber(name string, min, max int64, dst *int64) {
	var v *float64
	if !d.value(name, &v) {
		return
	}
	switch f := *v; {
	case f != math.Trunc(f):
		d.diags.Errorf(d.at(name), "%s must be a whole number, got %v", name, f)
	case f < float64(min):
		d.diags.Errorf(d.at(name), "%s must be at least %d, got %v", name, min, f)
	case f > float64(max):
		d.diags.Errorf(d.at(name), "%s must be at most %d, got %v", name, max, f)
	default:
		*dst = int64(f)
	}
}

func (d *decoder) oneOf(name string, allowed []string, dst *string) {
	var s string
	if !d.str(name, &s) {
		return
	}
	if !contains(allowed, s) {
		d.diags.Errorf(d.at(name), "unsupported %s %q; allowed: %s", name, s, strings.Join(allowed, ", "))
		return
	}
	*dst = s
}

func (d *decoder) qos(name string, allowed []string, typ string, dst *string) {
	var s string
	if !d.str(name, &s) {
		return
	}
	if !contains(allowed, s) {
		d.diags.Errorf(d.at(name), "unsupported qos %q; the %s entrypoint accepts %s", s, typ, strings.Join(allowed, ", "))
		return
	}
	*dst = s
}

// block returns a decoder for the nested object name, or nil when it is
// absent or null. Its diagnostics are merged into d's by done.
func (d *decoder) block(name string, s schema.Schema) *decoder {
	v, ok := d.fields[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	sub := &decoder{path: d.at(name)}
	sub.init(v, s)
	return sub
}

// list returns a decoder for each element of the list of nested objects name.
func (d *decoder) list(name string, s schema.Schema) []*decoder {
	var elems []json.RawMessage
	if !d.value(name, &elems) {
		return nil
	}
	subs := make([]*decoder, len(elems))
	for i, e := range elems {
		subs[i] = &decoder{path: append(d.at(name), strconv.Itoa(i))}
		subs[i].init(e, s)
	}
	return subs
}

// merge adds sub's diagnostics to d's.
func (d *decoder) merge(sub *decoder) {
	if sub != nil {
		d.diags = append(d.diags, sub.diags...)
	}
}

// typeProblem turns a JSON decoding error into words an operator can act on.
func typeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Float64, reflect.Int64, reflect.Int:
			want = "number"
		case reflect.Bool:
			want = "bool"
		case reflect.Slice:
			want = "list"
		case reflect.Map, reflect.Struct:
			want = "block"
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
