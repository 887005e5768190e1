package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
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
	var diags lifecycle.Diagnostics
	cfg := &config{}
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
		if k != "scope" && k != "attribute" {
			diags.Errorf([]string{k}, "unsupported attribute or block %q; allowed: scope, attribute", k)
		}
	}
	if v, ok := fields["scope"]; ok {
		var s *string
		switch err := json.Unmarshal(v, &s); {
		case err != nil:
			diags.Errorf([]string{"scope"}, "invalid value %s: %s", v, typeProblem(err))
		case s != nil && !contains(scopes, *s):
			diags.Errorf([]string{"scope"}, "unsupported scope %q; allowed: %s (the value is ignored)", *s, strings.Join(scopes, ", "))
		case s != nil:
			diags = append(diags, lifecycle.Diagnostic{
				Severity: lifecycle.Warning,
				Summary:  "scope is deprecated and ignored",
				Detail:   "Attributes are context attributes in the request phase and message attributes in the publish and subscribe phases; remove scope.",
				Path:     []string{"scope"},
			})
		}
	}
	if v, ok := fields["attribute"]; ok {
		var raw []map[string]json.RawMessage
		if err := json.Unmarshal(v, &raw); err != nil {
			diags.Errorf([]string{"attribute"}, "invalid attribute blocks %s: %s", v, typeProblem(err))
		}
		for i, a := range raw {
			path := func(f string) []string { return []string{"attribute", strconv.Itoa(i), f} }
			for _, k := range sortedKeys(a) {
				if k != "name" && k != "value" {
					diags.Errorf(path(k), "unsupported attribute %q; allowed: name, value", k)
				}
			}
			var name, value *string
			if err := json.Unmarshal(orNull(a["name"]), &name); err != nil {
				diags.Errorf(path("name"), "invalid value %s: %s", a["name"], typeProblem(err))
				continue
			}
			if err := json.Unmarshal(orNull(a["value"]), &value); err != nil {
				diags.Errorf(path("value"), "invalid value %s: %s", a["value"], typeProblem(err))
				continue
			}
			if name == nil || strings.TrimSpace(*name) == "" || value == nil {
				continue
			}
			t, err := el.Compile(*value)
			if err != nil {
				diags.Errorf(path("value"), "%v", err)
				continue
			}
			cfg.entries = append(cfg.entries, entry{name: *name, value: t})
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

func orNull(v json.RawMessage) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	return v
}

// typeProblem turns a JSON decoding error into words an operator can act on.
func typeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Slice:
			want = "list of blocks"
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
