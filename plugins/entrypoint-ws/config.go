package main

import (
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/instances"
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

// decodeConfig decodes and checks a configuration block, applying defaults.
// Every problem is reported, not only the first.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	cfg := &config{QoS: defaultQoS, Publisher: true, Subscriber: true}
	d := instances.NewDecoder(data, configSchema)
	var qos string
	if d.String("qos", &qos) {
		if !slices.Contains(supportedQoS, qos) {
			d.Errorf("qos", "unsupported qos %q; the websocket entrypoint accepts %s (a WebSocket cannot resume, so at-most-once and at-least-once are not offered)", qos, strings.Join(supportedQoS, ", "))
		} else {
			cfg.QoS = qos
		}
	}
	for i, dst := range []*bool{&cfg.Publisher, &cfg.Subscriber} {
		b := configSchema.Blocks[i]
		if blk := d.Block(b.Name, b.Schema); blk != nil {
			blk.Bool("enabled", dst)
			d.Merge(blk)
		}
	}
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	diags := d.Diagnostics()
	if !cfg.Publisher && !cfg.Subscriber {
		diags = append(diags, lifecycle.Diagnostic{
			Severity: lifecycle.Warning,
			Summary:  "both publisher and subscriber are disabled",
			Detail:   "Clients can connect but nothing is published or delivered; enable at least one direction.",
		})
	}
	return cfg, diags
}
