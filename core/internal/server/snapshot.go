package server

import (
	"github.com/sluice-gw/sluice/core/internal/ascii"
	"github.com/sluice-gw/sluice/core/internal/plan"

	"github.com/valyala/fasthttp"

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
