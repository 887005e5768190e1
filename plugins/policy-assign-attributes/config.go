package main

import (
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// scopes are the values the reference's deprecated scope field takes.
var scopes = []string{"REQUEST", "RESPONSE", "REQUEST_CONTENT", "RESPONSE_CONTENT"}

// configSchema is the HCL block of `policy "assign-attributes"`.
var configSchema = schema.Schema{
	Attributes: []schema.Attribute{{
		Name:        "scope",
		Type:        schema.String,
		Enum:        scopes,
		Description: "Deprecated and ignored, as in the reference's v4 policy: the phase the policy runs in decides where attributes go.",
	}},
	Blocks: []schema.Block{{
		Name:        "attribute",
		Nesting:     schema.List,
		Description: "One attribute to set, in order: later attributes can read earlier ones.",
		Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "name", Type: schema.String, Required: true, Description: "Attribute name, e.g. gravitee.attribute.kafka.topics."},
			{Name: "value", Type: schema.String, Required: true, EL: true,
				Description: "A literal or an EL template; a template that is exactly one {#...} keeps the expression's type."},
		}},
	}},
}

// entry is one attribute to assign, its value compiled once.
type entry struct {
	name  string
	value *el.Template
}

// config is one decoded instance: the entries to apply, in order. Entries
// with a blank name or no value are dropped here, as the reference skips
// them.
type config struct {
	entries []entry
}

// decodeConfig decodes and compiles a configuration block. EL that does not
// compile is an error here rather than a log line per request.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	cfg := &config{}
	d := instances.NewDecoder(data, configSchema)
	var scope string
	if d.String("scope", &scope) {
		if !slices.Contains(scopes, scope) {
			d.Errorf("scope", "unsupported scope %q; allowed: %s (the value is ignored)", scope, strings.Join(scopes, ", "))
		} else {
			d.Add(lifecycle.Diagnostic{
				Severity: lifecycle.Warning,
				Summary:  "scope is deprecated and ignored",
				Detail:   "Attributes are context attributes in the request phase and message attributes in the publish and subscribe phases; remove scope.",
				Path:     []string{"scope"},
			})
		}
	}
	for _, a := range d.List("attribute", configSchema.Blocks[0].Schema) {
		var name, value string
		ok := a.String("name", &name) && a.String("value", &value)
		// The reference skips entries with a blank name or no value.
		if ok && strings.TrimSpace(name) != "" {
			if t, err := el.Compile(value); err != nil {
				a.Errorf("value", "%v", err)
			} else {
				cfg.entries = append(cfg.entries, entry{name: name, value: t})
			}
		}
		d.Merge(a)
	}
	if d.HasErrors() {
		return nil, d.Diagnostics()
	}
	return cfg, d.Diagnostics()
}
