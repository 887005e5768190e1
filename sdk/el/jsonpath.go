package el

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// pathStep is one step of a JSONPath: a field name, or an index when isIndex.
type pathStep struct {
	field   string
	index   int
	isIndex bool
}

// parsePath parses the JSONPath subset the reference's fixtures use: "$",
// ".field", "['field']" or "[\"field\"]", and "[index]" (negative counts from
// the end). Wildcards, filters and recursive descent are refused rather than
// half-supported.
func parsePath(p string) ([]pathStep, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("jsonPath %q: must start with '$'", p)
	}
	var steps []pathStep
	i := 1
	for i < len(p) {
		switch p[i] {
		case '.':
			i++
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			name := p[i:j]
			if name == "" || name == "*" {
				return nil, fmt.Errorf("jsonPath %q: unsupported or empty field at offset %d", p, i)
			}
			steps = append(steps, pathStep{field: name})
			i = j
		case '[':
			i++
			if i < len(p) && (p[i] == '\'' || p[i] == '"') {
				q := p[i]
				var b strings.Builder
				j := i + 1
				for ; j < len(p) && p[j] != q; j++ {
					if p[j] == '\\' && j+1 < len(p) {
						j++
					}
					b.WriteByte(p[j])
				}
				if j+1 >= len(p) || p[j+1] != ']' {
					return nil, fmt.Errorf("jsonPath %q: unterminated bracket at offset %d", p, i-1)
				}
				steps = append(steps, pathStep{field: b.String()})
				i = j + 2
				continue
			}
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("jsonPath %q: unterminated bracket at offset %d", p, i-1)
			}
			n, err := strconv.Atoi(strings.TrimSpace(p[i : i+j]))
			if err != nil {
				return nil, fmt.Errorf("jsonPath %q: unsupported index %q", p, p[i:i+j])
			}
			steps = append(steps, pathStep{index: n, isIndex: true})
			i += j + 1
		default:
			return nil, fmt.Errorf("jsonPath %q: unexpected %q at offset %d", p, p[i], i)
		}
	}
	return steps, nil
}

// evalJSONPath reads path from content, which is JSON text (string or bytes)
// or an already decoded value. A path that leads nowhere gives nil, like a
// missing map key elsewhere in the language; content that is not JSON is an
// error, because the caller most likely read the wrong thing.
func evalJSONPath(content any, path string) (any, error) {
	steps, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	var doc any
	switch c := content.(type) {
	case string:
		doc, err = decodeJSON(c)
	case []byte:
		doc, err = decodeJSON(string(c))
	case nil:
		return nil, errors.New("jsonPath: content is null")
	default:
		doc = c
	}
	if err != nil {
		return nil, err
	}
	cur := doc
	for _, s := range steps {
		cur = step(cur, s)
		if cur == nil {
			return nil, nil
		}
	}
	return normalize(cur), nil
}

func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("jsonPath: content is not JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("jsonPath: content is not JSON: trailing data")
	}
	return v, nil
}

func step(cur any, s pathStep) any {
	if s.isIndex {
		switch l := cur.(type) {
		case []any:
			i := s.index
			if i < 0 {
				i += len(l)
			}
			if i < 0 || i >= len(l) {
				return nil
			}
			return l[i]
		case []string:
			i := s.index
			if i < 0 {
				i += len(l)
			}
			if i < 0 || i >= len(l) {
				return nil
			}
			return l[i]
		}
		return nil
	}
	switch m := cur.(type) {
	case map[string]any:
		return m[s.field]
	case map[string]string:
		if v, ok := m[s.field]; ok {
			return v
		}
	}
	return nil
}

// normalize turns json.Number into int when integral and in range, float64
// otherwise, so results compare and format like numbers written in EL.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}
