package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/metrics"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/reply"
)

// authenticate runs the API's plans on the request, in the core, before any
// plugin is called. On success the credentials the plan names are removed
// from the request, so no plugin (nor a Kafka record made of the request's
// headers) ever sees an API key.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, api *API) (plan.Result, *plan.Denial) {
	r := &plan.Request{
		Header: func(name string) string { return string(ctx.Request.Header.Peek(name)) },
		Query:  func(name string) string { return string(ctx.QueryArgs().Peek(name)) },
	}
	if cs := ctx.TLSConnectionState(); cs != nil {
		r.PeerCertificates = cs.PeerCertificates
	}
	res, denied := api.Plans.Authenticate(s.base, r)
	if denied != nil {
		return res, denied
	}
	for _, h := range res.StripHeaders {
		ctx.Request.Header.Del(h)
	}
	for _, q := range res.StripQuery {
		ctx.QueryArgs().Del(q)
	}
	return res, nil
}

// refuse answers a request the plans refused. The log says which plan
// refused and why, never the credential.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, api *API, d *plan.Denial) {
	s.log.Info("request refused", "api", api.Name, "plan", d.Plan, "status", d.Status, "reason", d.Reason, "remote", plan.RemoteHost(ctx.RemoteAddr()))
	reply.Failure(ctx, reply.Accept(ctx), d.Status, d.Message)
	s.metrics.Request(api.Name, "", d.Status)
	s.metrics.Refuse(api.Name, metrics.RefusedPlan)
}

// requestConfig gives each request its API's body limit, once the headers
// are read and before the body is: a body over the limit is never read.
func (s *Server) requestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	uri := h.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	api, _, _ := s.dep.Load().router.match(string(uri))
	if api == nil || api.MaxRequestBodySize <= 0 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: api.MaxRequestBodySize}
}

// readError answers a request fasthttp could not read, in the gateway's
// failure format instead of fasthttp's plain-text "Error when parsing
// request". When the headers were not read (too large), the Accept header
// is unknown and the answer is JSON, which API clients expect.
func (s *Server) readError(ctx *fasthttp.RequestCtx, err error) {
	status := http.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &small):
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &nerr) && nerr.Timeout():
		status = http.StatusRequestTimeout
	}
	accept := reply.Accept(ctx)
	if status == http.StatusRequestHeaderFieldsTooLarge || len(accept) == 0 {
		accept = []string{"application/json"}
	}
	reply.Failure(ctx, accept, status, http.StatusText(status))
	s.metrics.Request("", "", status)
	switch status {
	case http.StatusRequestEntityTooLarge:
		s.metrics.Refuse("", metrics.RefusedBodyTooLarge)
	case http.StatusRequestHeaderFieldsTooLarge:
		s.metrics.Refuse("", metrics.RefusedHeadersTooLarge)
	}
	// fasthttp closes the connection after this answer, with the rest of
	// the request unread.
	lingerOnClose(ctx.Conn())
}

// listener wraps the public listener with the connection limits and, when
// configured, TLS. The limits count TCP connections, below TLS, so a client
// cannot hold slots with unfinished handshakes beyond its share.
func (s *Server) listener(ln net.Listener) net.Listener {
	ll := newLimitListener(ln, s.opts.MaxConnections, s.opts.MaxConnectionsPerIP, s.opts.TLS == nil, s.log)
	ll.metrics = s.metrics
	ln = ll
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	return ln
}

// redactArgs cuts fasthttp's error texts at their first quote: parse errors
// quote a snippet of the raw request, which can hold an API key or a token.
func redactArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if err, ok := a.(error); ok {
			a = err.Error()
		}
		if s, ok := a.(string); ok {
			if j := strings.IndexByte(s, '"'); j >= 0 {
				a = s[:j] + "(request bytes redacted)"
			}
		}
		out[i] = a
	}
	return out
}
