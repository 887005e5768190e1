package el

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Names of the helper functions the patcher calls; they are not meant to be
// written by hand, hence the unusual spelling. Each is a field of root.
const (
	fnHeader      = "__elHeader"
	fnHeaderFirst = "__elHeader0"
	fnHeaderHas   = "__elHeaderHas"
	fnList        = "__elList"
	fnListFirst   = "__elList0"
	fnListHas     = "__elListHas"
	fnString      = "__elString"
	fnStringHas   = "__elStringHas"
	fnAnchor      = "__elAnchor"
	fnMatches     = "__elMatches"
	fnConcat      = "__elConcat"
	fnMap         = "__elMap"
	fnJSON        = "jsonPath"
)

var mapType = reflect.TypeOf(map[string]any(nil))

// lookup names the functions that index one map-valued field.
type lookup struct {
	get, first, has string
	what            string // for error messages
}

// lookupFns names, for each map-valued field, the functions that index it.
// Headers must ignore case, and every lookup must give nil for a missing key
// (expr would otherwise give the zero value of the map's element type: an
// empty string for pathParams, which makes "!= null" tests always true).
var lookupFns = map[string]map[string]lookup{
	"request": {
		"headers":    {get: fnHeader, first: fnHeaderFirst, has: fnHeaderHas, what: "headers"},
		"params":     {get: fnList, first: fnListFirst, has: fnListHas, what: "params"},
		"pathParams": {get: fnString, has: fnStringHas, what: "pathParams"},
	},
	"message": {
		"headers": {get: fnHeader, first: fnHeaderFirst, has: fnHeaderHas, what: "headers"},
	},
}

// lookupByGet finds the lookup whose get function is name.
func lookupByGet(name string) (lookup, bool) {
	for _, fields := range lookupFns {
		for _, l := range fields {
			if l.get == name {
				return l, true
			}
		}
	}
	return lookup{}, false
}

// patcher rewrites the parsed expr tree into SpEL semantics and records what
// the expression reads. It runs once per compiled expression; expr has
// type-checked the tree before, so node types are known where the source
// gives them.
type patcher struct {
	use      usage
	roots    []*ast.IdentifierNode
	accessed map[*ast.IdentifierNode]bool
	err      *bodyErrorAt
}

// bodyErrorAt is a problem found while patching, located in expr's text.
type bodyErrorAt struct {
	from int
	msg  string
}

func (p *patcher) fail(n ast.Node, format string, args ...any) {
	if p.err == nil {
		p.err = &bodyErrorAt{from: n.Location().From, msg: fmt.Sprintf(format, args...)}
	}
}

func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case "request":
			p.use.request = true
		case "message":
			p.use.message = true
		case "$env":
			p.use.request, p.use.message = true, true
		default:
			return
		}
		p.roots = append(p.roots, n)
	case *ast.MemberNode:
		p.member(node, n)
	case *ast.BinaryNode:
		p.binary(node, n)
	case *ast.CallNode:
		if p.method(node, n) {
			return
		}
		p.call(n)
	}
}

func (p *patcher) member(node *ast.Node, n *ast.MemberNode) {
	if n.Method {
		return // a method call: see patcher.method
	}
	if id, ok := n.Node.(*ast.IdentifierNode); ok {
		if prop, ok := n.Property.(*ast.StringNode); ok && id.Value != "$env" {
			if p.accessed == nil {
				p.accessed = map[*ast.IdentifierNode]bool{}
			}
			p.accessed[id] = true
			switch id.Value + "." + prop.Value {
			case "request.content":
				p.use.reqContent = true
			case "message.content":
				p.use.msgContent = true
			case "message.attributeNames":
				p.use.msgNames = true
			}
		}
		return
	}
	// headers['X'][0], the reference's most common form, becomes one call
	// that returns the string itself: no list is boxed on the way.
	if c, ok := n.Node.(*ast.CallNode); ok && !n.Optional {
		if i, ok := n.Property.(*ast.IntegerNode); ok && i.Value == 0 {
			if l, ok := lookupByGet(calleeName(c)); ok && l.first != "" {
				ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: l.first}, Arguments: c.Arguments})
			}
		}
		return
	}
	// Attributes and metadata are map[string]any: a direct lookup returns
	// the stored interface, where expr's reflective one copies it to the
	// heap.
	if !n.Optional && n.Node.Type() == mapType && isStringNode(n.Property, n.Property.Type()) {
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnMap}, Arguments: []ast.Node{n.Node, n.Property}})
		return
	}
	base := n.Node
	if c, ok := base.(*ast.ChainNode); ok {
		base = c.Node // request?.headers['x'] wraps the inner access
	}
	inner, ok := base.(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := inner.Node.(*ast.IdentifierNode)
	if !ok {
		return
	}
	prop, ok := inner.Property.(*ast.StringNode)
	if !ok {
		return
	}
	l, ok := lookupFns[id.Value][prop.Value]
	if !ok {
		return
	}
	if k := n.Property.Type(); k.Kind() != reflect.String && k.Kind() != reflect.Interface {
		p.fail(n.Property, "cannot use %s to index %s", k, l.what)
		return
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: l.get},
		Arguments: []ast.Node{n.Node, n.Property},
	})
}

func calleeName(c *ast.CallNode) string {
	if id, ok := c.Callee.(*ast.IdentifierNode); ok {
		return id.Value
	}
	return ""
}

func (p *patcher) binary(node *ast.Node, n *ast.BinaryNode) {
	switch n.Operator {
	case "matches":
		p.matches(node, n)
	case "==", "!=":
		// headers['X'] != null asks whether the header exists; answering
		// that directly spares boxing the list only to compare it.
		call, other := n.Left, n.Right
		if _, ok := other.(*ast.NilNode); !ok {
			call, other = n.Right, n.Left
		}
		if _, ok := other.(*ast.NilNode); !ok {
			return
		}
		c, ok := call.(*ast.CallNode)
		if !ok {
			return
		}
		l, ok := lookupByGet(calleeName(c))
		if !ok {
			return
		}
		var has ast.Node = &ast.CallNode{Callee: &ast.IdentifierNode{Value: l.has}, Arguments: c.Arguments}
		if n.Operator == "==" {
			has = &ast.UnaryNode{Operator: "!", Node: has}
		}
		ast.Patch(node, has)
	case "+":
		// SpEL concatenates when either side is a string, writing the other
		// side as text ('n=' + 1 is "n=1"); expr refuses mixed operands.
		l, r := n.Left.Type(), n.Right.Type()
		ls, rs := isStringNode(n.Left, l), isStringNode(n.Right, r)
		if (ls && rs) || (!ls && !rs) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnConcat}, Arguments: []ast.Node{n.Left, n.Right}})
	}
}

func isStringNode(n ast.Node, t reflect.Type) bool {
	switch x := n.(type) {
	case *ast.NilNode:
		return false
	case *ast.CallNode:
		// Patched in this pass, so not type-checked yet ('a' + 1 + 2).
		if calleeName(x) == fnConcat {
			return true
		}
	}
	return t != nil && t.Kind() == reflect.String
}

// matches gives SpEL's whole-string semantics to expr's find-anywhere
// matches operator: Java's String.matches must match the entire input. A
// constant pattern stays expr's operator, which compiles it once; a
// computed one goes through a cache so it is not recompiled per message.
func (p *patcher) matches(node *ast.Node, n *ast.BinaryNode) {
	if s, ok := n.Right.(*ast.StringNode); ok {
		if _, err := regexp.Compile(s.Value); err != nil {
			return // let expr report the pattern as written
		}
		s.Value = anchor(s.Value)
		return
	}
	ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnMatches}, Arguments: []ast.Node{n.Left, n.Right}})
}

func anchor(re string) string { return `\A(?:` + re + `)\z` }

// call checks constant JSONPath arguments at compile time, so a bad path is
// reported with its position before the first request instead of per request.
func (p *patcher) call(n *ast.CallNode) {
	if calleeName(n) != fnJSON || len(n.Arguments) != 2 {
		return
	}
	s, ok := n.Arguments[1].(*ast.StringNode)
	if !ok {
		return
	}
	if _, err := parsePath(s.Value); err != nil {
		p.fail(s, "%s", err.Error())
	}
}

// finish reports whole-root uses: a root passed around as a value (let r =
// request; r.content) may have any field read, so every field is filled.
func (p *patcher) finish() usage {
	for _, id := range p.roots {
		if p.accessed[id] {
			continue
		}
		switch id.Value {
		case "request":
			p.use.reqContent = true
		case "message":
			p.use.msgContent, p.use.msgNames = true, true
		case "$env":
			p.use = usage{true, true, true, true, true}
		}
	}
	return p.use
}

// The lookups below return nil for a missing key, and panic (which expr
// turns into an error at the expression's position) on a key that is not a
// string, as a Java map of strings would throw.

func headerGet(m, k any) any {
	if v := headerValues(m, k); v != nil {
		return v
	}
	return nil
}

func headerFirst(m, k any) any {
	v := headerValues(m, k)
	if len(v) == 0 {
		panic(fmt.Sprintf("cannot fetch 0 from %s", lookupDesc(v)))
	}
	return v[0]
}

func headerHas(m, k any) bool { return headerValues(m, k) != nil }

func headerValues(m, k any) []string {
	h, _ := m.(gateway.Headers)
	return h.Values(keyString(k, "headers"))
}

func listGet(m, k any) any {
	if v, ok := listValues(m, k); ok {
		return v
	}
	return nil
}

func listFirst(m, k any) any {
	v, ok := listValues(m, k)
	if len(v) == 0 {
		if !ok {
			v = nil
		}
		panic(fmt.Sprintf("cannot fetch 0 from %s", lookupDesc(v)))
	}
	return v[0]
}

func listHas(m, k any) bool {
	_, ok := listValues(m, k)
	return ok
}

func listValues(m, k any) ([]string, bool) {
	l, _ := m.(map[string][]string)
	v, ok := l[keyString(k, "params")]
	return v, ok
}

func lookupDesc(v []string) string {
	if v == nil {
		return "null"
	}
	return "an empty list"
}

func mapGet(m, k any) any {
	a, _ := m.(map[string]any)
	return a[k.(string)]
}

func stringGet(m, k any) any {
	s, _ := m.(map[string]string)
	if v, ok := s[keyString(k, "pathParams")]; ok {
		return v
	}
	return nil
}

func stringHas(m, k any) bool {
	s, _ := m.(map[string]string)
	_, ok := s[keyString(k, "pathParams")]
	return ok
}

func keyString(k any, what string) string {
	s, ok := k.(string)
	if !ok {
		panic(fmt.Sprintf("cannot use %s to index %s", typeName(k), what))
	}
	return s
}

func anchorFn(pattern any) any {
	s, ok := pattern.(string)
	if !ok {
		panic(fmt.Sprintf("matches needs a string pattern, got %s", typeName(pattern)))
	}
	return anchor(s)
}

func jsonPathFn(content, path any) any {
	p, ok := path.(string)
	if !ok {
		panic(errors.New("jsonPath: path must be a string"))
	}
	v, err := evalJSONPath(content, p)
	if err != nil {
		panic(err)
	}
	return v
}

func typeName(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// friendlyTypes replaces the package's internal type names in expr's messages
// with the roots the operator wrote.
var friendlyTypes = strings.NewReplacer(
	"*el.requestView", "#request",
	"el.requestView", "#request",
	"*el.messageView", "#message",
	"el.messageView", "#message",
	"el.contextView", "#context",
	"*el.root", "the environment",
	"el.root", "the environment",
	"interface {}", "any",
)

func friendly(msg string) string {
	return strings.TrimSpace(friendlyTypes.Replace(msg))
}
