package main

import (
	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// configSchema is the HCL block of `policy "message-filtering"`: the
// reference's single filter field.
var configSchema = schema.Schema{
	Attributes: []schema.Attribute{{
		Name: "filter", Type: schema.String, Required: true, EL: true,
		Description: "EL condition evaluated per message; messages for which it is not true are dropped.",
	}},
}

// config is one decoded instance: the filter, compiled once.
type config struct {
	filter *el.Template
}

type rawConfig struct {
	Filter *string `json:"filter"`
}

// decodeConfig decodes and compiles a configuration block. A filter that is
// not EL would keep or drop every message, which is a mistake worth saying
// at load time.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	var raw rawConfig
	if err := instances.Strict(data, &raw); err != nil {
		diags.Errorf(nil, "invalid configuration: %v; allowed: filter", err)
		return nil, diags
	}
	if raw.Filter == nil {
		diags.Errorf([]string{"filter"}, "filter is required: an EL condition such as \"{#message.headers['X-Keep'] != null}\"")
		return nil, diags
	}
	if !el.HasEL(*raw.Filter) {
		diags.Errorf([]string{"filter"}, "filter %q is not EL: write a condition such as \"{#message.content matches 'vip:.*'}\"", *raw.Filter)
		return nil, diags
	}
	t, err := el.Compile(*raw.Filter)
	if err != nil {
		diags.Errorf([]string{"filter"}, "%v", err)
		return nil, diags
	}
	return &config{filter: t}, nil
}
