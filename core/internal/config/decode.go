package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Decode decodes every plugin block of f against its type's schema (stage 2)
// and sets its ConfigJSON. It reports every problem it finds, in every
// block, rather than stopping at the first: unknown types, attributes the
// schema does not declare, missing required ones, values outside an
// enumeration, and whatever the plugin's own validation returns, each
// mapped onto the attribute it is about. The plugin is asked only about
// blocks that decoded cleanly.
func (l *Loader) Decode(ctx context.Context, f *File, s Schemas) hcl.Diagnostics {
	if f == nil {
		return nil
	}
	if f.eval == nil {
		// A File built by hand rather than by Load.
		dir := filepath.Dir(f.Path)
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		f.dir = dir
		f.eval = evalContext(dir, nil)
	}
	var diags hcl.Diagnostics
	for _, api := range f.APIs {
		seenEntrypoints := map[string]*PluginBlock{}
		for _, pb := range api.Entrypoints {
			ti, d := decodeBlock(ctx, f.eval, s, pb)
			diags = append(diags, d...)
			if ti == nil {
				continue
			}
			canonical := canonicalName(ti, pb.Type)
			if prev, dup := seenEntrypoints[canonical]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Duplicate entrypoint %q", pb.Where, canonical),
					Detail: fmt.Sprintf("This API already has a %q entrypoint at %s; an API takes each entrypoint type once.",
						canonical, startString(prev.Range)),
					Subject: labelRange(pb).Ptr(),
				})
				continue
			}
			seenEntrypoints[canonical] = pb
		}
		for _, pb := range api.Endpoints {
			_, d := decodeBlock(ctx, f.eval, s, pb)
			diags = append(diags, d...)
		}
		for _, flow := range api.Flows {
			for _, phase := range Phases {
				for _, pb := range flow.Phases[phase] {
					ti, d := decodeBlock(ctx, f.eval, s, pb)
					diags = append(diags, d...)
					if ti != nil && len(ti.GetPhases()) > 0 && !contains(ti.GetPhases(), phase) {
						diags = append(diags, &hcl.Diagnostic{
							Severity: hcl.DiagError,
							Summary:  fmt.Sprintf("%s: Policy %q does not run in the %s phase", pb.Where, pb.Type, phase),
							Detail:   wrongPhaseDetail(pb.Type, ti.GetPhases()),
							Subject:  labelRange(pb).Ptr(),
						})
					}
				}
			}
		}
	}
	return diags
}

// wrongPhaseDetail says where a policy placed in the wrong phase can go. A
// plugin may declare phases a flow cannot hold (the reference's native Kafka
// APIs have an "interact" phase); suggesting those would only lead to the
// next error.
func wrongPhaseDetail(typ string, declared []string) string {
	var usable []string
	for _, p := range declared {
		if contains(Phases, p) {
			usable = append(usable, p)
		}
	}
	if len(usable) == 0 {
		return fmt.Sprintf("Policy %q runs only in phases message APIs do not have (%s); remove it from this flow.", typ, strings.Join(declared, ", "))
	}
	return fmt.Sprintf("Policy %q runs in: %s. Move it to one of those phases.", typ, strings.Join(usable, ", "))
}

// decodeBlock decodes one plugin block. It returns the type's info when the
// type is known, whether or not the body is valid.
func decodeBlock(ctx context.Context, eval *hcl.EvalContext, s Schemas, pb *PluginBlock) (*pluginv1.TypeInfo, hcl.Diagnostics) {
	pb.ConfigJSON = nil
	ti, ok := s.TypeInfo(pb.Kind, pb.Type)
	if !ok || ti == nil {
		return nil, hcl.Diagnostics{unknownType(s, pb)}
	}
	schema := ti.GetConfigSchema()
	if err := checkSchema(schema); err != nil {
		return ti, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: The %s plugin's schema for %q is invalid", pb.Where, pb.Kind, pb.Type),
			Detail:   fmt.Sprintf("%s. This is a bug in the plugin; upgrade or report it.", err),
			Subject:  labelRange(pb).Ptr(),
		}}
	}
	if pb.Kind == lifecycle.KindPolicy {
		for _, a := range schema.GetAttributes() {
			if contains(MetaArguments, a.GetName()) {
				return ti, hcl.Diagnostics{{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: The policy plugin's schema for %q declares %q, a step meta-argument", pb.Where, pb.Type, a.GetName()),
					Detail:   fmt.Sprintf("The gateway takes %s from every policy block itself; the plugin must name its attribute differently. Upgrade or report it.", quoteList(MetaArguments)),
					Subject:  labelRange(pb).Ptr(),
				}}
			}
		}
	}
	body := pb.Body
	if body == nil {
		body = hcl.EmptyBody()
	}
	val, diags := hcldec.Decode(body, objectSpec(schema), eval)
	if diags.HasErrors() {
		return ti, prefixed(pb.Where, diags)
	}
	js, err := toJSON(schema, val)
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot convert the block's values to JSON",
			Detail:   err.Error() + ".",
			Subject:  pb.Range.Ptr(),
		})
		return ti, prefixed(pb.Where, diags)
	}
	pb.ConfigJSON = js

	if err := ctx.Err(); err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Validation was cancelled",
			Detail:   err.Error() + ".",
			Subject:  pb.Range.Ptr(),
		})
		return ti, prefixed(pb.Where, diags)
	}
	pds, err := s.Validate(ctx, pb.Kind, canonicalName(ti, pb.Type), js)
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("The %s plugin for %q could not validate this block", pb.Kind, pb.Type),
			Detail:   fmt.Sprintf("%s. Check the plugin's log; `sluice plugins` lists the installed plugins.", err),
			Subject:  pb.Range.Ptr(),
		})
	}
	for _, pd := range pds {
		if pd != nil {
			diags = append(diags, pluginDiagnostic(pb, pd))
		}
	}
	return ti, prefixed(pb.Where, diags)
}

// canonicalName is the type's own name, falling back to the label when the
// plugin left it empty.
func canonicalName(ti *pluginv1.TypeInfo, label string) string {
	if ti.GetName() != "" {
		return ti.GetName()
	}
	return label
}

// labelRange is where a problem with the type label is reported.
func labelRange(pb *PluginBlock) hcl.Range {
	if pb.typeRange.Filename != "" {
		return pb.typeRange
	}
	return pb.Range
}

// unknownType reports a type no installed plugin provides, with the closest
// known type and the full list.
func unknownType(s Schemas, pb *PluginBlock) *hcl.Diagnostic {
	known := append([]string(nil), s.KnownTypes(pb.Kind)...)
	sort.Strings(known)
	var detail string
	if len(known) == 0 {
		detail = fmt.Sprintf("No %s plugin is installed; put plugin binaries in the gateway's plugin_dir.", pb.Kind)
	} else {
		detail = fmt.Sprintf("Known %s types: %s.", pb.Kind, quoteList(known))
		if sug := suggest(pb.Type, known); sug != "" {
			detail = fmt.Sprintf("Did you mean %q? %s", sug, detail)
		}
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("%s: Unknown %s type %q", pb.Where, pb.Kind, pb.Type),
		Detail:   detail,
		Subject:  labelRange(pb).Ptr(),
	}
}

// pluginDiagnostic turns a plugin's diagnostic into an HCL one located at
// the attribute its path names. When the path cannot be followed to the end
// (an absent attribute, a non-native body), it points at the nearest
// enclosing block and names the path in the summary.
func pluginDiagnostic(pb *PluginBlock, pd *pluginv1.Diagnostic) *hcl.Diagnostic {
	sev := hcl.DiagError
	if pd.GetSeverity() == pluginv1.Diagnostic_WARNING {
		sev = hcl.DiagWarning
	}
	summary := pd.GetSummary()
	if summary == "" {
		summary = "Invalid configuration"
	}
	path := pd.GetAttributePath()
	rng, exact := rangeForPath(pb.Body, pb.Range, path)
	if !exact && len(path) > 0 {
		summary = strings.Join(path, ".") + ": " + summary
	}
	return &hcl.Diagnostic{
		Severity: sev,
		Summary:  summary,
		Detail:   pd.GetDetail(),
		Subject:  rng.Ptr(),
	}
}

// rangeForPath follows an attribute path (["consumer", "auto_offset_reset"],
// ["attribute", "1", "value"]) through a native-syntax body: names select
// nested blocks or attributes, and a number after a block name selects that
// block among the ones of its type (the first when there is no number). It
// returns the range found and whether the whole path was followed.
func rangeForPath(body hcl.Body, blockRange hcl.Range, path []string) (hcl.Range, bool) {
	rng := blockRange
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return rng, len(path) == 0
	}
	for i := 0; i < len(path); i++ {
		name := path[i]
		if a, ok := sb.Attributes[name]; ok {
			// Anything after an attribute (a map key, a list index) is
			// inside its value; the value's range is close enough.
			return a.Expr.Range(), true
		}
		var matches []*hclsyntax.Block
		for _, b := range sb.Blocks {
			if b.Type == name {
				matches = append(matches, b)
			}
		}
		idx := 0
		if i+1 < len(path) {
			if n, err := strconv.Atoi(path[i+1]); err == nil {
				idx = n
				i++
			}
		}
		if idx < 0 || idx >= len(matches) {
			return rng, false
		}
		rng = matches[idx].DefRange()
		sb = matches[idx].Body
	}
	return rng, true
}

// checkSchema rejects schemas hcldec cannot represent: empty or repeated
// names, and block nestings this core does not know.
func checkSchema(s *pluginv1.Schema) error {
	seen := map[string]bool{}
	for _, a := range s.GetAttributes() {
		if a.GetName() == "" {
			return fmt.Errorf("an attribute has no name")
		}
		if seen[a.GetName()] {
			return fmt.Errorf("%q is declared twice", a.GetName())
		}
		seen[a.GetName()] = true
	}
	for _, b := range s.GetBlocks() {
		if b.GetName() == "" {
			return fmt.Errorf("a block has no name")
		}
		if seen[b.GetName()] {
			return fmt.Errorf("%q is declared twice", b.GetName())
		}
		seen[b.GetName()] = true
		switch b.GetNesting() {
		case pluginv1.Schema_Block_NESTING_UNSPECIFIED, pluginv1.Schema_Block_SINGLE, pluginv1.Schema_Block_LIST:
		default:
			return fmt.Errorf("block %q has nesting %v, which this gateway does not support", b.GetName(), b.GetNesting())
		}
		if err := checkSchema(b.GetSchema()); err != nil {
			return fmt.Errorf("in block %q: %w", b.GetName(), err)
		}
	}
	return nil
}

// ctyType maps a schema attribute type to the cty type HCL converts values
// to. A type this core does not know (a newer protocol minor) accepts any
// value and leaves checking it to the plugin.
func ctyType(t pluginv1.Schema_Attribute_Type) cty.Type {
	switch t {
	case pluginv1.Schema_Attribute_STRING:
		return cty.String
	case pluginv1.Schema_Attribute_NUMBER:
		return cty.Number
	case pluginv1.Schema_Attribute_BOOL:
		return cty.Bool
	case pluginv1.Schema_Attribute_LIST_OF_STRING:
		return cty.List(cty.String)
	case pluginv1.Schema_Attribute_MAP_OF_STRING:
		return cty.Map(cty.String)
	case pluginv1.Schema_Attribute_MAP_OF_NUMBER:
		return cty.Map(cty.Number)
	default:
		return cty.DynamicPseudoType
	}
}

// objectSpec builds the hcldec spec of one block's content.
func objectSpec(s *pluginv1.Schema) hcldec.ObjectSpec {
	spec := hcldec.ObjectSpec{}
	for _, a := range s.GetAttributes() {
		var as hcldec.Spec = &hcldec.AttrSpec{Name: a.GetName(), Type: ctyType(a.GetType()), Required: a.GetRequired()}
		if a.GetType() == pluginv1.Schema_Attribute_STRING && len(a.GetEnum()) > 0 {
			as = &hcldec.ValidateSpec{Wrapped: as, Func: enumCheck(a.GetName(), a.GetEnum())}
		}
		spec[a.GetName()] = as
	}
	for _, b := range s.GetBlocks() {
		nested := objectSpec(b.GetSchema())
		if b.GetNesting() == pluginv1.Schema_Block_LIST {
			minItems := 0
			if b.GetRequired() {
				minItems = 1
			}
			spec[b.GetName()] = &hcldec.BlockListSpec{TypeName: b.GetName(), Nested: nested, MinItems: minItems}
		} else {
			spec[b.GetName()] = &hcldec.BlockSpec{TypeName: b.GetName(), Nested: nested, Required: b.GetRequired()}
		}
	}
	return spec
}

// enumCheck reports a string outside the allowed values. Values holding EL
// ("{#...}") are only known per request, so the plugin checks them then.
// hcldec puts the diagnostic on the attribute's value.
func enumCheck(name string, allowed []string) func(cty.Value) hcl.Diagnostics {
	return func(v cty.Value) hcl.Diagnostics {
		if v.IsNull() || !v.IsKnown() || !v.Type().Equals(cty.String) {
			return nil
		}
		s := v.AsString()
		if strings.Contains(s, "{#") || contains(allowed, s) {
			return nil
		}
		d := &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid value for %q: %q; allowed values are %s", name, s, quoteList(allowed)),
		}
		if sug := suggest(s, allowed); sug != "" {
			d.Detail = fmt.Sprintf("Did you mean %q?", sug)
		} else if sug := caseInsensitiveMatch(s, allowed); sug != "" {
			d.Detail = fmt.Sprintf("Values are case-sensitive: write %q.", sug)
		}
		return hcl.Diagnostics{d}
	}
}

func caseInsensitiveMatch(s string, allowed []string) string {
	for _, a := range allowed {
		if strings.EqualFold(a, s) {
			return a
		}
	}
	return ""
}

// toJSON encodes a decoded block as a JSON object with keys in sorted order.
// Null attributes and absent single blocks are left out rather than sent as
// null, at every level; list blocks are always arrays.
func toJSON(s *pluginv1.Schema, v cty.Value) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeObject(&buf, s, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeObject(buf *bytes.Buffer, s *pluginv1.Schema, v cty.Value) error {
	if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() {
		return fmt.Errorf("expected a known object, got %s", v.GoString())
	}
	type member struct {
		name string
		raw  []byte
	}
	var members []member
	for _, a := range s.GetAttributes() {
		if !v.Type().HasAttribute(a.GetName()) {
			continue
		}
		av := v.GetAttr(a.GetName())
		if av.IsNull() {
			continue
		}
		if !av.IsWhollyKnown() {
			return fmt.Errorf("the value of %q is not known at load time", a.GetName())
		}
		raw, err := ctyjson.Marshal(av, av.Type())
		if err != nil {
			return fmt.Errorf("%q: %w", a.GetName(), err)
		}
		members = append(members, member{a.GetName(), raw})
	}
	for _, b := range s.GetBlocks() {
		if !v.Type().HasAttribute(b.GetName()) {
			continue
		}
		bv := v.GetAttr(b.GetName())
		var nb bytes.Buffer
		if b.GetNesting() == pluginv1.Schema_Block_LIST {
			nb.WriteByte('[')
			if !bv.IsNull() {
				if !bv.IsKnown() {
					return fmt.Errorf("the %q blocks are not known at load time", b.GetName())
				}
				i := 0
				for it := bv.ElementIterator(); it.Next(); i++ {
					_, ev := it.Element()
					if i > 0 {
						nb.WriteByte(',')
					}
					if err := writeObject(&nb, b.GetSchema(), ev); err != nil {
						return fmt.Errorf("%s[%d]: %w", b.GetName(), i, err)
					}
				}
			}
			nb.WriteByte(']')
		} else {
			if bv.IsNull() {
				continue
			}
			if err := writeObject(&nb, b.GetSchema(), bv); err != nil {
				return fmt.Errorf("%s: %w", b.GetName(), err)
			}
		}
		members = append(members, member{b.GetName(), nb.Bytes()})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, err := json.Marshal(m.name)
		if err != nil {
			return err
		}
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(m.raw)
	}
	buf.WriteByte('}')
	return nil
}
