// Package wire converts between the author types of the SDK (sdk/gateway,
// sdk/lifecycle, sdk/schema, sdk/endpoint, sdk/entrypoint, sdk/policy) and the
// generated protocol types (sdk/proto/v1), in both directions.
//
// Conversions run per message on the hot path, so they allocate little: a
// batch of messages shares its backing arrays, byte slices are aliased rather
// than copied (a decoded proto message is owned by its receiver, and an
// encoded one is marshalled before the call that sends it returns), and a
// header's values are aliased too. Callers must therefore not modify what they
// passed to an encoder until the result has been sent.
//
// Attribute and metadata values travel as google.protobuf.Value, whose numbers
// are doubles. Decoding turns an integral number within ±2^53 back into an
// int64, so offsets, partitions and timestamps come back as integers; other
// numbers come back as float64. A float64 that happens to be integral (2.0)
// therefore comes back as int64(2).
package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"
)

// maxDepth bounds the nesting of attribute values, so a value that contains
// itself fails instead of overflowing the stack.
const maxDepth = 64

// maxExactInt is the largest integer a double represents exactly.
const maxExactInt = 1 << 53

// errTooDeep reports a value nested deeper than maxDepth.
var errTooDeep = errors.New("value nested too deeply (or contains itself)")

// The value holders pair a Value with its kind wrapper so that building one
// costs one allocation instead of two.
type (
	stringValue struct {
		v structpb.Value
		k structpb.Value_StringValue
	}
	numberValue struct {
		v structpb.Value
		k structpb.Value_NumberValue
	}
	boolValue struct {
		v structpb.Value
		k structpb.Value_BoolValue
	}
)

// slab hands out value holders from chunks, so the values of a batch cost a
// few allocations in all. A nil slab allocates each holder on its own. Chunks
// grow from minChunk to maxChunk, so a small conversion wastes little.
type slab struct {
	strs  []stringValue
	nums  []numberValue
	bools []boolValue
}

const (
	minChunk = 8
	maxChunk = 256
)

// nextCap is the capacity of the chunk after one of capacity c.
func nextCap(c int) int {
	return min(max(2*c, minChunk), maxChunk)
}

func (s *slab) newString(x string) *structpb.Value {
	var h *stringValue
	if s == nil {
		h = &stringValue{}
	} else {
		if len(s.strs) == cap(s.strs) {
			s.strs = make([]stringValue, 0, nextCap(cap(s.strs)))
		}
		s.strs = s.strs[:len(s.strs)+1]
		h = &s.strs[len(s.strs)-1]
	}
	h.k.StringValue = x
	h.v.Kind = &h.k
	return &h.v
}

func (s *slab) newNumber(f float64) *structpb.Value {
	var h *numberValue
	if s == nil {
		h = &numberValue{}
	} else {
		if len(s.nums) == cap(s.nums) {
			s.nums = make([]numberValue, 0, nextCap(cap(s.nums)))
		}
		s.nums = s.nums[:len(s.nums)+1]
		h = &s.nums[len(s.nums)-1]
	}
	h.k.NumberValue = f
	h.v.Kind = &h.k
	return &h.v
}

func (s *slab) newBool(b bool) *structpb.Value {
	var h *boolValue
	if s == nil {
		h = &boolValue{}
	} else {
		if len(s.bools) == cap(s.bools) {
			s.bools = make([]boolValue, 0, nextCap(cap(s.bools)))
		}
		s.bools = s.bools[:len(s.bools)+1]
		h = &s.bools[len(s.bools)-1]
	}
	h.k.BoolValue = b
	h.v.Kind = &h.k
	return &h.v
}

// nullValue is shared: a Value is never modified after it is built.
var nullValue = &structpb.Value{Kind: &structpb.Value_NullValue{}}

// ValueToWire converts a Go value to a protobuf Value. It takes nil, bool,
// string, every integer and float type, json.Number, []byte (as base64, like
// encoding/json), []string, []any, map[string]any and map[string]string
// directly; any other value goes through encoding/json. It fails only for
// values encoding/json rejects or that nest deeper than 64 levels.
func ValueToWire(v any) (*structpb.Value, error) {
	return (*slab)(nil).valueToWire(v, 0)
}

func (sl *slab) valueToWire(v any, depth int) (*structpb.Value, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case nil:
		return nullValue, nil
	case string:
		return sl.newString(x), nil
	case bool:
		return sl.newBool(x), nil
	case int:
		return sl.newNumber(float64(x)), nil
	case int64:
		return sl.newNumber(float64(x)), nil
	case int32:
		return sl.newNumber(float64(x)), nil
	case int16:
		return sl.newNumber(float64(x)), nil
	case int8:
		return sl.newNumber(float64(x)), nil
	case uint:
		return sl.newNumber(float64(x)), nil
	case uint64:
		return sl.newNumber(float64(x)), nil
	case uint32:
		return sl.newNumber(float64(x)), nil
	case uint16:
		return sl.newNumber(float64(x)), nil
	case uint8:
		return sl.newNumber(float64(x)), nil
	case float64:
		return sl.newNumber(x), nil
	case float32:
		return sl.newNumber(float64(x)), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("invalid json.Number %q", string(x))
		}
		return sl.newNumber(f), nil
	case []byte:
		return sl.newString(base64.StdEncoding.EncodeToString(x)), nil
	case []string:
		vals := make([]*structpb.Value, len(x))
		for i, s := range x {
			vals[i] = sl.newString(s)
		}
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: vals}}}, nil
	case []any:
		vals := make([]*structpb.Value, len(x))
		for i, e := range x {
			w, err := sl.valueToWire(e, depth+1)
			if err != nil {
				return nil, err
			}
			vals[i] = w
		}
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: vals}}}, nil
	case map[string]any:
		fields := make(map[string]*structpb.Value, len(x))
		for k, e := range x {
			w, err := sl.valueToWire(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			fields[k] = w
		}
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: fields}}}, nil
	case map[string]string:
		fields := make(map[string]*structpb.Value, len(x))
		for k, s := range x {
			fields[k] = sl.newString(s)
		}
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: fields}}}, nil
	case *structpb.Value:
		if x == nil {
			return nullValue, nil
		}
		return x, nil
	}
	// Anything else (structs, typed slices and maps, time.Time...) takes the
	// JSON route, which is what a plugin author would expect it to look like.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %T: %w", v, err)
	}
	var generic any
	if err := UnmarshalJSON(b, &generic); err != nil {
		return nil, fmt.Errorf("cannot encode %T: %w", v, err)
	}
	return sl.valueToWire(generic, depth+1)
}

// ValueFromWire converts a protobuf Value to Go: nil, bool, string, int64 (for
// integral numbers within ±2^53), float64, []any or map[string]any. A nil
// Value is nil.
func ValueFromWire(v *structpb.Value) any {
	return valueFromWire(v, 0)
}

func valueFromWire(v *structpb.Value, depth int) any {
	if v == nil || depth > maxDepth {
		return nil
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		return Number(k.NumberValue)
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_ListValue:
		vals := k.ListValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = valueFromWire(e, depth+1)
		}
		return out
	case *structpb.Value_StructValue:
		fields := k.StructValue.GetFields()
		out := make(map[string]any, len(fields))
		for name, e := range fields {
			out[name] = valueFromWire(e, depth+1)
		}
		return out
	}
	return nil
}

// Number returns f as an int64 when it is integral and exactly representable,
// and as a float64 otherwise.
func Number(f float64) any {
	if f >= -maxExactInt && f <= maxExactInt && f == math.Trunc(f) {
		return int64(f)
	}
	return f
}

// MapToWire converts an attribute or metadata map. An empty map is nil.
func MapToWire(m map[string]any) (map[string]*structpb.Value, error) {
	return (*slab)(nil).mapToWire(m)
}

func (sl *slab) mapToWire(m map[string]any) (map[string]*structpb.Value, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]*structpb.Value, len(m))
	for k, v := range m {
		w, err := sl.valueToWire(v, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = w
	}
	return out, nil
}

// MapFromWire converts an attribute or metadata map. An empty map is nil.
func MapFromWire(m map[string]*structpb.Value) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = valueFromWire(v, 0)
	}
	return out
}

// UnmarshalJSON decodes JSON into v like json.Unmarshal, except that numbers
// decoded into an interface follow the rule of the package: integral numbers
// become int64, others float64.
func UnmarshalJSON(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the value")
	}
	*v = normalizeNumbers(*v)
	return nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return string(x)
		}
		return Number(f)
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	}
	return v
}
