package javafmt

import (
	"errors"
	"math"
	"testing"
)

func TestString(t *testing.T) {
	tests := map[string]struct {
		v    any
		want string
	}{
		"nil":         {nil, "null"},
		"whole float": {float64(1700000000123), "1700000000123"},
		"fraction":    {1.5, "1.5"},
		"huge":        {1e21, "1e+21"},
		"uint8":       {uint8(7), "7"},
		"list":        {[]any{"a", float64(1), nil}, "[a, 1, null]"},
		"strings":     {[]string{"x", "y"}, "[x, y]"},
		"map":         {map[string]any{"b": "2", "a": float64(1), "sourceTimestamp": float64(3)}, "{sourceTimestamp=3, a=1, b=2}"},
		"bytes":       {[]byte("raw"), "raw"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := String(tc.v); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestJoined(t *testing.T) {
	tests := map[string]struct {
		v    any
		want string
	}{
		"nil":     {nil, ""},
		"list":    {[]any{"a", float64(1e21)}, "a,1000000000000000000000"},
		"map":     {map[string]any{"a": 1}, `{"a":1}`},
		"error":   {errors.New("boom"), "boom"},
		"inf":     {math.Inf(1), "+Inf"},
		"small":   {0.0000001, "0.0000001"},
		"pointer": {new(int), "0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Joined(tc.v); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDepthIsBounded(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	if s := String(m); len(s) == 0 {
		t.Fatal("empty")
	}
}
