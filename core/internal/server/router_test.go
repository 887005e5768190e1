package server

import "testing"

func TestRouterMatch(t *testing.T) {
	demo := &API{Name: "demo", ContextPath: "/demo"}
	nested := &API{Name: "nested", ContextPath: "/demo/v2/"}
	other := &API{Name: "other", ContextPath: "other"}
	root := &API{Name: "root", ContextPath: "/"}

	withRoot := newRouter([]*API{demo, nested, other, root})
	noRoot := newRouter([]*API{demo, nested, other})

	tests := map[string]struct {
		r        *router
		path     string
		api      string
		ctxPath  string
		pathInfo string
	}{
		"exact":                      {noRoot, "/demo", "demo", "/demo", ""},
		"trailing slash":             {noRoot, "/demo/", "demo", "/demo", "/"},
		"sub path":                   {noRoot, "/demo/x/y", "demo", "/demo", "/x/y"},
		"segment boundary":           {noRoot, "/demox", "", "", ""},
		"longest prefix wins":        {noRoot, "/demo/v2/items", "nested", "/demo/v2", "/items"},
		"longest prefix exact":       {noRoot, "/demo/v2", "nested", "/demo/v2", ""},
		"sibling of nested":          {noRoot, "/demo/v21", "demo", "/demo", "/v21"},
		"context path without slash": {noRoot, "/other/a", "other", "/other", "/a"},
		"no api":                     {noRoot, "/nothing", "", "", ""},
		"root catches the rest":      {withRoot, "/nothing", "root", "/", "/nothing"},
		"root loses to longer":       {withRoot, "/demo/a", "demo", "/demo", "/a"},
		"root itself":                {withRoot, "/", "root", "/", "/"},
		"empty router":               {newRouter(nil), "/demo", "", "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			api, cp, info := tc.r.match(tc.path)
			got := ""
			if api != nil {
				got = api.Name
			}
			if got != tc.api || cp != tc.ctxPath || info != tc.pathInfo {
				t.Fatalf("match(%q) = (%q, %q, %q), want (%q, %q, %q)", tc.path, got, cp, info, tc.api, tc.ctxPath, tc.pathInfo)
			}
		})
	}
}

func TestNormalizeContextPath(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":          {"/demo", "/demo"},
		"trailing":       {"/demo/", "/demo"},
		"many trailing":  {"/demo///", "/demo"},
		"no leading":     {"demo", "/demo"},
		"root":           {"/", "/"},
		"empty":          {"", "/"},
		"spaces trimmed": {" /demo ", "/demo"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := normalizeContextPath(tc.in); got != tc.want {
				t.Fatalf("normalizeContextPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
