package el

import (
	"reflect"
	"strings"
	"testing"
)

func TestJSONPath(t *testing.T) {
	doc := `{"a":{"b":"c","n":[1,2,{"x":"y"}],"f":1.5,"q'k":"quoted"},"t":true,"s":"\"quoted\""}`
	tests := map[string]struct {
		content any
		path    string
		want    any
		err     string
	}{
		"root":            {content: `"just"`, path: "$", want: "just"},
		"field":           {content: doc, path: "$.a.b", want: "c"},
		"bracket":         {content: doc, path: "$['a']['b']", want: "c"},
		"double bracket":  {content: doc, path: `$["a"]["b"]`, want: "c"},
		"escaped quote":   {content: doc, path: `$.a['q\'k']`, want: "quoted"},
		"index":           {content: doc, path: "$.a.n[1]", want: 2},
		"negative index":  {content: doc, path: "$.a.n[-1].x", want: "y"},
		"out of range":    {content: doc, path: "$.a.n[9]", want: nil},
		"float":           {content: doc, path: "$.a.f", want: 1.5},
		"bool":            {content: doc, path: "$.t", want: true},
		"string unquoted": {content: doc, path: "$.s", want: `"quoted"`},
		"missing":         {content: doc, path: "$.nope", want: nil},
		"field of array":  {content: doc, path: "$.a.n.x", want: nil},
		"index of object": {content: doc, path: "$.a[0]", want: nil},
		"bytes":           {content: []byte(doc), path: "$.a.b", want: "c"},
		"decoded value":   {content: map[string]any{"a": []any{"z"}}, path: "$.a[0]", want: "z"},
		"string list":     {content: []string{"p", "q"}, path: "$[1]", want: "q"},
		"not json":        {content: "{", path: "$.a", err: "not JSON"},
		"trailing data":   {content: `{} {}`, path: "$", err: "trailing data"},
		"empty content":   {content: "", path: "$.a", err: "not JSON"},
		"nil content":     {content: nil, path: "$.a", err: "null"},
		"no dollar":       {content: doc, path: "a.b", err: "must start with '$'"},
		"wildcard":        {content: doc, path: "$.a.*", err: "unsupported"},
		"descent":         {content: doc, path: "$..b", err: "unsupported"},
		"filter":          {content: doc, path: "$.a.n[?(@.x)]", err: "unsupported index"},
		"open bracket":    {content: doc, path: "$['a'", err: "unterminated"},
		"open index":      {content: doc, path: "$.a.n[1", err: "unterminated"},
		"junk":            {content: doc, path: "$a", err: "unexpected"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := evalJSONPath(tc.content, tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}
