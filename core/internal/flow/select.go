package flow

import (
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Path operators of a flow's path selector.
const (
	// OperatorStartsWith matches a request whose path begins with the
	// flow's path, on segment boundaries. It is the default.
	OperatorStartsWith = "starts-with"
	// OperatorEquals matches a request whose path is the flow's path.
	OperatorEquals = "equals"
)

// Operators lists the path operators, for diagnostics.
var Operators = []string{OperatorStartsWith, OperatorEquals}

// Methods lists the HTTP methods a flow's methods selector may name.
var Methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"}

// Path is a compiled path selector: literal segments and ":name" segments,
// relative to the API's context path.
type Path struct {
	src      string
	segments []pathSegment
	equals   bool
}

type pathSegment struct {
	// literal is the segment's text; param is set instead for ":name".
	literal string
	param   string
}

// CompilePath compiles a flow's path and operator ("" is starts-with). The
// error says how to fix the path; it never depends on a request.
func CompilePath(path, operator string) (*Path, error) {
	p := &Path{src: path}
	switch operator {
	case "", OperatorStartsWith:
	case OperatorEquals:
		p.equals = true
	default:
		return nil, fmt.Errorf("unknown path operator %q; use %q or %q", operator, OperatorStartsWith, OperatorEquals)
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("a flow path starts with \"/\" and is relative to the context path, e.g. %q", "/"+strings.TrimLeft(path, "/"))
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("a flow path holds no query (?) or fragment (#)")
	}
	seen := map[string]bool{}
	for _, s := range splitPath(path) {
		if s == "" {
			return nil, fmt.Errorf("a flow path has no empty segments (\"//\")")
		}
		if !strings.HasPrefix(s, ":") {
			if strings.ContainsAny(s, " \t*") {
				return nil, fmt.Errorf("segment %q: a flow path holds literal segments and \":name\" parameters only (no spaces or wildcards)", s)
			}
			p.segments = append(p.segments, pathSegment{literal: s})
			continue
		}
		name := s[1:]
		if name == "" || !validParamName(name) {
			return nil, fmt.Errorf("segment %q: a path parameter is \":\" and a name of letters, digits, '_' or '-', e.g. \":topic\"", s)
		}
		if seen[name] {
			return nil, fmt.Errorf("path parameter %q appears twice; give each parameter its own name", name)
		}
		seen[name] = true
		p.segments = append(p.segments, pathSegment{param: name})
	}
	return p, nil
}

func validParamName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// splitPath cuts a path into its segments. The leading slash and one
// trailing slash are ignored, so "/", "" and "/a/" have 0, 0 and 1 segments.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// String returns the path as written.
func (p *Path) String() string { return p.src }

// Params returns the names of the path's parameters, in order.
func (p *Path) Params() []string {
	var out []string
	for _, s := range p.segments {
		if s.param != "" {
			out = append(out, s.param)
		}
	}
	return out
}

// Match reports whether pathInfo (the request path after the context path)
// matches, and calls bind for each parameter it captures, only when the
// whole path matched. A parameter matches one whole, non-empty segment.
func (p *Path) Match(pathInfo string, bind func(name, value string)) bool {
	rest := strings.TrimPrefix(pathInfo, "/")
	var captured [8]string
	values := captured[:0]
	for _, s := range p.segments {
		if rest == "" {
			return false
		}
		seg := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		if s.param != "" {
			if seg == "" {
				return false
			}
			values = append(values, seg)
			continue
		}
		if seg != s.literal {
			return false
		}
	}
	// A trailing slash is no extra segment: "/a/" equals "/a".
	if p.equals && rest != "" {
		return false
	}
	if bind != nil {
		i := 0
		for _, s := range p.segments {
			if s.param != "" {
				bind(s.param, values[i])
				i++
			}
		}
	}
	return true
}

// Selector decides whether a flow runs for a request. Every selector that is
// set must match; a flow without any always runs.
type Selector struct {
	// Path matches the path after the context path. Optional. Default: any
	// path.
	Path *Path
	// Methods are the HTTP methods the flow runs for, upper case. Optional.
	// Default: any method.
	Methods []string
	// Condition is an EL template evaluated once per request, with the
	// flow's path parameters bound; the flow runs when it is true.
	// Optional. Default: always.
	Condition *el.Template
}

// Flow is one compiled flow: its selector and its steps per phase, in file
// order. Steps whose enabled meta-argument is false are left out when the
// flow is built.
type Flow struct {
	// Name is the flow block's label, for logs.
	Name string
	Selector
	// Request runs once per request, before the entrypoint is connected.
	Request []*PolicyInstance
	// Response runs once per request, after the endpoint connected and
	// before the response headers are written.
	Response []*PolicyInstance
	// Publish runs on every batch a client publishes.
	Publish []*PolicyInstance
	// Subscribe runs on every batch delivered to a client.
	Subscribe []*PolicyInstance
}

// Flows are an API's flows in file order, the order they run in.
type Flows = []*Flow

// Selection is what the flows selected for one request run: the steps of
// every selected flow, per phase, in file order, and the path parameters
// their paths captured.
type Selection struct {
	// Request, Response, Publish and Subscribe are the selected steps per
	// phase.
	Request, Response, Publish, Subscribe []*PolicyInstance
	// PathParams maps each captured ":name" to its segment; nil when no
	// selected flow's path has parameters. When two selected flows capture
	// the same name, the first in file order wins.
	PathParams map[string]string
}

// Select chooses the flows that run for the request of c: a flow runs when
// its path, its methods and its condition all match. Conditions see the
// request (with the path parameters captured so far, including the flow's
// own), the context attributes and #api.id. A condition that fails to
// evaluate, or gives anything but true, does not select its flow: the error
// is logged, as the reference treats a failed condition as not met.
//
// Select does not change c; the caller puts PathParams on the request so
// policies and the endpoint see them. Flows without selectors cost no
// allocation.
func Select(flows Flows, c *pluginv1.Context) *Selection {
	sel := &Selection{}
	if len(flows) == 0 {
		return sel
	}
	req := c.GetRequest()
	var v *view
	for _, f := range flows {
		if f == nil {
			continue
		}
		if len(f.Methods) > 0 && !containsMethod(f.Methods, req.GetMethod()) {
			continue
		}
		var own map[string]string
		if f.Path != nil {
			ok := f.Path.Match(req.GetPathInfo(), func(name, value string) {
				if own == nil {
					own = map[string]string{}
				}
				own[name] = value
			})
			if !ok {
				continue
			}
		}
		if f.Condition != nil {
			if v == nil {
				v = newView(c)
			}
			params := mergeParams(sel.PathParams, own)
			v.setPathParams(params)
			if !v.test(f.Condition, nil, "flow "+f.Name) {
				continue
			}
		}
		sel.PathParams = mergeParams(sel.PathParams, own)
		sel.Request = append(sel.Request, f.Request...)
		sel.Response = append(sel.Response, f.Response...)
		sel.Publish = append(sel.Publish, f.Publish...)
		sel.Subscribe = append(sel.Subscribe, f.Subscribe...)
	}
	return sel
}

// mergeParams returns base with the names of own it lacks added, copying
// base when it has to change it.
func mergeParams(base, own map[string]string) map[string]string {
	if len(own) == 0 {
		return base
	}
	if len(base) == 0 {
		return own
	}
	out := make(map[string]string, len(base)+len(own))
	for k, v := range own {
		out[k] = v
	}
	for k, v := range base {
		out[k] = v
	}
	return out
}

func containsMethod(list []string, m string) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}
