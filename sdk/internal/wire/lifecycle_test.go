package wire

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/schema"
)

func testMetadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindEntrypoint,
		Name:    "entrypoint-sse",
		Version: "1.2.3",
		Types: []lifecycle.TypeInfo{{
			Name:        "sse",
			Aliases:     []string{"server-sent-events"},
			Description: "Server-sent events.",
			Schema: schema.Schema{
				Attributes: []schema.Attribute{
					{Name: "qos", Type: schema.String, Enum: []string{"auto", "at-least-once"}, Default: "auto"},
					{Name: "heartbeat_interval_in_ms", Type: schema.Number, Default: int64(5000), Description: "Heartbeat."},
					{Name: "metadata_as_comment", Type: schema.Bool, Default: false},
					{Name: "topics", Type: schema.ListOfString, Required: true, EL: true, Default: []any{"demo"}},
					{Name: "labels", Type: schema.MapOfString},
					{Name: "weights", Type: schema.MapOfNumber, Default: map[string]any{"a": 0.5}},
				},
				Blocks: []schema.Block{{
					Name:        "consumer",
					Nesting:     schema.Single,
					Required:    true,
					Description: "Consumer settings.",
					Schema: schema.Schema{
						Attributes: []schema.Attribute{{Name: "enabled", Type: schema.Bool}},
						Blocks:     []schema.Block{{Name: "attribute", Nesting: schema.List}},
					},
				}},
			},
			QoS:          []string{"none", "auto", "at-least-once"},
			Match:        &lifecycle.Match{Methods: []string{"GET"}, Accept: "text/event-stream", CriteriaCount: 2},
			Modes:        []string{"subscribe"},
			Capabilities: []string{"resume"},
		}, {
			Name:   "minimal",
			Phases: []string{"request"},
		}},
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	md := testMetadata()
	w, err := MetadataToWire(md)
	if err != nil {
		t.Fatal(err)
	}
	sch := w.Types[0].ConfigSchema
	wantAttr := &pluginv1.Schema_Attribute{
		Name: "topics", Type: pluginv1.Schema_Attribute_LIST_OF_STRING, Required: true, El: true, DefaultJson: `["demo"]`,
	}
	if !proto.Equal(sch.Attributes[3], wantAttr) {
		t.Fatalf("attribute = %v, want %v", sch.Attributes[3], wantAttr)
	}
	if got := sch.Attributes[1].DefaultJson; got != "5000" {
		t.Fatalf("default_json = %q, want 5000", got)
	}
	wantMatch := &pluginv1.Match{Methods: []string{"GET"}, Accept: "text/event-stream", CriteriaCount: 2}
	if !proto.Equal(w.Types[0].Match, wantMatch) {
		t.Fatalf("match = %v, want %v", w.Types[0].Match, wantMatch)
	}
	if w.Kind != pluginv1.Kind_ENTRYPOINT || sch.Blocks[0].Nesting != pluginv1.Schema_Block_SINGLE {
		t.Fatalf("enums: kind %v nesting %v", w.Kind, sch.Blocks[0].Nesting)
	}
	back, err := MetadataFromWire(viaBytes(t, w, &pluginv1.GetMetadata_Response{}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, md) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", back, md)
	}
}

func TestMetadataErrors(t *testing.T) {
	md := lifecycle.Metadata{Types: []lifecycle.TypeInfo{{Name: "x", Schema: schema.Schema{Blocks: []schema.Block{{
		Name: "b", Schema: schema.Schema{Attributes: []schema.Attribute{{Name: "a", Default: func() {}}}},
	}}}}}}
	if _, err := MetadataToWire(md); err == nil || !strings.Contains(err.Error(), `type "x": block "b": attribute "a": default`) {
		t.Fatalf("err = %v", err)
	}
	w := &pluginv1.GetMetadata_Response{Types: []*pluginv1.TypeInfo{{Name: "x", ConfigSchema: &pluginv1.Schema{
		Attributes: []*pluginv1.Schema_Attribute{{Name: "a", DefaultJson: "{"}},
	}}}}
	if _, err := MetadataFromWire(w); err == nil || !strings.Contains(err.Error(), `type "x": attribute "a": default`) {
		t.Fatalf("err = %v", err)
	}
}

func TestKinds(t *testing.T) {
	tests := map[string]struct {
		kind lifecycle.Kind
		wire pluginv1.Kind
	}{
		"endpoint":   {lifecycle.KindEndpoint, pluginv1.Kind_ENDPOINT},
		"entrypoint": {lifecycle.KindEntrypoint, pluginv1.Kind_ENTRYPOINT},
		"policy":     {lifecycle.KindPolicy, pluginv1.Kind_POLICY},
		"unknown":    {"", pluginv1.Kind_KIND_UNSPECIFIED},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := KindToWire(tc.kind); got != tc.wire {
				t.Fatalf("KindToWire = %v", got)
			}
			if got := KindFromWire(tc.wire); got != tc.kind {
				t.Fatalf("KindFromWire = %v", got)
			}
		})
	}
	if KindToWire("bogus") != pluginv1.Kind_KIND_UNSPECIFIED || KindFromWire(99) != "" {
		t.Fatal("unknown kinds not mapped to unspecified")
	}
}

func TestSchemaUnknownEnums(t *testing.T) {
	w, err := SchemaToWire(schema.Schema{
		Attributes: []schema.Attribute{{Name: "a", Type: 99}},
		Blocks:     []schema.Block{{Name: "b", Nesting: 99}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Attributes[0].Type != pluginv1.Schema_Attribute_TYPE_UNSPECIFIED || w.Blocks[0].Nesting != pluginv1.Schema_Block_NESTING_UNSPECIFIED {
		t.Fatalf("unknown enums not unspecified: %v", w)
	}
	s, err := SchemaFromWire(w)
	if err != nil {
		t.Fatal(err)
	}
	if s.Attributes[0].Type != 0 || s.Blocks[0].Nesting != 0 {
		t.Fatalf("unspecified enums not zero: %#v", s)
	}
	if s, err := SchemaFromWire(nil); err != nil || s.Attributes != nil || s.Blocks != nil {
		t.Fatalf("SchemaFromWire(nil) = %#v, %v", s, err)
	}
}

func TestDiagnostics(t *testing.T) {
	tests := map[string]struct {
		in   lifecycle.Diagnostic
		wire *pluginv1.Diagnostic
		back lifecycle.Diagnostic
	}{
		"error": {
			lifecycle.Diagnostic{Severity: lifecycle.Error, Summary: "bad", Detail: "fix it", Path: []string{"consumer", "auto_offset_reset"}},
			&pluginv1.Diagnostic{Severity: pluginv1.Diagnostic_ERROR, Summary: "bad", Detail: "fix it", AttributePath: []string{"consumer", "auto_offset_reset"}},
			lifecycle.Diagnostic{Severity: lifecycle.Error, Summary: "bad", Detail: "fix it", Path: []string{"consumer", "auto_offset_reset"}},
		},
		"warning": {
			lifecycle.Diagnostic{Severity: lifecycle.Warning, Summary: "w"},
			&pluginv1.Diagnostic{Severity: pluginv1.Diagnostic_WARNING, Summary: "w"},
			lifecycle.Diagnostic{Severity: lifecycle.Warning, Summary: "w"},
		},
		"missing severity is an error": {
			lifecycle.Diagnostic{Summary: "s"},
			&pluginv1.Diagnostic{Severity: pluginv1.Diagnostic_ERROR, Summary: "s"},
			lifecycle.Diagnostic{Severity: lifecycle.Error, Summary: "s"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := DiagnosticsToWire(lifecycle.Diagnostics{tc.in})
			if len(w) != 1 || !proto.Equal(w[0], tc.wire) {
				t.Fatalf("wire = %v, want %v", w, tc.wire)
			}
			if got := DiagnosticsFromWire(w); !reflect.DeepEqual(got, lifecycle.Diagnostics{tc.back}) {
				t.Fatalf("back = %#v, want %#v", got, tc.back)
			}
		})
	}
	if got := DiagnosticsFromWire([]*pluginv1.Diagnostic{{Summary: "u"}}); got[0].Severity != lifecycle.Error {
		t.Fatalf("SEVERITY_UNSPECIFIED decoded as %v, want Error", got[0].Severity)
	}
	if DiagnosticsToWire(nil) != nil || DiagnosticsFromWire(nil) != nil {
		t.Fatal("empty diagnostics not nil")
	}
}
