package serve

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/sluice-gw/sluice/sdk/internal/grpcserver"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// DescribeArg is the argument that makes a plugin binary print its
// Description as JSON on stdout and exit, without serving: the core lists and
// checks plugins this way, without a handshake.
const DescribeArg = "describe"

// Description is the JSON a plugin prints for DescribeArg. Its shape is part
// of the protocol: fields are only ever added. Names are snake_case; empty
// optional fields are omitted.
type Description struct {
	// ProtocolVersion is the plugin's ProtocolVersion, so the core can refuse
	// an incompatible plugin before launching it.
	ProtocolVersion int `json:"protocol_version"`
	// Kind is "endpoint", "entrypoint" or "policy".
	Kind string `json:"kind"`
	// Name is the plugin's name.
	Name string `json:"name"`
	// Version is the plugin's own version.
	Version string `json:"version"`
	// Types are the types the plugin provides.
	Types []TypeDescription `json:"types"`
}

// TypeDescription describes one type; see lifecycle.TypeInfo.
type TypeDescription struct {
	// Name is the type name used in HCL.
	Name string `json:"name"`
	// Aliases are other accepted names.
	Aliases []string `json:"aliases,omitempty"`
	// Description is one sentence.
	Description string `json:"description,omitempty"`
	// Schema is the configuration schema of the type's block.
	Schema SchemaDescription `json:"schema"`
	// QoS lists the accepted or served QoS levels.
	QoS []string `json:"qos,omitempty"`
	// Match is set for entrypoints.
	Match *MatchDescription `json:"match,omitempty"`
	// Modes are "publish" and/or "subscribe".
	Modes []string `json:"modes,omitempty"`
	// Phases are the policy phases supported.
	Phases []string `json:"phases,omitempty"`
	// Capabilities are free-form feature flags.
	Capabilities []string `json:"capabilities,omitempty"`
}

// MatchDescription is an entrypoint's match; see lifecycle.Match.
type MatchDescription struct {
	// Methods are the accepted HTTP methods; empty means any.
	Methods []string `json:"methods,omitempty"`
	// Accept must be among the request's Accept media types, when set.
	Accept string `json:"accept,omitempty"`
	// WebSocket requires a WebSocket upgrade.
	WebSocket bool `json:"websocket,omitempty"`
	// CriteriaCount breaks ties between matching entrypoints.
	CriteriaCount int `json:"criteria_count"`
}

// SchemaDescription is a block's schema; see schema.Schema.
type SchemaDescription struct {
	// Attributes are the block's attributes.
	Attributes []AttributeDescription `json:"attributes,omitempty"`
	// Blocks are the nested blocks.
	Blocks []BlockDescription `json:"blocks,omitempty"`
}

// AttributeDescription is one attribute; see schema.Attribute.
type AttributeDescription struct {
	// Name is the snake_case name.
	Name string `json:"name"`
	// Type is one of "string", "number", "bool", "list(string)",
	// "map(string)", "map(number)" (the HCL type expressions).
	Type string `json:"type"`
	// Required makes a missing attribute an error.
	Required bool `json:"required,omitempty"`
	// Description documents the attribute.
	Description string `json:"description,omitempty"`
	// Enum lists the allowed values of a string attribute.
	Enum []string `json:"enum,omitempty"`
	// Default is the documented default, as JSON.
	Default json.RawMessage `json:"default,omitempty"`
	// EL says the value may hold EL templates.
	EL bool `json:"el,omitempty"`
}

// BlockDescription is one nested block; see schema.Block.
type BlockDescription struct {
	// Name is the block type name.
	Name string `json:"name"`
	// Nesting is "single" or "list".
	Nesting string `json:"nesting"`
	// Required makes a missing single block an error.
	Required bool `json:"required,omitempty"`
	// Description documents the block.
	Description string `json:"description,omitempty"`
	// Schema is the block's content.
	Schema SchemaDescription `json:"schema"`
}

// The names of schema types and nestings in a Description.
var (
	typeNames = map[schema.Type]string{
		schema.String:       "string",
		schema.Number:       "number",
		schema.Bool:         "bool",
		schema.ListOfString: "list(string)",
		schema.MapOfString:  "map(string)",
		schema.MapOfNumber:  "map(number)",
	}
	nestingNames = map[schema.Nesting]string{
		schema.Single: "single",
		schema.List:   "list",
	}
)

// Describe checks p as Serve does and returns its Description.
func Describe(p lifecycle.Plugin) (Description, error) {
	srv, err := grpcserver.New(p, nil)
	if err != nil {
		return Description{}, err
	}
	return NewDescription(srv.Metadata())
}

// NewDescription converts metadata to its Description. It fails for a
// schema type or nesting it does not know, or a default that does not encode
// as JSON.
func NewDescription(md lifecycle.Metadata) (Description, error) {
	d := Description{
		ProtocolVersion: ProtocolVersion,
		Kind:            string(md.Kind),
		Name:            md.Name,
		Version:         md.Version,
		Types:           make([]TypeDescription, len(md.Types)),
	}
	for i, t := range md.Types {
		s, err := describeSchema(t.Schema)
		if err != nil {
			return Description{}, fmt.Errorf("type %q: %w", t.Name, err)
		}
		td := TypeDescription{
			Name:         t.Name,
			Aliases:      t.Aliases,
			Description:  t.Description,
			Schema:       s,
			QoS:          t.QoS,
			Modes:        t.Modes,
			Phases:       t.Phases,
			Capabilities: t.Capabilities,
		}
		if m := t.Match; m != nil {
			td.Match = &MatchDescription{Methods: m.Methods, Accept: m.Accept, WebSocket: m.WebSocket, CriteriaCount: m.CriteriaCount}
		}
		d.Types[i] = td
	}
	return d, nil
}

func describeSchema(s schema.Schema) (SchemaDescription, error) {
	var out SchemaDescription
	for _, a := range s.Attributes {
		typ, ok := typeNames[a.Type]
		if !ok {
			return out, fmt.Errorf("attribute %q: unknown type %d", a.Name, a.Type)
		}
		ad := AttributeDescription{
			Name:        a.Name,
			Type:        typ,
			Required:    a.Required,
			Description: a.Description,
			Enum:        a.Enum,
			EL:          a.EL,
		}
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				return out, fmt.Errorf("attribute %q: default: %w", a.Name, err)
			}
			ad.Default = b
		}
		out.Attributes = append(out.Attributes, ad)
	}
	for _, b := range s.Blocks {
		nesting, ok := nestingNames[b.Nesting]
		if !ok {
			return out, fmt.Errorf("block %q: unknown nesting %d", b.Name, b.Nesting)
		}
		inner, err := describeSchema(b.Schema)
		if err != nil {
			return out, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks = append(out.Blocks, BlockDescription{
			Name:        b.Name,
			Nesting:     nesting,
			Required:    b.Required,
			Description: b.Description,
			Schema:      inner,
		})
	}
	return out, nil
}

// Metadata converts the description back to metadata, as the core needs it.
// Defaults decode with integral numbers as int64. It fails for a kind, type
// or nesting it does not know, so a core never acts on a description it
// misreads.
func (d Description) Metadata() (lifecycle.Metadata, error) {
	md := lifecycle.Metadata{Kind: lifecycle.Kind(d.Kind), Name: d.Name, Version: d.Version}
	switch md.Kind {
	case lifecycle.KindEndpoint, lifecycle.KindEntrypoint, lifecycle.KindPolicy:
	default:
		return lifecycle.Metadata{}, fmt.Errorf("unknown plugin kind %q", d.Kind)
	}
	for _, t := range d.Types {
		s, err := t.Schema.schema()
		if err != nil {
			return lifecycle.Metadata{}, fmt.Errorf("type %q: %w", t.Name, err)
		}
		ti := lifecycle.TypeInfo{
			Name:         t.Name,
			Aliases:      t.Aliases,
			Description:  t.Description,
			Schema:       s,
			QoS:          t.QoS,
			Modes:        t.Modes,
			Phases:       t.Phases,
			Capabilities: t.Capabilities,
		}
		if m := t.Match; m != nil {
			ti.Match = &lifecycle.Match{Methods: m.Methods, Accept: m.Accept, WebSocket: m.WebSocket, CriteriaCount: m.CriteriaCount}
		}
		md.Types = append(md.Types, ti)
	}
	return md, nil
}

func (s SchemaDescription) schema() (schema.Schema, error) {
	var out schema.Schema
	for _, a := range s.Attributes {
		typ, ok := lookup(typeNames, a.Type)
		if !ok {
			return out, fmt.Errorf("attribute %q: unknown type %q", a.Name, a.Type)
		}
		var def any
		if len(a.Default) > 0 {
			if err := wire.UnmarshalJSON(a.Default, &def); err != nil {
				return out, fmt.Errorf("attribute %q: default: %w", a.Name, err)
			}
		}
		out.Attributes = append(out.Attributes, schema.Attribute{
			Name:        a.Name,
			Type:        typ,
			Required:    a.Required,
			Description: a.Description,
			Enum:        a.Enum,
			Default:     def,
			EL:          a.EL,
		})
	}
	for _, b := range s.Blocks {
		nesting, ok := lookup(nestingNames, b.Nesting)
		if !ok {
			return out, fmt.Errorf("block %q: unknown nesting %q", b.Name, b.Nesting)
		}
		inner, err := b.Schema.schema()
		if err != nil {
			return out, fmt.Errorf("block %q: %w", b.Name, err)
		}
		out.Blocks = append(out.Blocks, schema.Block{
			Name:        b.Name,
			Nesting:     nesting,
			Schema:      inner,
			Required:    b.Required,
			Description: b.Description,
		})
	}
	return out, nil
}

// lookup finds the key of a name in one of the name tables.
func lookup[K comparable](names map[K]string, name string) (K, bool) {
	for k, v := range names {
		if v == name {
			return k, true
		}
	}
	var zero K
	return zero, false
}

// writeDescription prints d as indented JSON.
func writeDescription(w io.Writer, d Description) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
