package server

import (
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/ascii"
	"github.com/sluice-gw/sluice/core/internal/plan"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// snapshot copies what the exchange needs out of the fasthttp request. The
// RequestCtx is recycled once the handler returns, and a streaming response
// or a WebSocket outlives the handler, so nothing may keep a reference into
// it: every string and byte slice here is a copy.
func snapshot(ctx *fasthttp.RequestCtx, contextPath, pathInfo string, id plan.Identity) *pluginv1.Request {
	req := &pluginv1.Request{
		Id:               id.RequestID,
		TransactionId:    id.TransactionID,
		ClientIdentifier: id.ClientID,
		Method:           string(ctx.Method()),
		Path:             string(ctx.Path()),
		ContextPath:      contextPath,
		PathInfo:         pathInfo,
		RemoteAddress:    id.RemoteAddress,
	}
	req.Headers = collect(ctx.Request.Header.All())
	req.Params = collect(ctx.QueryArgs().All())
	req.Websocket = isWebSocketUpgrade(req.Method, headerValues(req.Headers, "Connection"), headerValues(req.Headers, "Upgrade"))
	if !req.Websocket {
		if b := ctx.Request.Body(); len(b) > 0 {
			req.Body = append([]byte(nil), b...)
		}
	}
	return req
}

// notUTF8 returns a message naming the first part of req that is not valid
// UTF-8, or "". Plugins receive the path, header and query parameter names
// and values as protobuf strings, which must be UTF-8: the first plugin to
// decode such a request would fail it with a 500, so it is refused before
// any plugin call as the client's mistake. The body is bytes and may hold
// anything.
func notUTF8(req *pluginv1.Request) string {
	if !utf8.ValidString(req.GetPath()) {
		return "Invalid request: the path is not valid UTF-8"
	}
	for _, part := range []struct {
		what string
		list []*pluginv1.Header
	}{{"header", req.GetHeaders()}, {"query parameter", req.GetParams()}} {
		for _, h := range part.list {
			if !utf8.ValidString(h.GetName()) {
				return "Invalid request: a " + part.what + " name is not valid UTF-8"
			}
			for _, v := range h.GetValues() {
				if !utf8.ValidString(v) {
					return "Invalid request: " + part.what + " " + h.GetName() + " is not valid UTF-8"
				}
			}
		}
	}
	return ""
}

// collect groups name/value pairs by name, keeping the order names first
// appear in and the order of each name's values.
func collect(seq func(yield func(k, v []byte) bool)) []*pluginv1.Header {
	var out []*pluginv1.Header
	var idx map[string]int
	for k, v := range seq {
		name := string(k)
		if i, ok := idx[name]; ok {
			out[i].Values = append(out[i].Values, string(v))
			continue
		}
		if idx == nil {
			idx = map[string]int{}
		}
		idx[name] = len(out)
		out = append(out, &pluginv1.Header{Name: name, Values: []string{string(v)}})
	}
	return out
}

// headerValues returns the values of a header of the snapshot, ignoring case.
func headerValues(hs []*pluginv1.Header, name string) []string {
	var out []string
	for _, h := range hs {
		if ascii.EqualFold(h.GetName(), name) {
			out = append(out, h.GetValues()...)
		}
	}
	return out
}

// firstValue returns the header's value, or else the same-named query
// parameter's, or "" (the reference reads the client identifier and the
// transaction id from either).
func firstValue(ctx *fasthttp.RequestCtx, name string) string {
	if v := ctx.Request.Header.Peek(name); len(v) > 0 {
		return string(v)
	}
	if v := ctx.QueryArgs().Peek(name); len(v) > 0 {
		return string(v)
	}
	return ""
}
