package relay

import (
	"context"
	"maps"
	"net/http"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/ascii"
	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// responsePhase runs the response phase of the request's selected flows on
// r, the response the entrypoint asked for, just before its status and
// headers are written to ctx (whole answers, the start of a stream, the
// 202 of a POST). The steps see the status and every response header so
// far: the gateway's own already on ctx (X-Gravitee-*, CORS) and the
// entrypoint's, which win on the same name.
//
// It returns the response to write: r itself when no step was selected (no
// plugin hop, no allocation), otherwise a copy carrying the headers the
// steps left; gateway headers a step removed are deleted from ctx here,
// since applyHeaders only sets. When a step interrupts, its failure is
// answered instead, in the failure format, the exchange is ended as if the
// client went away, and nil is returned: the caller writes nothing more.
//
// Headless exchanges (webhooks) have no client response and no response
// phase.
func (x *Exchange) responsePhase(ctx *fasthttp.RequestCtx, r *pluginv1.Connect_Respond) *pluginv1.Connect_Respond {
	if x.flows == nil || len(x.flows.Response) == 0 {
		return r
	}
	status := r.GetStatus()
	if status == 0 {
		status = http.StatusOK
	}
	gateway := gatewayHeaders(ctx)
	resp := &flow.Response{Status: status, Headers: flow.ChangeHeaders(gateway, nil, r.GetHeaders())}
	// The exchange's context was encoded when the entrypoint opened and may
	// be read by its publish and subscribe phases meanwhile: the response
	// phase works on its own copy of the attributes, seen by its later steps.
	c := &pluginv1.Context{ApiId: x.pctx.GetApiId(), Request: x.pctx.GetRequest(), Attributes: maps.Clone(x.pctx.GetAttributes())}
	cctx, cancel := context.WithTimeout(x.ctx, x.r.opts.PluginCallTimeout)
	f := x.r.flows.OnResponse(cctx, x.flows.Response, c, resp)
	cancel()
	if f != nil {
		x.writeFailure(ctx, f)
		x.clientGone()
		x.detach()
		return nil
	}
	for _, g := range gateway {
		if !hasHeader(resp.Headers, g.GetName()) {
			ctx.Response.Header.Del(g.GetName())
		}
	}
	return &pluginv1.Connect_Respond{Status: r.GetStatus(), Headers: resp.Headers, Body: r.GetBody()}
}

// upgradeResponsePhase runs the response phase before a WebSocket upgrade,
// on a 101 with the gateway's headers, and sets the headers it leaves. It
// reports false when a step interrupted and its failure was answered
// instead of the upgrade.
func (x *Exchange) upgradeResponsePhase(ctx *fasthttp.RequestCtx) bool {
	if x.flows == nil || len(x.flows.Response) == 0 {
		return true
	}
	r := x.responsePhase(ctx, &pluginv1.Connect_Respond{Status: http.StatusSwitchingProtocols})
	if r == nil {
		return false
	}
	applyHeaders(ctx, r.GetHeaders())
	return true
}

// gatewayHeaders lists the response headers the core has set on ctx so far,
// in order, leaving out the framing and server headers fasthttp owns.
func gatewayHeaders(ctx *fasthttp.RequestCtx) []*pluginv1.Header {
	var out []*pluginv1.Header
	for k, v := range ctx.Response.Header.All() {
		name := string(k)
		if !isPlainHeader(name) || ascii.EqualFold(name, "Server") || ascii.EqualFold(name, "Date") {
			continue
		}
		if n := len(out); n > 0 && ascii.EqualFold(out[n-1].Name, name) {
			out[n-1].Values = append(out[n-1].Values, string(v))
			continue
		}
		out = append(out, &pluginv1.Header{Name: name, Values: []string{string(v)}})
	}
	return out
}

func hasHeader(hs []*pluginv1.Header, name string) bool {
	for _, h := range hs {
		if ascii.EqualFold(h.GetName(), name) {
			return true
		}
	}
	return false
}
