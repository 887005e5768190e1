package main

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// scopes are the values the reference's deprecated scope field takes.
var scopes = []string{"REQUEST", "RESPONSE"}

var headerSchema = schema.Schema{Attributes: []schema.Attribute{
	{Name: "name", Type: schema.String, Required: true, Description: "Header name; matched ignoring case."},
	{Name: "value", Type: schema.String, Required: true, EL: true, Description: "A literal or an EL template, evaluated per request (request and response phases) or per message."},
}}

// configSchema is the HCL block of `policy "transform-headers"`, the
// reference's addHeaders, appendHeaders, removeHeaders and whitelistHeaders
// in snake_case.
var configSchema = schema.Schema{
	Attributes: []schema.Attribute{
		{Name: "scope", Type: schema.String, Enum: scopes,
			Description: "Deprecated and ignored, as in the reference's v4 policy: the phase the policy runs in decides which headers change."},
		{Name: "remove_headers", Type: schema.ListOfString, Description: "Headers to remove, matched ignoring case."},
		{Name: "whitelist_headers", Type: schema.ListOfString,
			Description: "When not empty, every header not listed is removed (matched ignoring case)."},
	},
	Blocks: []schema.Block{
		{Name: "add_header", Nesting: schema.List, Schema: headerSchema,
			Description: "A header to set, replacing the values it had; applied in order."},
		{Name: "append_header", Nesting: schema.List, Schema: headerSchema,
			Description: "A value to add to a header, keeping the values it had; applied in order."},
	},
}

// header is one header to set or append, its value compiled once.
type header struct {
	name  string
	value *el.Template
}

// config is one decoded instance.
type config struct {
	set       []header
	appendTo  []header
	remove    []string
	whitelist []string
}

type rawHeader struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
}

type rawConfig struct {
	Scope            *string     `json:"scope"`
	AddHeader        []rawHeader `json:"add_header"`
	AppendHeader     []rawHeader `json:"append_header"`
	RemoveHeaders    []string    `json:"remove_headers"`
	WhitelistHeaders []string    `json:"whitelist_headers"`
}

// decodeConfig decodes and compiles a configuration block. EL that does not
// compile is an error here rather than a log line per message.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	cfg := &config{}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return cfg, nil
	}
	var raw rawConfig
	if err := instances.Strict(data, &raw); err != nil {
		diags.Errorf(nil, "invalid configuration: %v; allowed: scope, add_header, append_header, remove_headers, whitelist_headers", err)
		return nil, diags
	}
	if raw.Scope != nil {
		if !slices.Contains(scopes, *raw.Scope) {
			diags.Errorf([]string{"scope"}, "unsupported scope %q; allowed: %s (the value is ignored)", *raw.Scope, strings.Join(scopes, ", "))
		} else {
			diags = append(diags, lifecycle.Diagnostic{
				Severity: lifecycle.Warning,
				Summary:  "scope is deprecated and ignored",
				Detail:   "The phase the policy runs in decides which headers change; remove scope.",
				Path:     []string{"scope"},
			})
		}
	}
	compile := func(block string, list []rawHeader) []header {
		var out []header
		for i, h := range list {
			path := func(f string) []string { return []string{block, strconv.Itoa(i), f} }
			// The reference skips entries with a blank name.
			if h.Name == nil || strings.TrimSpace(*h.Name) == "" || h.Value == nil {
				continue
			}
			if strings.ContainsAny(*h.Name, " \t\r\n:") {
				diags.Errorf(path("name"), "invalid header name %q: no spaces, colons or line breaks", *h.Name)
				continue
			}
			t, err := el.Compile(*h.Value)
			if err != nil {
				diags.Errorf(path("value"), "%v", err)
				continue
			}
			out = append(out, header{name: *h.Name, value: t})
		}
		return out
	}
	cfg.set = compile("add_header", raw.AddHeader)
	cfg.appendTo = compile("append_header", raw.AppendHeader)
	for _, n := range raw.RemoveHeaders {
		if strings.TrimSpace(n) != "" {
			cfg.remove = append(cfg.remove, n)
		}
	}
	for _, n := range raw.WhitelistHeaders {
		if strings.TrimSpace(n) != "" {
			cfg.whitelist = append(cfg.whitelist, n)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
