// Package javafmt writes values the way the reference gateway, written in
// Java, writes them, so plugins in Go produce the same bytes:
//
//   - String is Java's String.valueOf: null, true, whole numbers without a
//     fraction (metadata crosses the wire as JSON numbers, so a Kafka offset
//     arrives as a float64 and must still print as 42), lists as [a, b] and
//     maps as {k=v, ...}. Entrypoints write metadata in XML, text and SSE
//     comments this way.
//   - Joined is what a string configuration field receives from an EL value:
//     null is empty, lists are joined with "," (the Kafka connector splits
//     comma strings back into lists), maps are JSON.
package javafmt

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
)

// maxDepth stops self-referencing values (a map holding itself) from
// recursing forever; deeper values are written as "...".
const maxDepth = 32

// form is one way of writing values; the two forms share the walk so they
// cannot drift apart on the cases they agree on.
type form struct {
	// java selects Java's toString shapes ([a, b], {k=v}, "null");
	// otherwise the joined shapes (a,b, JSON maps, "").
	java bool
}

var (
	javaForm   = form{java: true}
	joinedForm = form{}
)

// String returns v as Java's String.valueOf would write it.
func String(v any) string { return string(Append(nil, v)) }

// Append appends v as Java's String.valueOf would write it.
func Append(b []byte, v any) []byte { return javaForm.append(b, v, 0) }

// Joined returns v as a string configuration field receives it: null is
// empty, lists are joined with ",", whole numbers have no fraction or
// exponent, maps and structs are JSON.
func Joined(v any) string { return string(AppendJoined(nil, v)) }

// AppendJoined appends v as Joined writes it.
func AppendJoined(b []byte, v any) []byte { return joinedForm.append(b, v, 0) }

// AppendNumber appends f as the reference writes a JSON number it read:
// whole numbers below 1e21 as integers, others in the shortest form that
// reads back the same.
func AppendNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.AppendFloat(b, f, 'f', 0, 64)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendJoinedFloat writes whole numbers without an exponent whatever their
// size, because they usually end up as topic names, ids or sizes.
func appendJoinedFloat(b []byte, f float64, bits int) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.AppendFloat(b, f, 'g', -1, bits)
	}
	if f == math.Trunc(f) {
		return strconv.AppendFloat(b, f, 'f', 0, bits)
	}
	return strconv.AppendFloat(b, f, 'f', -1, bits)
}

// Keys returns a metadata map's keys in the order the reference's fixtures
// show them: sourceTimestamp first, then the rest by name, so output is
// stable.
func Keys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "sourceTimestamp") != (keys[j] == "sourceTimestamp") {
			return keys[i] == "sourceTimestamp"
		}
		return keys[i] < keys[j]
	})
	return keys
}

func (f form) number(b []byte, x float64, bits int) []byte {
	if f.java {
		return AppendNumber(b, x)
	}
	return appendJoinedFloat(b, x, bits)
}

func (f form) append(b []byte, v any, depth int) []byte {
	if depth > maxDepth {
		return append(b, "..."...)
	}
	switch x := v.(type) {
	case nil:
		if f.java {
			b = append(b, "null"...)
		}
		return b
	case string:
		return append(b, x...)
	case []byte:
		return append(b, x...)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		return f.number(b, x, 64)
	case float32:
		return f.number(b, float64(x), 32)
	case json.Number:
		return append(b, x...)
	case []any:
		b = f.open(b)
		for i, e := range x {
			b = f.sep(b, i)
			b = f.append(b, e, depth+1)
		}
		return f.close(b)
	case map[string]any:
		if f.java {
			b = append(b, '{')
			for i, k := range Keys(x) {
				if i > 0 {
					b = append(b, ", "...)
				}
				b = append(b, k...)
				b = append(b, '=')
				b = f.append(b, x[k], depth+1)
			}
			return append(b, '}')
		}
	}
	if !f.java {
		// A configuration value wants what the value says of itself.
		switch x := v.(type) {
		case error:
			return append(b, x.Error()...)
		case fmt.Stringer:
			return append(b, x.String()...)
		}
	}
	return f.appendReflect(b, v, depth)
}

func (f form) open(b []byte) []byte {
	if f.java {
		return append(b, '[')
	}
	return b
}

func (f form) sep(b []byte, i int) []byte {
	if i == 0 {
		return b
	}
	if f.java {
		return append(b, ", "...)
	}
	return append(b, ',')
}

func (f form) close(b []byte) []byte {
	if f.java {
		return append(b, ']')
	}
	return b
}

func (f form) appendReflect(b []byte, v any, depth int) []byte {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(b, rv.Uint(), 10)
	case reflect.Slice, reflect.Array:
		b = f.open(b)
		for i := 0; i < rv.Len(); i++ {
			b = f.sep(b, i)
			b = f.append(b, rv.Index(i).Interface(), depth+1)
		}
		return f.close(b)
	}
	if !f.java {
		switch rv.Kind() {
		case reflect.Float32, reflect.Float64:
			return appendJoinedFloat(b, rv.Float(), 64)
		case reflect.Map, reflect.Struct:
			// Maps and objects have no natural comma form; JSON is what a
			// downstream consumer can most likely parse.
			if out, err := json.Marshal(v); err == nil {
				return append(b, out...)
			}
			// fmt would recurse forever on a cyclic map; the type is
			// enough to tell the operator what went wrong.
			return fmt.Appendf(b, "%T", v)
		case reflect.Pointer, reflect.Interface:
			if rv.IsNil() {
				return b
			}
			return f.append(b, rv.Elem().Interface(), depth+1)
		}
	}
	return fmt.Append(b, v)
}
