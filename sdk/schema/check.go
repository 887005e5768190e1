package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one way a block's JSON values break its schema. Path names the
// attribute or block (list elements by index).
type Problem struct {
	// Path is the attribute path within the block.
	Path []string
	// Summary is one line, worded as the core words the same problem.
	Summary string
	// Detail says how to fix it.
	Detail string
}

// CheckJSON checks a block's values, as JSON with snake_case names, against
// s the way the core checks an HCL block before it calls a plugin: unknown
// attributes and blocks, missing required ones, value types, and enums
// (values holding EL are left to the plugin, which checks them per
// request). Absent and null mean the same, as the core sends null for an
// attribute the operator did not write. Plugins in other hosts and test
// harnesses use it to see the diagnostics an operator would.
func (s Schema) CheckJSON(data []byte) []Problem {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = []byte("{}")
	}
	var c checker
	c.object(nil, data, s)
	return c.problems
}

type checker struct{ problems []Problem }

func (c *checker) add(path []string, detail, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: slices.Clone(path), Summary: fmt.Sprintf(format, args...), Detail: detail})
}

func at(path []string, name string) []string { return append(slices.Clone(path), name) }

func isNull(v json.RawMessage) bool {
	return v == nil || bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

func (c *checker) object(path []string, data []byte, s Schema) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		c.add(path, "A block's values are a JSON object.", "Invalid block: %v", err)
		return
	}
	known := map[string]bool{}
	for _, a := range s.Attributes {
		known[a.Name] = true
		c.attribute(at(path, a.Name), a, fields[a.Name])
	}
	for _, b := range s.Blocks {
		known[b.Name] = true
		c.block(at(path, b.Name), b, fields[b.Name])
	}
	var unknown []string
	for k := range fields {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		c.add(at(path, k), "Allowed here: "+allowedNames(s)+".", "Unsupported argument or block %q", k)
	}
}

func allowedNames(s Schema) string {
	var names []string
	for _, a := range s.Attributes {
		names = append(names, a.Name)
	}
	for _, b := range s.Blocks {
		names = append(names, b.Name)
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

func (c *checker) attribute(path []string, a Attribute, v json.RawMessage) {
	if isNull(v) {
		if a.Required {
			c.add(path, fmt.Sprintf("The argument %q is required, but no definition was found.", a.Name), "Missing required argument")
		}
		return
	}
	var ok bool
	switch a.Type {
	case String:
		var s string
		if ok = json.Unmarshal(v, &s) == nil; ok && len(a.Enum) > 0 && !strings.Contains(s, "{#") && !slices.Contains(a.Enum, s) {
			c.add(path, "", "Invalid value for %q: %q; allowed values are %s", a.Name, s, quoteList(a.Enum))
		}
	case Number:
		var f float64
		ok = json.Unmarshal(v, &f) == nil
	case Bool:
		var b bool
		ok = json.Unmarshal(v, &b) == nil
	case ListOfString:
		var l []string
		ok = json.Unmarshal(v, &l) == nil
	case MapOfString:
		var m map[string]string
		ok = json.Unmarshal(v, &m) == nil
	case MapOfNumber:
		var m map[string]float64
		ok = json.Unmarshal(v, &m) == nil
	default:
		ok = true // a type this version does not know: the plugin decides
	}
	if !ok {
		c.add(path, fmt.Sprintf("%s is required, got %s.", typeName(a.Type), bytes.TrimSpace(v)), "Incorrect attribute value type")
	}
}

func (c *checker) block(path []string, b Block, v json.RawMessage) {
	if isNull(v) {
		if b.Required {
			c.add(path, fmt.Sprintf("At least one %q block is required.", b.Name), "Missing %s block", b.Name)
		}
		return
	}
	if b.Nesting != List {
		c.object(path, v, b.Schema)
		return
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		c.add(path, "Repeated blocks are a JSON array of objects.", "Invalid %s blocks: %v", b.Name, err)
		return
	}
	for i, e := range elems {
		c.object(at(path, strconv.Itoa(i)), e, b.Schema)
	}
}

func typeName(t Type) string {
	switch t {
	case String:
		return "a string"
	case Number:
		return "a number"
	case Bool:
		return "a bool"
	case ListOfString:
		return "a list of strings"
	case MapOfString:
		return "a map of strings"
	case MapOfNumber:
		return "a map of numbers"
	}
	return "a value of type " + strconv.Itoa(int(t))
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
