package main

import (
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// configSchema is the HCL block of `policy "transform-headers"`. The core
// turns it into an HCL decoding spec and sends the decoded block as JSON with
// these snake_case names; the plugin never sees HCL.
var configSchema = schema.Schema{
	Attributes: []schema.Attribute{
		{
			Name:        "remove_headers",
			Type:        schema.ListOfString,
			Description: "Headers removed from every message (names ignore case). Applied first.",
		},
		{
			Name:        "whitelist_headers",
			Type:        schema.ListOfString,
			Description: "When set, every header not listed is removed (names ignore case). Applied after remove_headers.",
		},
	},
	Blocks: []schema.Block{{
		Name:        "add_header",
		Nesting:     schema.List,
		Description: "A header set on every message, replacing any value it had. Applied last, in order.",
		Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "name", Type: schema.String, Required: true, Description: "Header name (an HTTP token)."},
			{Name: "value", Type: schema.String, Required: true, EL: true,
				Description: "A literal or an EL template, evaluated per message (#request, #context, #message, #api); null leaves the header unset."},
		}},
	}},
}

// rawConfig is the JSON the core sends. Pointers tell an absent value from
// an empty one; list blocks always arrive as arrays.
type rawConfig struct {
	AddHeader        []rawHeader `json:"add_header"`
	RemoveHeaders    []string    `json:"remove_headers"`
	WhitelistHeaders []string    `json:"whitelist_headers"`
}

type rawHeader struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
}

// config is one decoded instance, its templates compiled once so that no
// message pays for parsing.
type config struct {
	remove    []string
	whitelist []string
	add       []addHeader
}

// addHeader is one add_header block.
type addHeader struct {
	name  string
	value *el.Template
}

// decodeConfig decodes, checks and compiles a configuration block. It
// reports every problem it finds, each with the attribute path the core maps
// back to file:line:col; the config is nil when any of them is an error.
func decodeConfig(data []byte) (*config, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	var raw rawConfig
	// The core only sends what the schema declares; anything else means a
	// caller that skipped the core's decoding, and is reported.
	if err := instances.Strict(data, &raw); err != nil {
		diags.Errorf(nil, "configuration does not match the transform-headers schema: %v", err)
		return nil, diags
	}

	cfg := &config{}
	cfg.remove = headerList(&diags, "remove_headers", raw.RemoveHeaders)
	cfg.whitelist = headerList(&diags, "whitelist_headers", raw.WhitelistHeaders)

	seen := map[string]bool{}
	for i, h := range raw.AddHeader {
		at := func(field string) []string { return []string{"add_header", strconv.Itoa(i), field} }
		name, nameOK := "", false
		switch {
		case h.Name == nil:
			diags.Errorf(at("name"), "add_header needs a name")
		case !validName(*h.Name):
			diags.Errorf(at("name"), "%q is not a valid header name: use letters, digits and !#$%%&'*+-.^_`|~ only", *h.Name)
		default:
			name, nameOK = *h.Name, true
			if key := strings.ToLower(name); seen[key] {
				diags = append(diags, lifecycle.Diagnostic{
					Severity: lifecycle.Warning,
					Summary:  "header " + strconv.Quote(name) + " is added twice; the last add_header wins",
					Detail:   "Keep one add_header block per header name.",
					Path:     at("name"),
				})
			} else {
				seen[key] = true
			}
		}
		if h.Value == nil {
			diags.Errorf(at("value"), "add_header needs a value")
			continue
		}
		t, err := el.Compile(*h.Value)
		if err != nil {
			// el errors name the segment and column, which is what an
			// operator needs to find the mistake.
			diags.Errorf(at("value"), "%v", err)
			continue
		}
		if nameOK {
			cfg.add = append(cfg.add, addHeader{name: name, value: t})
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// headerList checks a list of header names and returns it.
func headerList(diags *lifecycle.Diagnostics, attr string, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !validName(n) {
			// A list attribute has one source range, so the path stops at it.
			diags.Errorf([]string{attr}, "%q is not a valid header name: use letters, digits and !#$%%&'*+-.^_`|~ only", n)
			continue
		}
		out = append(out, n)
	}
	return out
}

// validName reports whether s is an HTTP field name (RFC 9110 token). The
// same headers become Kafka record headers, SSE comments and JSON keys, and
// a token is safe in all of them.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
