package el

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// format renders an EL value as the text a configuration field receives.
// Lists are joined with "," because the Kafka connector splits comma strings
// back into lists (docs/behaviour.md 1.6), and integral numbers never use an
// exponent because they usually end up as topic names, ids or sizes.
func format(v any) string {
	var b strings.Builder
	writeValue(&b, v, 0)
	return b.String()
}

// maxDepth stops self-referencing values (a map holding itself) from
// recursing forever.
const maxDepth = 32

func writeValue(b *strings.Builder, v any, depth int) {
	switch x := v.(type) {
	case nil:
	case string:
		b.WriteString(x)
	case []byte:
		b.Write(x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(formatFloat(x, 64))
	case float32:
		b.WriteString(formatFloat(float64(x), 32))
	case json.Number:
		b.WriteString(string(x))
	case []string:
		for i, s := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s)
		}
	case []any:
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNested(b, e, depth)
		}
	case error:
		b.WriteString(x.Error())
	case fmt.Stringer:
		b.WriteString(x.String())
	default:
		writeReflect(b, v, depth)
	}
}

func writeNested(b *strings.Builder, v any, depth int) {
	if depth >= maxDepth {
		b.WriteString("...")
		return
	}
	writeValue(b, v, depth+1)
}

func writeReflect(b *strings.Builder, v any, depth int) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(rv.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(formatFloat(rv.Float(), 64))
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNested(b, rv.Index(i).Interface(), depth)
		}
	case reflect.Map, reflect.Struct:
		// Maps and objects have no natural comma form; JSON is what a
		// downstream consumer can most likely parse.
		if out, err := json.Marshal(v); err == nil {
			b.Write(out)
			return
		}
		// fmt would recurse forever on a cyclic map; the type is enough
		// to tell the operator what went wrong.
		fmt.Fprintf(b, "%T", v)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return
		}
		writeNested(b, rv.Elem().Interface(), depth)
	default:
		fmt.Fprint(b, v)
	}
}

func formatFloat(f float64, bits int) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, bits)
	}
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, bits)
	}
	return strconv.FormatFloat(f, 'f', -1, bits)
}
