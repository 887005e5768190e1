package server

import (
	"strings"
	"testing"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// TestNotUTF8NamesThePart checks that every string a plugin receives is
// checked, and that a request with only a binary body passes.
func TestNotUTF8NamesThePart(t *testing.T) {
	h := func(name, value string) []*pluginv1.Header {
		return []*pluginv1.Header{{Name: "Ok", Values: []string{"v"}}, {Name: name, Values: []string{"a", value}}}
	}
	for _, tc := range []struct {
		req  *pluginv1.Request
		want string
	}{
		{&pluginv1.Request{Path: "/a", Headers: h("X", "v"), Body: []byte("\xff")}, ""},
		{&pluginv1.Request{Path: "/a\xff"}, "path"},
		{&pluginv1.Request{Path: "/a", Headers: h("X-Raw", "\xc3\x28")}, "header X-Raw"},
		{&pluginv1.Request{Path: "/a", Headers: h("X\xff", "v")}, "header name"},
		{&pluginv1.Request{Path: "/a", Params: h("q", "\xfe")}, "query parameter q"},
	} {
		got := notUTF8(tc.req)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q, want a message naming %q", tc.req, got, tc.want)
		}
	}
}
