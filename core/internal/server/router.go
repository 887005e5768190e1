package server

import (
	"sort"
	"strings"
)

// router finds the API of a request path: the longest context path that is a
// prefix of the path on a segment boundary ("/demo" serves "/demo" and
// "/demo/x", never "/demox").
type router struct {
	routes []route
}

type route struct {
	prefix string
	api    *API
}

func newRouter(apis []*API) *router {
	r := &router{}
	for _, a := range apis {
		r.routes = append(r.routes, route{prefix: normalizeContextPath(a.ContextPath), api: a})
	}
	sort.SliceStable(r.routes, func(i, j int) bool { return len(r.routes[i].prefix) > len(r.routes[j].prefix) })
	return r
}

// match returns the API serving path, its normalized context path and the
// rest of the path after it, or a nil API.
func (r *router) match(path string) (api *API, contextPath, pathInfo string) {
	for _, rt := range r.routes {
		if rt.prefix == "/" {
			if strings.HasPrefix(path, "/") {
				return rt.api, rt.prefix, path
			}
			continue
		}
		if path == rt.prefix {
			return rt.api, rt.prefix, ""
		}
		if strings.HasPrefix(path, rt.prefix) && path[len(rt.prefix)] == '/' {
			return rt.api, rt.prefix, path[len(rt.prefix):]
		}
	}
	return nil, "", ""
}

// Failure messages of the gateway itself, as the reference spells them.
const (
	msgNoContextPath = "No context-path matches the request URI."
	msgNoEntrypoint  = "No entrypoint matches the incoming request"
)
