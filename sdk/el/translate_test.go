package el

import "testing"

func TestTranslate(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"hash roots":        {in: "#request.id == #api.id", want: "request.id == api.id"},
		"null":              {in: "#x != null", want: "x != nil"},
		"word ops":          {in: "a eq b and c ne d or e lt f", want: "a == b and c != d or e < f"},
		"word after dot":    {in: "m.eq.null.and", want: "m.eq.null.and"},
		"strings untouched": {in: `'#a null eq' + "x"`, want: `"#a null eq" + "x"`},
		"doubled quotes":    {in: `'it''s' + "a""b"`, want: `"it's" + "a\"b"`},
		"backslash":         {in: `'\d'`, want: `"\\d"`},
		"elvis":             {in: "a ?: b", want: "a ?? b"},
		"safe nav":          {in: "a?.b", want: "a?.b"},
		"ternary":           {in: "a ? null : b", want: "a ? nil : b"},
		"list":              {in: "{1, {2}}", want: "[1, [2]]"},
		"map":               {in: "{a: {1}, 'b': c ? d : e}", want: "{a: [1], \"b\": c ? d : e}"},
		"empty map":         {in: "{ : }", want: "{  }"},
		"number suffixes":   {in: "1L + 2.5f + 3d + 0x1FL + 4e3", want: "1 + 2.5 + 3.0 + 0x1F + 4e3"},
		"predicate hash":    {in: "filter(l, # > 1)", want: "filter(l, # > 1)"},
		"glued word op":     {in: "(a)eq(b)", want: "(a) == (b)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := translate(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.code != tc.want {
				t.Fatalf("translate(%q) = %q, want %q", tc.in, got.code, tc.want)
			}
			if n := len([]rune(got.code)); len(got.pos) != n {
				t.Fatalf("position map has %d entries for %d runes", len(got.pos), n)
			}
		})
	}
}
