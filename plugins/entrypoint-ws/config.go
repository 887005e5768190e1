package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

const defaultQoS = endpoint.QoSAuto

// supportedQoS are the QoS levels WebSocket offers (docs/behaviour.md 5): a
// WebSocket has no way to resume, so no at-* levels.
var supportedQoS = []string{endpoint.QoSNone, endpoint.QoSAuto}

func enabledBlock(name, what string) schema.Block {
	return schema.Block{
		Name:        name,
		Nesting:     schema.Single,
		Description: what,
		Schema: schema.Schema{Attributes: []schema.Attribute{{
			Name:        "enabled",
			Type:        schema.Bool,
			Description: "Whether this direction is open.",
			Default:     true,
		}}},
	}
}

// configSchema is the HCL block of `entrypoint "websocket"`.
var configSchema = schema.Schema{
	Attributes: []schema.Attribute{{
		Name:        "qos",
		Type:        schema.String,
		Description: "Quality of service asked of the endpoint: none or auto.",
		Enum:        supportedQoS,
		Default:     defaultQoS,
	}},
	Blocks: []schema.Block{
		enabledBlock("publisher", "Client to endpoint: every message the client sends is published. Optional. Default: enabled."),
		enabledBlock("subscriber", "Endpoint to client: every subscribed message is sent as a binary message. Optional. Default: enabled."),
	},
}

// config is one decoded instance configuration.
type config struct {
	// QoS is passed to the endpoint on Subscribe.
	QoS string
	// Publisher publishes client messages.
	Publisher bool
	// Subscriber subscribes and sends messages to the client.
	Subscriber bool
}

type rawEnabled struct {
	Enabled *bool `json:"enabled"`
}

// decodeConfig decodes and checks a configuration block, applying defaults.
// Every problem is reported, not only the first.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	cfg := &config{QoS: defaultQoS, Publisher: true, Subscriber: true}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return cfg, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		diags.Errorf(nil, "configuration is not a JSON object: %v", err)
		return nil, diags
	}
	known := []string{"qos", "publisher", "subscriber"}
	for _, k := range sortedKeys(fields) {
		if !contains(known, k) {
			diags.Errorf([]string{k}, "unsupported attribute or block %q; allowed: %s", k, strings.Join(known, ", "))
		}
	}
	if v, ok := fields["qos"]; ok {
		var q *string
		if err := json.Unmarshal(v, &q); err != nil {
			diags.Errorf([]string{"qos"}, "invalid value %s: %s", v, typeProblem(err))
		} else if q != nil {
			if !contains(supportedQoS, *q) {
				diags.Errorf([]string{"qos"}, "unsupported qos %q; the websocket entrypoint accepts %s (a WebSocket cannot resume, so at-most-once and at-least-once are not offered)", *q, strings.Join(supportedQoS, ", "))
			} else {
				cfg.QoS = *q
			}
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"publisher", &cfg.Publisher}, {"subscriber", &cfg.Subscriber}} {
		v, ok := fields[b.name]
		if !ok {
			continue
		}
		var blk *rawEnabled
		if err := json.Unmarshal(v, &blk); err != nil {
			path := []string{b.name}
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field == "enabled" {
				path = append(path, "enabled")
			}
			diags.Errorf(path, "invalid value %s: %s", v, typeProblem(err))
			continue
		}
		if blk != nil && blk.Enabled != nil {
			*b.dst = *blk.Enabled
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if !cfg.Publisher && !cfg.Subscriber {
		diags = append(diags, lifecycle.Diagnostic{
			Severity: lifecycle.Warning,
			Summary:  "both publisher and subscriber are disabled",
			Detail:   "Clients can connect but nothing is published or delivered; enable at least one direction.",
		})
	}
	return cfg, diags
}

// typeProblem turns a JSON decoding error into words an operator can act on.
func typeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Bool:
			want = "bool"
		case reflect.Struct, reflect.Pointer:
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
