package flow

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/el"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

func TestCompilePath(t *testing.T) {
	tests := map[string]struct {
		path, op string
		params   []string
		err      string
	}{
		"root":             {path: "/"},
		"literal":          {path: "/orders/eu"},
		"params":           {path: "/:topic/keys/:key", params: []string{"topic", "key"}},
		"trailing slash":   {path: "/a/", op: OperatorEquals},
		"equals":           {path: "/:topic", op: OperatorEquals, params: []string{"topic"}},
		"no leading slash": {path: "orders", err: `starts with "/"`},
		"empty segment":    {path: "/a//b", err: `no empty segments`},
		"empty param":      {path: "/a/:", err: `a path parameter is ":" and a name`},
		"bad param":        {path: "/:to.pic", err: `a path parameter is ":" and a name`},
		"duplicate param":  {path: "/:a/:a", err: `path parameter "a" appears twice`},
		"wildcard":         {path: "/a/*", err: `no spaces or wildcards`},
		"query":            {path: "/a?b=1", err: `no query`},
		"operator":         {path: "/a", op: "startsWith", err: `unknown path operator "startsWith"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := CompilePath(tc.path, tc.op)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Params(), tc.params) {
				t.Fatalf("params %v, want %v", p.Params(), tc.params)
			}
		})
	}
}

func TestPathMatch(t *testing.T) {
	tests := map[string]struct {
		path, op, info string
		match          bool
		params         map[string]string
	}{
		"root starts-with anything":  {path: "/", info: "/a/b", match: true},
		"root starts-with empty":     {path: "/", info: "", match: true},
		"root equals empty":          {path: "/", op: OperatorEquals, info: "", match: true},
		"root equals slash":          {path: "/", op: OperatorEquals, info: "/", match: true},
		"root equals longer":         {path: "/", op: OperatorEquals, info: "/a", match: false},
		"literal prefix":             {path: "/orders", info: "/orders/eu", match: true},
		"segment boundary":           {path: "/orders", info: "/ordersx", match: false},
		"literal equals":             {path: "/orders", op: OperatorEquals, info: "/orders", match: true},
		"literal equals trailing":    {path: "/orders", op: OperatorEquals, info: "/orders/", match: true},
		"literal equals longer":      {path: "/orders", op: OperatorEquals, info: "/orders/eu", match: false},
		"case sensitive":             {path: "/orders", info: "/Orders", match: false},
		"shorter request":            {path: "/a/b", info: "/a", match: false},
		"param":                      {path: "/:topic", info: "/t1", match: true, params: map[string]string{"topic": "t1"}},
		"param starts-with longer":   {path: "/:topic", info: "/t1/more", match: true, params: map[string]string{"topic": "t1"}},
		"param equals longer":        {path: "/:topic", op: OperatorEquals, info: "/t1/more", match: false},
		"param empty segment":        {path: "/:topic/x", info: "//x", match: false},
		"param missing":              {path: "/:topic", info: "/", match: false},
		"params and literals":        {path: "/t/:topic/k/:key", info: "/t/orders/k/42", match: true, params: map[string]string{"topic": "orders", "key": "42"}},
		"literal after param fails":  {path: "/t/:topic/k", info: "/t/orders/x", match: false},
		"no bind on failed match":    {path: "/:a/b", info: "/x/c", match: false},
		"encoded-looking is literal": {path: "/:p", info: "/a%2Fb", match: true, params: map[string]string{"p": "a%2Fb"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := CompilePath(tc.path, tc.op)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			ok := p.Match(tc.info, func(n, v string) {
				if got == nil {
					got = map[string]string{}
				}
				got[n] = v
			})
			if ok != tc.match || !reflect.DeepEqual(got, tc.params) {
				t.Fatalf("Match(%q) = %v %v, want %v %v", tc.info, ok, got, tc.match, tc.params)
			}
		})
	}
}

func mustPath(t *testing.T, path, op string) *Path {
	t.Helper()
	p, err := CompilePath(path, op)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// step is a policy instance identified by its instance id; selection never
// calls plugins.
func step(id string) *PolicyInstance { return &PolicyInstance{InstanceID: id} }

func ids(ps []*PolicyInstance) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.InstanceID)
	}
	return out
}

func request(method, pathInfo string, headers ...string) *pluginv1.Context {
	r := &pluginv1.Request{Method: method, PathInfo: pathInfo, Path: "/api" + pathInfo, ContextPath: "/api"}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, &pluginv1.Header{Name: headers[i], Values: []string{headers[i+1]}})
	}
	return &pluginv1.Context{ApiId: "api", Request: r}
}

func TestSelect(t *testing.T) {
	byTopic := &Flow{Name: "by-topic", Selector: Selector{Path: mustPath(t, "/:topic", "")},
		Request: []*PolicyInstance{step("topic-req")}, Response: []*PolicyInstance{step("topic-resp")}, Publish: []*PolicyInstance{step("topic-pub")}}
	always := &Flow{Name: "always", Request: []*PolicyInstance{step("always-req")}, Response: []*PolicyInstance{step("always-resp")},
		Subscribe: []*PolicyInstance{step("always-sub")}}
	posts := &Flow{Name: "posts", Selector: Selector{Methods: []string{"POST"}}, Publish: []*PolicyInstance{step("post-pub")}}
	tenant := &Flow{Name: "tenant", Selector: Selector{Condition: el.MustCompile("{#request.headers['X-Tenant'] != null}")},
		Request: []*PolicyInstance{step("tenant-req")}}
	vip := &Flow{Name: "vip", Selector: Selector{Condition: el.MustCompile("{#request.headers['X-Tenant'][0] == 'vip'}")},
		Request: []*PolicyInstance{step("vip-req")}}
	exact := &Flow{Name: "exact", Selector: Selector{Path: mustPath(t, "/orders", OperatorEquals), Methods: []string{"GET", "POST"}},
		Subscribe: []*PolicyInstance{step("exact-sub")}}
	ownParam := &Flow{Name: "own-param", Selector: Selector{Path: mustPath(t, "/:topic", ""), Condition: el.MustCompile("{#request.pathParams['topic'] == 'orders'}")},
		Request: []*PolicyInstance{step("orders-req")}}
	second := &Flow{Name: "second", Selector: Selector{Path: mustPath(t, "/:other/:topic", "")}, Request: []*PolicyInstance{step("second-req")}}
	badCond := &Flow{Name: "bad", Selector: Selector{Condition: el.MustCompile("{#request.headers['X-Missing'][0].length() > 1}")},
		Request: []*PolicyInstance{step("bad-req")}}
	textCond := &Flow{Name: "text", Selector: Selector{Condition: el.MustCompile("{#request.method}")}, Request: []*PolicyInstance{step("text-req")}}
	mixedTrue := &Flow{Name: "mixed", Selector: Selector{Condition: el.MustCompile("t{#'rue'}")}, Request: []*PolicyInstance{step("mixed-req")}}

	tests := map[string]struct {
		flows                       Flows
		ctx                         *pluginv1.Context
		request, publish, subscribe []string
		response                    []string
		params                      map[string]string
	}{
		"no flows": {ctx: request("GET", "/x")},
		"no selector always runs": {flows: Flows{always}, ctx: request("GET", ""),
			request: []string{"always-req"}, response: []string{"always-resp"}, subscribe: []string{"always-sub"}},
		"path param": {flows: Flows{byTopic, always}, ctx: request("POST", "/t1"),
			request: []string{"topic-req", "always-req"}, response: []string{"topic-resp", "always-resp"},
			publish: []string{"topic-pub"}, subscribe: []string{"always-sub"},
			params: map[string]string{"topic": "t1"}},
		"path does not match": {flows: Flows{byTopic, always}, ctx: request("POST", ""),
			request: []string{"always-req"}, response: []string{"always-resp"}, subscribe: []string{"always-sub"}},
		"file order kept": {flows: Flows{always, byTopic}, ctx: request("POST", "/t1"),
			request: []string{"always-req", "topic-req"}, response: []string{"always-resp", "topic-resp"},
			publish: []string{"topic-pub"}, subscribe: []string{"always-sub"},
			params: map[string]string{"topic": "t1"}},
		"method matches": {flows: Flows{posts}, ctx: request("POST", "/"), publish: []string{"post-pub"}},
		"method differs": {flows: Flows{posts}, ctx: request("GET", "/")},
		"method case":    {flows: Flows{posts}, ctx: request("post", "/")},
		"condition true": {flows: Flows{tenant, vip}, ctx: request("GET", "/", "x-tenant", "vip"),
			request: []string{"tenant-req", "vip-req"}},
		"condition switches": {flows: Flows{tenant, vip}, ctx: request("GET", "/", "X-Tenant", "acme"),
			request: []string{"tenant-req"}},
		"condition false": {flows: Flows{tenant}, ctx: request("GET", "/")},
		"equals and methods": {flows: Flows{exact}, ctx: request("GET", "/orders/"),
			subscribe: []string{"exact-sub"}},
		"equals longer path":  {flows: Flows{exact}, ctx: request("GET", "/orders/x")},
		"equals wrong method": {flows: Flows{exact}, ctx: request("DELETE", "/orders")},
		"condition sees own params": {flows: Flows{ownParam}, ctx: request("GET", "/orders"),
			request: []string{"orders-req"}, params: map[string]string{"topic": "orders"}},
		"condition own params false": {flows: Flows{ownParam}, ctx: request("GET", "/other")},
		"first flow wins a name": {flows: Flows{byTopic, second}, ctx: request("GET", "/a/b"),
			request: []string{"topic-req", "second-req"}, response: []string{"topic-resp"}, publish: []string{"topic-pub"},
			params: map[string]string{"topic": "a", "other": "a"}},
		"failed condition is false": {flows: Flows{badCond, always}, ctx: request("GET", "/"),
			request: []string{"always-req"}, response: []string{"always-resp"}, subscribe: []string{"always-sub"}},
		"non-boolean condition is false": {flows: Flows{textCond}, ctx: request("GET", "/")},
		"text true is true":              {flows: Flows{mixedTrue}, ctx: request("GET", "/"), request: []string{"mixed-req"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := tc.ctx.GetRequest().GetPathParams()
			sel := Select(tc.flows, tc.ctx)
			if got := ids(sel.Request); !reflect.DeepEqual(got, tc.request) {
				t.Errorf("request %v, want %v", got, tc.request)
			}
			if got := ids(sel.Response); !reflect.DeepEqual(got, tc.response) {
				t.Errorf("response %v, want %v", got, tc.response)
			}
			if got := ids(sel.Publish); !reflect.DeepEqual(got, tc.publish) {
				t.Errorf("publish %v, want %v", got, tc.publish)
			}
			if got := ids(sel.Subscribe); !reflect.DeepEqual(got, tc.subscribe) {
				t.Errorf("subscribe %v, want %v", got, tc.subscribe)
			}
			if !reflect.DeepEqual(sel.PathParams, tc.params) {
				t.Errorf("path params %v, want %v", sel.PathParams, tc.params)
			}
			if !reflect.DeepEqual(tc.ctx.GetRequest().GetPathParams(), before) {
				t.Errorf("Select changed the request's path params")
			}
		})
	}
}

func TestSelectWithoutSelectorsAllocatesNothing(t *testing.T) {
	flows := Flows{{Name: "a", Request: []*PolicyInstance{step("a")}}}
	c := request("GET", "/x")
	// The Selection itself and the one append are all there is.
	if n := testing.AllocsPerRun(100, func() { Select(flows, c) }); n > 2 {
		t.Fatalf("%v allocations per selection, want at most 2", n)
	}
}
