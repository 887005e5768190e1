package server

import (
	"reflect"
	"testing"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

func TestParseAccept(t *testing.T) {
	tests := map[string]struct {
		in   []string
		want []mediaRange
	}{
		"empty": {nil, nil},
		"one":   {[]string{"text/event-stream"}, []mediaRange{{"text", "event-stream", 1}}},
		"list with q and params": {
			[]string{"text/html;level=1, application/json; q=0.5 ,*/*;q=0"},
			[]mediaRange{{"text", "html", 1}, {"application", "json", 0.5}, {"*", "*", 0}},
		},
		"several header values": {
			[]string{"text/plain", "application/xml;q=0.9"},
			[]mediaRange{{"text", "plain", 1}, {"application", "xml", 0.9}},
		},
		"case folded": {[]string{"Text/Event-Stream;Q=0.3"}, []mediaRange{{"text", "event-stream", 0.3}}},
		"garbage skipped, malformed q is 1": {
			[]string{"nonsense, /x, y/, text/plain;q=abc, application/json;q=7"},
			[]mediaRange{{"text", "plain", 1}, {"application", "json", 1}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := parseAccept(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseAccept(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestAcceptIncludes(t *testing.T) {
	tests := map[string]struct {
		accept []string
		mt     string
		want   bool
	}{
		"exact":                {[]string{"text/event-stream"}, "text/event-stream", true},
		"in a list":            {[]string{"application/json, text/event-stream;q=0.8"}, "text/event-stream", true},
		"second header value":  {[]string{"application/json", "text/event-stream"}, "text/event-stream", true},
		"q zero refuses":       {[]string{"text/event-stream;q=0"}, "text/event-stream", false},
		"wildcard is not SSE":  {[]string{"*/*"}, "text/event-stream", false},
		"type wildcard is not": {[]string{"text/*"}, "text/event-stream", false},
		"case insensitive":     {[]string{"TEXT/Event-Stream"}, "text/event-stream", true},
		"none":                 {nil, "text/event-stream", false},
		"other type":           {[]string{"text/plain"}, "text/event-stream", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := acceptIncludes(tc.accept, tc.mt); got != tc.want {
				t.Fatalf("acceptIncludes(%q, %q) = %v, want %v", tc.accept, tc.mt, got, tc.want)
			}
		})
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	tests := map[string]struct {
		method      string
		conn, upgr  []string
		wantUpgrade bool
	}{
		"upgrade":                  {"GET", []string{"Upgrade"}, []string{"websocket"}, true},
		"token list and case":      {"GET", []string{"keep-alive, UPGRADE"}, []string{"WebSocket"}, true},
		"post is not":              {"POST", []string{"Upgrade"}, []string{"websocket"}, false},
		"no connection token":      {"GET", []string{"keep-alive"}, []string{"websocket"}, false},
		"other protocol":           {"GET", []string{"Upgrade"}, []string{"h2c"}, false},
		"missing upgrade header":   {"GET", []string{"Upgrade"}, nil, false},
		"second connection header": {"GET", []string{"keep-alive", "Upgrade"}, []string{"websocket"}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := isWebSocketUpgrade(tc.method, tc.conn, tc.upgr); got != tc.wantUpgrade {
				t.Fatalf("isWebSocketUpgrade = %v, want %v", got, tc.wantUpgrade)
			}
		})
	}
}

func TestSelectEntrypoint(t *testing.T) {
	// The reference's entrypoints: http-get 1, http-post 1, sse 2, websocket 4.
	get := &EntrypointInstance{Type: "http-get", Match: &pluginv1.Match{Methods: []string{"GET"}, CriteriaCount: 1}}
	post := &EntrypointInstance{Type: "http-post", Match: &pluginv1.Match{Methods: []string{"POST"}, CriteriaCount: 1}}
	sse := &EntrypointInstance{Type: "sse", Match: &pluginv1.Match{Methods: []string{"GET"}, Accept: "text/event-stream", CriteriaCount: 2}}
	ws := &EntrypointInstance{Type: "websocket", Match: &pluginv1.Match{Websocket: true, CriteriaCount: 4}}
	webhook := &EntrypointInstance{Type: "webhook"}
	anyMethod := &EntrypointInstance{Type: "any", Match: &pluginv1.Match{CriteriaCount: 0}}
	all := []*EntrypointInstance{webhook, get, post, sse, ws}

	tests := map[string]struct {
		eps  []*EntrypointInstance
		in   matchInput
		want string
	}{
		"plain get":                {all, matchInput{method: "GET"}, "http-get"},
		"get with json":            {all, matchInput{method: "GET", accept: []string{"application/json"}}, "http-get"},
		"get with wildcard":        {all, matchInput{method: "GET", accept: []string{"*/*"}}, "http-get"},
		"sse beats get":            {all, matchInput{method: "GET", accept: []string{"text/event-stream"}}, "sse"},
		"sse refused with q=0":     {all, matchInput{method: "GET", accept: []string{"text/event-stream;q=0"}}, "http-get"},
		"websocket beats all":      {all, matchInput{method: "GET", accept: []string{"text/event-stream"}, websocket: true}, "websocket"},
		"post":                     {all, matchInput{method: "POST"}, "http-post"},
		"lower-case method":        {all, matchInput{method: "post"}, "http-post"},
		"put matches nothing":      {all, matchInput{method: "PUT"}, ""},
		"upgrade without ws falls": {[]*EntrypointInstance{get, post}, matchInput{method: "GET", websocket: true}, "http-get"},
		"no match is nil":          {[]*EntrypointInstance{webhook}, matchInput{method: "GET"}, ""},
		"empty methods match any":  {[]*EntrypointInstance{anyMethod}, matchInput{method: "DELETE"}, "any"},
		"tie keeps the first":      {[]*EntrypointInstance{get, {Type: "get2", Match: get.Match}}, matchInput{method: "GET"}, "http-get"},
		"nil entries are skipped":  {[]*EntrypointInstance{nil, post}, matchInput{method: "POST"}, "http-post"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ""
			if e := selectEntrypoint(tc.eps, tc.in); e != nil {
				got = e.Type
			}
			if got != tc.want {
				t.Fatalf("selectEntrypoint = %q, want %q", got, tc.want)
			}
		})
	}
}
