package instances

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// Decoder reads one JSON object of configuration, as the core sends a block,
// collecting every problem as a diagnostic with its attribute path rather
// than stopping at the first. Absent and null values leave the caller's
// default in place. Plugins never see HCL: the core has already checked the
// block against the declared schema, so the Decoder's checks matter for
// callers that skip the core (tests, other hosts) and for the checks a
// schema cannot express.
type Decoder struct {
	fields map[string]json.RawMessage
	path   []string
	diags  lifecycle.Diagnostics
	noun   string
	// nounSet says the noun was chosen by Noun; nested blocks keep it.
	nounSet bool
}

// DecoderOption changes how a Decoder words its diagnostics.
type DecoderOption func(*Decoder)

// Noun sets what an unknown field is called in "unsupported <noun> "x"".
// The default is "attribute" for a schema without blocks and "attribute or
// block" for one with blocks.
// Nested decoders (Block, List) keep it.
func Noun(noun string) DecoderOption {
	return func(d *Decoder) { d.noun, d.nounSet = noun, true }
}

// NewDecoder parses data (a JSON object, or empty or null for a block with
// no values) and reports every field that s does not declare.
func NewDecoder(data []byte, s schema.Schema, opts ...DecoderOption) *Decoder {
	d := &Decoder{}
	d.init(data, s, opts)
	return d
}

func (d *Decoder) init(data []byte, s schema.Schema, opts []DecoderOption) {
	d.noun = "attribute"
	if len(s.Blocks) > 0 {
		d.noun = "attribute or block"
	}
	for _, o := range opts {
		o(d)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return
	}
	if err := json.Unmarshal(data, &d.fields); err != nil {
		if len(d.path) > 0 {
			// A nested block: name the value, as for any attribute.
			d.diags.Errorf(d.path, "invalid value %s: %s", data, TypeProblem(err))
		} else {
			d.diags.Errorf(d.path, "configuration is not a JSON object: %v", err)
		}
		return
	}
	var known []string
	for _, a := range s.Attributes {
		known = append(known, a.Name)
	}
	for _, b := range s.Blocks {
		known = append(known, b.Name)
	}
	for _, k := range SortedKeys(d.fields) {
		if !slices.Contains(known, k) {
			d.diags.Errorf(d.At(k), "unsupported %s %q; allowed: %s", d.noun, k, strings.Join(known, ", "))
		}
	}
}

// Diagnostics returns what was found so far, including nested decoders'
// once merged.
func (d *Decoder) Diagnostics() lifecycle.Diagnostics { return d.diags }

// HasErrors reports whether any error was found so far.
func (d *Decoder) HasErrors() bool { return d.diags.HasErrors() }

// Has reports whether the object has field name (null included).
func (d *Decoder) Has(name string) bool {
	_, ok := d.fields[name]
	return ok
}

// Raw returns field name as JSON, nil when absent.
func (d *Decoder) Raw(name string) json.RawMessage { return d.fields[name] }

// Path returns the attribute path of this object within the block.
func (d *Decoder) Path() []string { return d.path }

// At returns the path of field name of this object.
func (d *Decoder) At(name string) []string {
	return append(append([]string(nil), d.path...), name)
}

// Errorf adds an error about field name (the object itself when name is
// empty).
func (d *Decoder) Errorf(name, format string, args ...any) {
	path := d.path
	if name != "" {
		path = d.At(name)
	}
	d.diags.Errorf(path, format, args...)
}

// Add adds diagnostics found by the caller, as they are.
func (d *Decoder) Add(diags ...lifecycle.Diagnostic) { d.diags = append(d.diags, diags...) }

// Value decodes field name into dst, a pointer to a pointer, and reports
// whether a non-null value was there. A value of the wrong type is an
// error saying what was expected.
func (d *Decoder) Value(name string, dst any) bool {
	v, ok := d.fields[name]
	if !ok {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		d.diags.Errorf(d.At(name), "invalid value %s: %s", v, TypeProblem(err))
		return false
	}
	rv := reflect.ValueOf(dst).Elem()
	switch rv.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return !rv.IsNil()
	}
	return true
}

// String decodes a string field into dst and reports whether it was set.
func (d *Decoder) String(name string, dst *string) bool {
	var v *string
	if d.Value(name, &v) {
		*dst = *v
		return true
	}
	return false
}

// Bool decodes a bool field into dst and reports whether it was set.
func (d *Decoder) Bool(name string, dst *bool) bool {
	var v *bool
	if d.Value(name, &v) {
		*dst = *v
		return true
	}
	return false
}

// WholeNumber decodes a number field that must be whole and within
// [min, max] into dst.
func (d *Decoder) WholeNumber(name string, min, max int64, dst *int64) {
	var v *float64
	if !d.Value(name, &v) {
		return
	}
	switch f := *v; {
	case f != math.Trunc(f):
		d.diags.Errorf(d.At(name), "%s must be a whole number, got %v", name, f)
	case f < float64(min):
		d.diags.Errorf(d.At(name), "%s must be at least %d, got %v", name, min, f)
	case f > float64(max):
		d.diags.Errorf(d.At(name), "%s must be at most %d, got %v", name, max, f)
	default:
		*dst = int64(f)
	}
}

// OneOf decodes a string field that must be one of allowed into dst.
func (d *Decoder) OneOf(name string, allowed []string, dst *string) {
	var s string
	if !d.String(name, &s) {
		return
	}
	if !slices.Contains(allowed, s) {
		d.diags.Errorf(d.At(name), "unsupported %s %q; allowed: %s", name, s, strings.Join(allowed, ", "))
		return
	}
	*dst = s
}

// Block returns a decoder for the nested object name, or nil when it is
// absent or null. Merge its diagnostics into d's when done with it.
func (d *Decoder) Block(name string, s schema.Schema, opts ...DecoderOption) *Decoder {
	v, ok := d.fields[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	sub := &Decoder{path: d.At(name)}
	sub.init(v, s, d.inherit(opts))
	return sub
}

// List returns a decoder for each element of the list of nested objects
// name. Merge their diagnostics into d's when done with them.
func (d *Decoder) List(name string, s schema.Schema, opts ...DecoderOption) []*Decoder {
	v, ok := d.fields[name]
	if !ok {
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			err = fmt.Errorf("expected a list of blocks, got a JSON %s", te.Value)
		}
		d.diags.Errorf(d.At(name), "invalid %s blocks %s: %v", name, v, err)
		return nil
	}
	subs := make([]*Decoder, len(elems))
	for i, e := range elems {
		subs[i] = &Decoder{path: append(d.At(name), strconv.Itoa(i))}
		subs[i].init(e, s, d.inherit(opts))
	}
	return subs
}

// inherit puts d's chosen noun before a nested decoder's own options.
func (d *Decoder) inherit(opts []DecoderOption) []DecoderOption {
	if !d.nounSet {
		return opts
	}
	return append([]DecoderOption{Noun(d.noun)}, opts...)
}

// Merge adds sub's diagnostics to d's; a nil sub adds nothing.
func (d *Decoder) Merge(sub *Decoder) {
	if sub != nil {
		d.diags = append(d.diags, sub.diags...)
	}
}

// Strict decodes data into dst (a pointer to a struct with json tags),
// refusing fields dst does not declare. Empty or null data leaves dst as it
// is. Use it for blocks whose shape a struct says well; use a Decoder to
// collect every problem with its path.
func Strict(data []byte, dst any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// TypeProblem turns a JSON decoding error into words an operator can act
// on: "expected a number, got a JSON string".
func TypeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected a %s, got a JSON %s", typeWord(te.Type), te.Value)
	}
	return err.Error()
}

// typeWord names a Go type in the schema's words.
func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "number"
	case reflect.Bool:
		return "bool"
	case reflect.Slice, reflect.Array:
		switch t.Elem().Kind() {
		case reflect.Map, reflect.Struct:
			return "list of blocks"
		}
		return "list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "block"
	}
	return t.Kind().String()
}

// SortedKeys returns m's keys in order, so diagnostics and output are
// stable.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
