package el

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// root is the environment expr compiles against. A struct rather than a map
// lets expr resolve fields by index at compile time and reject misspelt
// fields (#request.headres) before any request arrives.
type root struct {
	Request *requestView   `expr:"request"`
	Context contextView    `expr:"context"`
	Message *messageView   `expr:"message"`
	API     map[string]any `expr:"api"`
}

type requestView struct {
	ID               string              `expr:"id"`
	TransactionID    string              `expr:"transactionId"`
	ClientIdentifier string              `expr:"clientIdentifier"`
	Method           string              `expr:"method"`
	Path             string              `expr:"path"`
	ContextPath      string              `expr:"contextPath"`
	PathInfo         string              `expr:"pathInfo"`
	Headers          gateway.Headers     `expr:"headers"`
	Params           map[string][]string `expr:"params"`
	PathParams       map[string]string   `expr:"pathParams"`
	RemoteAddress    string              `expr:"remoteAddress"`
	Content          string              `expr:"content"`
}

type contextView struct {
	Attributes map[string]any `expr:"attributes"`
}

type messageView struct {
	// ID is nil rather than "" when the QoS gives no ids, as in the reference,
	// so {#message.id != null} means what it says.
	ID             any             `expr:"id"`
	Content        string          `expr:"content"`
	ContentLength  int             `expr:"contentLength"`
	Headers        gateway.Headers `expr:"headers"`
	Metadata       map[string]any  `expr:"metadata"`
	Attributes     map[string]any  `expr:"attributes"`
	AttributeNames []string        `expr:"attributeNames"`
	Error          bool            `expr:"error"`
}

// frame holds the environment of one evaluation; the request view shares its
// allocation because nearly every template reads the request.
type frame struct {
	root root
	req  requestView
}

// usage records which roots and costly fields a template reads, so an
// evaluation builds only the views it needs, converts bodies to strings only
// when read and lists attribute names only when asked for.
type usage struct {
	request    bool
	message    bool
	reqContent bool
	msgContent bool
	msgNames   bool
}

func (u *usage) merge(o usage) {
	u.request = u.request || o.request
	u.message = u.message || o.message
	u.reqContent = u.reqContent || o.reqContent
	u.msgContent = u.msgContent || o.msgContent
	u.msgNames = u.msgNames || o.msgNames
}

func newFrame(env *Env, u usage) *frame {
	f := &frame{}
	f.root.Context.Attributes = env.Attributes
	f.root.API = env.API
	if r := env.Request; r != nil && u.request {
		f.req = requestView{
			ID:               r.ID,
			TransactionID:    r.TransactionID,
			ClientIdentifier: r.ClientIdentifier,
			Method:           r.Method,
			Path:             r.Path,
			ContextPath:      r.ContextPath,
			PathInfo:         r.PathInfo,
			Headers:          r.Headers,
			Params:           r.Params,
			PathParams:       r.PathParams,
			RemoteAddress:    r.RemoteAddress,
		}
		if u.reqContent {
			f.req.Content = string(r.Body)
		}
		f.root.Request = &f.req
	}
	if m := env.Message; m != nil && u.message {
		mv := &messageView{
			ContentLength: len(m.Content),
			Headers:       m.Headers,
			Metadata:      m.Metadata,
			Attributes:    m.Attributes,
			Error:         m.Error != nil,
		}
		if m.ID != "" {
			mv.ID = m.ID
		}
		if u.msgContent {
			mv.Content = string(m.Content)
		}
		if u.msgNames {
			names := make([]string, 0, len(m.Attributes))
			for k := range m.Attributes {
				names = append(names, k)
			}
			sort.Strings(names)
			mv.AttributeNames = names
		}
		f.root.Message = mv
	}
	return f
}

// Names of the helper functions the patcher calls; they are not meant to be
// written by hand, hence the unusual spelling.
const (
	fnHeader = "__elHeader"
	fnList   = "__elList"
	fnString = "__elString"
	fnAnchor = "__elAnchor"
	fnJSON   = "jsonPath"
)

// lookupFns names, for each map-valued field, the function that indexes it.
// Headers must ignore case, and every lookup must give nil for a missing key
// (expr would otherwise give the zero value of the map's element type: an
// empty string for pathParams, which makes "!= null" tests always true).
var lookupFns = map[string]map[string]string{
	"request": {"headers": fnHeader, "params": fnList, "pathParams": fnString},
	"message": {"headers": fnHeader},
}

// patcher rewrites the parsed expr tree into SpEL semantics and records what
// the expression reads. It runs once per compiled expression.
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
		if n.Operator == "matches" {
			p.matches(n)
		}
	case *ast.CallNode:
		p.call(n)
	}
}

func (p *patcher) member(node *ast.Node, n *ast.MemberNode) {
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
	fn := lookupFns[id.Value][prop.Value]
	if fn == "" {
		return
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: fn},
		Arguments: []ast.Node{n.Node, n.Property},
	})
}

// matches gives SpEL's whole-string semantics to expr's find-anywhere
// matches operator: Java's String.matches must match the entire input.
func (p *patcher) matches(n *ast.BinaryNode) {
	if s, ok := n.Right.(*ast.StringNode); ok {
		if _, err := regexp.Compile(s.Value); err != nil {
			return // let expr report the pattern as written
		}
		s.Value = anchor(s.Value)
		return
	}
	n.Right = &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnAnchor}, Arguments: []ast.Node{n.Right}}
}

func anchor(re string) string { return `\A(?:` + re + `)\z` }

// call checks constant JSONPath arguments at compile time, so a bad path is
// reported with its position before the first request instead of per request.
func (p *patcher) call(n *ast.CallNode) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || id.Value != fnJSON || len(n.Arguments) != 2 {
		return
	}
	s, ok := n.Arguments[1].(*ast.StringNode)
	if !ok {
		return
	}
	if _, err := parsePath(s.Value); err != nil && p.err == nil {
		p.err = &bodyErrorAt{from: s.Location().From, msg: err.Error()}
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

func headerLookup(args ...any) (any, error) {
	h, _ := args[0].(gateway.Headers)
	name, err := keyString(args[1])
	if err != nil {
		return nil, err
	}
	if v := h.Values(name); v != nil {
		return v, nil
	}
	return nil, nil
}

func listLookup(args ...any) (any, error) {
	m, _ := args[0].(map[string][]string)
	name, err := keyString(args[1])
	if err != nil {
		return nil, err
	}
	if v, ok := m[name]; ok {
		return v, nil
	}
	return nil, nil
}

func stringLookup(args ...any) (any, error) {
	m, _ := args[0].(map[string]string)
	name, err := keyString(args[1])
	if err != nil {
		return nil, err
	}
	if v, ok := m[name]; ok {
		return v, nil
	}
	return nil, nil
}

func keyString(k any) (string, error) {
	s, ok := k.(string)
	if !ok {
		return "", fmt.Errorf("map key must be a string, got %s", typeName(k))
	}
	return s, nil
}

func anchorFn(args ...any) (any, error) {
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("matches needs a string pattern, got %s", typeName(args[0]))
	}
	return anchor(s), nil
}

func jsonPathFn(args ...any) (any, error) {
	path, ok := args[1].(string)
	if !ok {
		return nil, errors.New("jsonPath: path must be a string")
	}
	return evalJSONPath(args[0], path)
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
	"call "+fnHeader, "index headers",
	"call "+fnList, "index params",
	"call "+fnString, "index pathParams",
	"call "+fnAnchor, "use matches",
)

func friendly(msg string) string {
	return strings.TrimSpace(friendlyTypes.Replace(msg))
}
