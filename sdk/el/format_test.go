package el

import (
	"encoding/json"
	"math"
	"testing"
)

type stringer struct{}

func (stringer) String() string { return "stringer" }

func TestFormat(t *testing.T) {
	var nilPtr *int
	one := 1
	tests := map[string]struct {
		in   any
		want string
	}{
		"nil":            {in: nil, want: ""},
		"string":         {in: "s", want: "s"},
		"bytes":          {in: []byte("b"), want: "b"},
		"true":           {in: true, want: "true"},
		"int":            {in: -3, want: "-3"},
		"int64":          {in: int64(1) << 40, want: "1099511627776"},
		"uint8":          {in: uint8(7), want: "7"},
		"int32":          {in: int32(9), want: "9"},
		"integral float": {in: 1e20, want: "100000000000000000000"},
		"float":          {in: 0.25, want: "0.25"},
		"small float":    {in: 1e-7, want: "0.0000001"},
		"float32":        {in: float32(2), want: "2"},
		"inf":            {in: math.Inf(1), want: "+Inf"},
		"json number":    {in: json.Number("12"), want: "12"},
		"string list":    {in: []string{"a", "b"}, want: "a,b"},
		"any list":       {in: []any{"a", 1, nil, 2.5}, want: "a,1,,2.5"},
		"int list":       {in: []int{1, 2}, want: "1,2"},
		"map":            {in: map[string]any{"a": 1}, want: `{"a":1}`},
		"unmarshalable":  {in: map[string]any{"f": func() {}}, want: "map[string]interface {}"},
		"stringer":       {in: stringer{}, want: "stringer"},
		"nil pointer":    {in: nilPtr, want: ""},
		"pointer":        {in: &one, want: "1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := format(tc.in); got != tc.want {
				t.Fatalf("format(%#v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatCyclic(t *testing.T) {
	l := []any{nil}
	l[0] = l
	if got := format(l); got == "" {
		t.Fatal("cyclic list formatted to nothing")
	}
}
