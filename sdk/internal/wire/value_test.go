package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestValueRoundTrip(t *testing.T) {
	type tagged struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
	tests := map[string]struct {
		in   any
		wire *structpb.Value
		out  any
	}{
		"nil":            {nil, structpb.NewNullValue(), nil},
		"string":         {"héllo", structpb.NewStringValue("héllo"), "héllo"},
		"empty string":   {"", structpb.NewStringValue(""), ""},
		"true":           {true, structpb.NewBoolValue(true), true},
		"false":          {false, structpb.NewBoolValue(false), false},
		"int":            {42, structpb.NewNumberValue(42), int64(42)},
		"negative int":   {-7, structpb.NewNumberValue(-7), int64(-7)},
		"int32":          {int32(3), structpb.NewNumberValue(3), int64(3)},
		"int16":          {int16(-3), structpb.NewNumberValue(-3), int64(-3)},
		"int8":           {int8(8), structpb.NewNumberValue(8), int64(8)},
		"uint":           {uint(9), structpb.NewNumberValue(9), int64(9)},
		"uint8":          {uint8(255), structpb.NewNumberValue(255), int64(255)},
		"uint16":         {uint16(65535), structpb.NewNumberValue(65535), int64(65535)},
		"uint32":         {uint32(1 << 31), structpb.NewNumberValue(1 << 31), int64(1 << 31)},
		"uint64":         {uint64(1 << 40), structpb.NewNumberValue(1 << 40), int64(1 << 40)},
		"offset int64":   {int64(1234567890123), structpb.NewNumberValue(1234567890123), int64(1234567890123)},
		"timestamp ms":   {int64(1715000000000), structpb.NewNumberValue(1715000000000), int64(1715000000000)},
		"largest exact":  {int64(1 << 53), structpb.NewNumberValue(1 << 53), int64(1 << 53)},
		"float":          {1.5, structpb.NewNumberValue(1.5), 1.5},
		"float32":        {float32(0.25), structpb.NewNumberValue(0.25), 0.25},
		"integral float": {2.0, structpb.NewNumberValue(2), int64(2)},
		"huge float":     {1e20, structpb.NewNumberValue(1e20), 1e20},
		"json.Number":    {json.Number("12"), structpb.NewNumberValue(12), int64(12)},
		"bytes":          {[]byte("hi"), structpb.NewStringValue("aGk="), "aGk="},
		"string list": {
			[]string{"a", "b"},
			structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("a"), structpb.NewStringValue("b")}}),
			[]any{"a", "b"},
		},
		"empty string list": {[]string{}, structpb.NewListValue(&structpb.ListValue{}), []any{}},
		"mixed list": {
			[]any{1, "x", nil, true},
			structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
				structpb.NewNumberValue(1), structpb.NewStringValue("x"), structpb.NewNullValue(), structpb.NewBoolValue(true),
			}}),
			[]any{int64(1), "x", nil, true},
		},
		"nested map": {
			map[string]any{"a": 1, "b": map[string]any{"c": []any{}}},
			structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
				"a": structpb.NewNumberValue(1),
				"b": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
					"c": structpb.NewListValue(&structpb.ListValue{}),
				}}),
			}}),
			map[string]any{"a": int64(1), "b": map[string]any{"c": []any{}}},
		},
		"string map": {
			map[string]string{"k": "v"},
			structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewStringValue("v")}}),
			map[string]any{"k": "v"},
		},
		"struct via JSON": {
			tagged{A: 1},
			structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewNumberValue(1)}}),
			map[string]any{"a": int64(1)},
		},
		"typed slice via JSON": {
			[]int64{1, 2},
			structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNumberValue(1), structpb.NewNumberValue(2)}}),
			[]any{int64(1), int64(2)},
		},
		"time via JSON":  {ts, structpb.NewStringValue("2024-05-06T07:08:09.123Z"), "2024-05-06T07:08:09.123Z"},
		"protobuf value": {structpb.NewStringValue("p"), structpb.NewStringValue("p"), "p"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := ValueToWire(tc.in)
			if err != nil {
				t.Fatalf("ValueToWire: %v", err)
			}
			if !proto.Equal(w, tc.wire) {
				t.Fatalf("wire = %v, want %v", w, tc.wire)
			}
			// Through real bytes, as on a stream.
			b, err := proto.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			var back structpb.Value
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if got := ValueFromWire(&back); !reflect.DeepEqual(got, tc.out) {
				t.Fatalf("round trip = %#v, want %#v", got, tc.out)
			}
		})
	}
}

func TestValueToWireErrors(t *testing.T) {
	self := map[string]any{}
	self["self"] = self
	tests := map[string]struct {
		in   any
		want string
	}{
		"func":          {func() {}, "cannot encode func()"},
		"chan in map":   {map[string]any{"c": make(chan int)}, "c: cannot encode chan int"},
		"self":          {self, "nested too deeply"},
		"bad number":    {json.Number("x"), `invalid json.Number "x"`},
		"func in list":  {[]any{1, func() {}}, "cannot encode func()"},
		"complex value": {complex(1, 2), "cannot encode complex128"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ValueToWire(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValueFromWireOddities(t *testing.T) {
	tests := map[string]struct {
		in   *structpb.Value
		want any
	}{
		"nil value":    {nil, nil},
		"no kind":      {&structpb.Value{}, nil},
		"nil list":     {&structpb.Value{Kind: &structpb.Value_ListValue{}}, []any{}},
		"nil struct":   {&structpb.Value{Kind: &structpb.Value_StructValue{}}, map[string]any{}},
		"beyond 2^53":  {structpb.NewNumberValue(1 << 54), float64(1 << 54)},
		"negative big": {structpb.NewNumberValue(-(1 << 54)), float64(-(1 << 54))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ValueFromWire(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestMapRoundTrip(t *testing.T) {
	in := map[string]any{"topic": "demo", "partition": int32(2), "offset": int64(41), "key": nil}
	w, err := MapToWire(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"topic": "demo", "partition": int64(2), "offset": int64(41), "key": nil}
	if got := MapFromWire(w); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	if w, err := MapToWire(map[string]any{}); w != nil || err != nil {
		t.Fatalf("empty map = %v, %v; want nil, nil", w, err)
	}
	if m := MapFromWire(nil); m != nil {
		t.Fatalf("MapFromWire(nil) = %v", m)
	}
	if _, err := MapToWire(map[string]any{"bad": func() {}}); err == nil || !strings.HasPrefix(err.Error(), "bad: ") {
		t.Fatalf("err = %v, want it to name the key", err)
	}
}

func TestUnmarshalJSON(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    any
		wantErr bool
	}{
		"int":            {`500`, int64(500), false},
		"big int":        {`9007199254740993`, int64(9007199254740993), false},
		"float":          {`0.5`, 0.5, false},
		"exponent":       {`1e3`, int64(1000), false},
		"beyond int64":   {`1e30`, 1e30, false},
		"nested":         {`{"a":[1,2.5,"x"]}`, map[string]any{"a": []any{int64(1), 2.5, "x"}}, false},
		"null":           {`null`, nil, false},
		"invalid":        {`{`, nil, true},
		"trailing data":  {`1 2`, nil, true},
		"trailing brace": {`1}`, nil, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got any
			err := UnmarshalJSON([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}
