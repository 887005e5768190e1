package wire

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// KindToWire converts a plugin kind; an unknown kind is KIND_UNSPECIFIED.
func KindToWire(k lifecycle.Kind) pluginv1.Kind {
	switch k {
	case lifecycle.KindEndpoint:
		return pluginv1.Kind_ENDPOINT
	case lifecycle.KindEntrypoint:
		return pluginv1.Kind_ENTRYPOINT
	case lifecycle.KindPolicy:
		return pluginv1.Kind_POLICY
	}
	return pluginv1.Kind_KIND_UNSPECIFIED
}

// KindFromWire converts a plugin kind; KIND_UNSPECIFIED and unknown values are
// "".
func KindFromWire(k pluginv1.Kind) lifecycle.Kind {
	switch k {
	case pluginv1.Kind_ENDPOINT:
		return lifecycle.KindEndpoint
	case pluginv1.Kind_ENTRYPOINT:
		return lifecycle.KindEntrypoint
	case pluginv1.Kind_POLICY:
		return lifecycle.KindPolicy
	}
	return ""
}

// MetadataToWire converts plugin metadata. It fails only when a schema
// attribute's Default cannot be encoded as JSON.
func MetadataToWire(md lifecycle.Metadata) (*pluginv1.GetMetadata_Response, error) {
	out := &pluginv1.GetMetadata_Response{
		Kind:    KindToWire(md.Kind),
		Name:    md.Name,
		Version: md.Version,
	}
	if len(md.Types) > 0 {
		out.Types = make([]*pluginv1.TypeInfo, len(md.Types))
	}
	for i, t := range md.Types {
		s, err := SchemaToWire(t.Schema)
		if err != nil {
			return nil, fmt.Errorf("type %q: %w", t.Name, err)
		}
		out.Types[i] = &pluginv1.TypeInfo{
			Name:         t.Name,
			Aliases:      t.Aliases,
			Description:  t.Description,
			ConfigSchema: s,
			Qos:          t.QoS,
			Match:        MatchToWire(t.Match),
			Modes:        t.Modes,
			Phases:       t.Phases,
			Capabilities: t.Capabilities,
		}
	}
	return out, nil
}

// MetadataFromWire converts plugin metadata. It fails only when a schema
// attribute's default_json is not valid JSON.
func MetadataFromWire(w *pluginv1.GetMetadata_Response) (lifecycle.Metadata, error) {
	md := lifecycle.Metadata{
		Kind:    KindFromWire(w.GetKind()),
		Name:    w.GetName(),
		Version: w.GetVersion(),
	}
	if len(w.GetTypes()) > 0 {
		md.Types = make([]lifecycle.TypeInfo, len(w.GetTypes()))
	}
	for i, t := range w.GetTypes() {
		s, err := SchemaFromWire(t.GetConfigSchema())
		if err != nil {
			return lifecycle.Metadata{}, fmt.Errorf("type %q: %w", t.GetName(), err)
		}
		md.Types[i] = lifecycle.TypeInfo{
			Name:         t.GetName(),
			Aliases:      t.GetAliases(),
			Description:  t.GetDescription(),
			Schema:       s,
			QoS:          t.GetQos(),
			Match:        MatchFromWire(t.GetMatch()),
			Modes:        t.GetModes(),
			Phases:       t.GetPhases(),
			Capabilities: t.GetCapabilities(),
		}
	}
	return md, nil
}

// MatchToWire converts an entrypoint match; nil is nil.
func MatchToWire(m *lifecycle.Match) *pluginv1.Match {
	if m == nil {
		return nil
	}
	return &pluginv1.Match{
		Methods:       m.Methods,
		Accept:        m.Accept,
		Websocket:     m.WebSocket,
		CriteriaCount: int32(m.CriteriaCount),
	}
}

// MatchFromWire converts an entrypoint match; nil is nil.
func MatchFromWire(w *pluginv1.Match) *lifecycle.Match {
	if w == nil {
		return nil
	}
	return &lifecycle.Match{
		Methods:       w.GetMethods(),
		Accept:        w.GetAccept(),
		WebSocket:     w.GetWebsocket(),
		CriteriaCount: int(w.GetCriteriaCount()),
	}
}

// SchemaToWire converts a configuration schema. It fails only when an
// attribute's Default cannot be encoded as JSON.
func SchemaToWire(s schema.Schema) (*pluginv1.Schema, error) {
	out := &pluginv1.Schema{}
	if len(s.Attributes) > 0 {
		out.Attributes = make([]*pluginv1.Schema_Attribute, len(s.Attributes))
	}
	for i, a := range s.Attributes {
		var def string
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: default: %w", a.Name, err)
			}
			def = string(b)
		}
		out.Attributes[i] = &pluginv1.Schema_Attribute{
			Name:        a.Name,
			Type:        attrTypeToWire(a.Type),
			Required:    a.Required,
			Description: a.Description,
			Enum:        a.Enum,
			DefaultJson: def,
			El:          a.EL,
		}
	}
	if len(s.Blocks) > 0 {
		out.Blocks = make([]*pluginv1.Schema_Block, len(s.Blocks))
	}
	for i, b := range s.Blocks {
		inner, err := SchemaToWire(b.Schema)
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks[i] = &pluginv1.Schema_Block{
			Name:        b.Name,
			Nesting:     nestingToWire(b.Nesting),
			Schema:      inner,
			Required:    b.Required,
			Description: b.Description,
		}
	}
	return out, nil
}

// SchemaFromWire converts a configuration schema; nil is the empty schema.
// A default decodes as UnmarshalJSON does (integral numbers as int64).
func SchemaFromWire(w *pluginv1.Schema) (schema.Schema, error) {
	var out schema.Schema
	if len(w.GetAttributes()) > 0 {
		out.Attributes = make([]schema.Attribute, len(w.GetAttributes()))
	}
	for i, a := range w.GetAttributes() {
		var def any
		if a.GetDefaultJson() != "" {
			if err := UnmarshalJSON([]byte(a.GetDefaultJson()), &def); err != nil {
				return schema.Schema{}, fmt.Errorf("attribute %q: default: %w", a.GetName(), err)
			}
		}
		out.Attributes[i] = schema.Attribute{
			Name:        a.GetName(),
			Type:        attrTypeFromWire(a.GetType()),
			Required:    a.GetRequired(),
			Description: a.GetDescription(),
			Enum:        a.GetEnum(),
			Default:     def,
			EL:          a.GetEl(),
		}
	}
	if len(w.GetBlocks()) > 0 {
		out.Blocks = make([]schema.Block, len(w.GetBlocks()))
	}
	for i, b := range w.GetBlocks() {
		inner, err := SchemaFromWire(b.GetSchema())
		if err != nil {
			return schema.Schema{}, fmt.Errorf("block %q: %w", b.GetName(), err)
		}
		out.Blocks[i] = schema.Block{
			Name:        b.GetName(),
			Nesting:     nestingFromWire(b.GetNesting()),
			Schema:      inner,
			Required:    b.GetRequired(),
			Description: b.GetDescription(),
		}
	}
	return out, nil
}

func attrTypeToWire(t schema.Type) pluginv1.Schema_Attribute_Type {
	switch t {
	case schema.String:
		return pluginv1.Schema_Attribute_STRING
	case schema.Number:
		return pluginv1.Schema_Attribute_NUMBER
	case schema.Bool:
		return pluginv1.Schema_Attribute_BOOL
	case schema.ListOfString:
		return pluginv1.Schema_Attribute_LIST_OF_STRING
	case schema.MapOfString:
		return pluginv1.Schema_Attribute_MAP_OF_STRING
	case schema.MapOfNumber:
		return pluginv1.Schema_Attribute_MAP_OF_NUMBER
	}
	return pluginv1.Schema_Attribute_TYPE_UNSPECIFIED
}

func attrTypeFromWire(t pluginv1.Schema_Attribute_Type) schema.Type {
	switch t {
	case pluginv1.Schema_Attribute_STRING:
		return schema.String
	case pluginv1.Schema_Attribute_NUMBER:
		return schema.Number
	case pluginv1.Schema_Attribute_BOOL:
		return schema.Bool
	case pluginv1.Schema_Attribute_LIST_OF_STRING:
		return schema.ListOfString
	case pluginv1.Schema_Attribute_MAP_OF_STRING:
		return schema.MapOfString
	case pluginv1.Schema_Attribute_MAP_OF_NUMBER:
		return schema.MapOfNumber
	}
	return 0
}

func nestingToWire(n schema.Nesting) pluginv1.Schema_Block_Nesting {
	switch n {
	case schema.Single:
		return pluginv1.Schema_Block_SINGLE
	case schema.List:
		return pluginv1.Schema_Block_LIST
	}
	return pluginv1.Schema_Block_NESTING_UNSPECIFIED
}

func nestingFromWire(n pluginv1.Schema_Block_Nesting) schema.Nesting {
	switch n {
	case pluginv1.Schema_Block_SINGLE:
		return schema.Single
	case pluginv1.Schema_Block_LIST:
		return schema.List
	}
	return 0
}

// DiagnosticsToWire converts diagnostics. A severity other than Warning is
// sent as ERROR, so a malformed diagnostic never passes for harmless.
func DiagnosticsToWire(d lifecycle.Diagnostics) []*pluginv1.Diagnostic {
	if len(d) == 0 {
		return nil
	}
	out := make([]*pluginv1.Diagnostic, len(d))
	for i, x := range d {
		sev := pluginv1.Diagnostic_ERROR
		if x.Severity == lifecycle.Warning {
			sev = pluginv1.Diagnostic_WARNING
		}
		out[i] = &pluginv1.Diagnostic{
			Severity:      sev,
			Summary:       x.Summary,
			Detail:        x.Detail,
			AttributePath: x.Path,
		}
	}
	return out
}

// DiagnosticsFromWire converts diagnostics. A severity other than WARNING
// (including SEVERITY_UNSPECIFIED) is an Error, for the same reason.
func DiagnosticsFromWire(ws []*pluginv1.Diagnostic) lifecycle.Diagnostics {
	if len(ws) == 0 {
		return nil
	}
	out := make(lifecycle.Diagnostics, len(ws))
	for i, w := range ws {
		sev := lifecycle.Error
		if w.GetSeverity() == pluginv1.Diagnostic_WARNING {
			sev = lifecycle.Warning
		}
		out[i] = lifecycle.Diagnostic{
			Severity: sev,
			Summary:  w.GetSummary(),
			Detail:   w.GetDetail(),
			Path:     w.GetAttributePath(),
		}
	}
	return out
}
