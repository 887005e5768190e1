package config

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// fakeSchemas stands in for the plugin host: a few types shaped like the real
// plugins' (kafka endpoint, entrypoints, two policies), with validation
// written against the JSON the loader produces.
type fakeSchemas struct {
	types   map[lifecycle.Kind]map[string]*pluginv1.TypeInfo
	aliases map[lifecycle.Kind]map[string]string

	mu    sync.Mutex
	calls []string // "kind/type" per Validate call
}

func str(name string, required bool, enum ...string) *pluginv1.Schema_Attribute {
	return &pluginv1.Schema_Attribute{Name: name, Type: pluginv1.Schema_Attribute_STRING, Required: required, Enum: enum}
}

func attr(name string, t pluginv1.Schema_Attribute_Type) *pluginv1.Schema_Attribute {
	return &pluginv1.Schema_Attribute{Name: name, Type: t}
}

func single(name string, s *pluginv1.Schema) *pluginv1.Schema_Block {
	return &pluginv1.Schema_Block{Name: name, Nesting: pluginv1.Schema_Block_SINGLE, Schema: s}
}

func list(name string, s *pluginv1.Schema) *pluginv1.Schema_Block {
	return &pluginv1.Schema_Block{Name: name, Nesting: pluginv1.Schema_Block_LIST, Schema: s}
}

var qos = []string{"none", "auto", "at-most-once", "at-least-once"}

func newFakeSchemas() *fakeSchemas {
	const (
		S  = pluginv1.Schema_Attribute_STRING
		N  = pluginv1.Schema_Attribute_NUMBER
		B  = pluginv1.Schema_Attribute_BOOL
		LS = pluginv1.Schema_Attribute_LIST_OF_STRING
		MS = pluginv1.Schema_Attribute_MAP_OF_STRING
	)
	kafka := &pluginv1.TypeInfo{Name: "kafka", ConfigSchema: &pluginv1.Schema{
		Attributes: []*pluginv1.Schema_Attribute{
			str("bootstrap_servers", true),
			attr("properties", MS),
		},
		Blocks: []*pluginv1.Schema_Block{
			single("security", &pluginv1.Schema{
				Attributes: []*pluginv1.Schema_Attribute{str("protocol", false, "PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")},
				Blocks: []*pluginv1.Schema_Block{single("sasl", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
					str("mechanism", false, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"),
					str("jaas_config", false),
				}})},
			}),
			single("consumer", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
				attr("enabled", B),
				attr("topics", LS),
				attr("topic_pattern", S),
				str("auto_offset_reset", false, "earliest", "latest", "none"),
				attr("encode_message_id", B),
			}}),
			single("producer", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
				attr("enabled", B),
				attr("topics", LS),
				str("compression_type", false, "none", "gzip", "snappy", "lz4", "zstd"),
			}}),
		},
	}}
	enabled := &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{attr("enabled", B)}}
	entrypoints := []*pluginv1.TypeInfo{
		{Name: "http-post", ConfigSchema: &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{attr("request_headers_to_message", B)}}},
		{Name: "http-get", ConfigSchema: &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
			str("qos", false, qos...), attr("messages_limit_count", N), attr("messages_limit_duration_ms", N),
		}}},
		{Name: "sse", Aliases: []string{"server-sent-events"}, ConfigSchema: &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
			str("qos", false, qos...), attr("heartbeat_interval_in_ms", N), attr("metadata_as_comment", B),
		}}},
		{Name: "websocket", ConfigSchema: &pluginv1.Schema{Blocks: []*pluginv1.Schema_Block{single("publisher", enabled), single("subscriber", enabled)}}},
		{Name: "webhook", ConfigSchema: &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{str("qos", false, qos...)},
			Blocks: []*pluginv1.Schema_Block{single("http", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{attr("read_timeout", N)}})}}},
	}
	policies := []*pluginv1.TypeInfo{
		{Name: "assign-attributes", Phases: []string{PhaseRequest, PhaseResponse, PhasePublish, PhaseSubscribe}, ConfigSchema: &pluginv1.Schema{Blocks: []*pluginv1.Schema_Block{
			list("attribute", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{str("name", true), str("value", true)}}),
		}}},
		{Name: "transform-headers", Phases: []string{PhaseRequest, PhaseResponse}, ConfigSchema: &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
			attr("set", MS), attr("remove", LS),
		}}},
	}
	f := &fakeSchemas{
		types:   map[lifecycle.Kind]map[string]*pluginv1.TypeInfo{},
		aliases: map[lifecycle.Kind]map[string]string{},
	}
	add := func(kind lifecycle.Kind, tis ...*pluginv1.TypeInfo) {
		f.types[kind] = map[string]*pluginv1.TypeInfo{}
		f.aliases[kind] = map[string]string{}
		for _, ti := range tis {
			f.types[kind][ti.Name] = ti
			for _, a := range ti.Aliases {
				f.aliases[kind][a] = ti.Name
			}
		}
	}
	add(lifecycle.KindEndpoint, kafka)
	add(lifecycle.KindEntrypoint, entrypoints...)
	add(lifecycle.KindPolicy, policies...)
	return f
}

func (f *fakeSchemas) TypeInfo(kind lifecycle.Kind, typ string) (*pluginv1.TypeInfo, bool) {
	if c, ok := f.aliases[kind][typ]; ok {
		typ = c
	}
	ti, ok := f.types[kind][typ]
	return ti, ok
}

func (f *fakeSchemas) KnownTypes(kind lifecycle.Kind) []string {
	var names []string
	for n := range f.types[kind] {
		names = append(names, n)
	}
	for a := range f.aliases[kind] {
		names = append(names, a)
	}
	sort.Strings(names)
	return names
}

func (f *fakeSchemas) Validate(_ context.Context, kind lifecycle.Kind, typ string, configJSON []byte) ([]*pluginv1.Diagnostic, error) {
	f.mu.Lock()
	f.calls = append(f.calls, string(kind)+"/"+typ)
	f.mu.Unlock()
	if _, ok := f.types[kind][typ]; !ok {
		return nil, fmt.Errorf("validate called with %s type %q, which is not a canonical name", kind, typ)
	}
	var cfg map[string]any
	if err := json.Unmarshal(configJSON, &cfg); err != nil {
		return nil, fmt.Errorf("bad JSON %s: %w", configJSON, err)
	}
	var out []*pluginv1.Diagnostic
	errorAt := func(summary string, path ...string) {
		out = append(out, &pluginv1.Diagnostic{Severity: pluginv1.Diagnostic_ERROR, Summary: summary, AttributePath: path})
	}
	switch typ {
	case "kafka":
		if s, _ := cfg["bootstrap_servers"].(string); s == "" {
			out = append(out, &pluginv1.Diagnostic{Severity: pluginv1.Diagnostic_WARNING, Summary: "bootstrap_servers is empty",
				AttributePath: []string{"bootstrap_servers"}})
		}
		if sec, ok := cfg["security"].(map[string]any); ok {
			p, _ := sec["protocol"].(string)
			if strings.HasPrefix(p, "SASL_") && sec["sasl"] == nil {
				errorAt("SASL protocols need a sasl block", "security", "sasl")
			}
		}
		if c, ok := cfg["consumer"].(map[string]any); ok && c["topics"] != nil && c["topic_pattern"] != nil {
			errorAt("topics and topic_pattern are mutually exclusive", "consumer", "topic_pattern")
		}
	case "assign-attributes":
		attrs, _ := cfg["attribute"].([]any)
		for i, a := range attrs {
			if m, _ := a.(map[string]any); m["name"] == "" {
				errorAt("attribute name must not be empty", "attribute", fmt.Sprint(i), "name")
			}
		}
	}
	return out, nil
}

func (f *fakeSchemas) validateCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}
