// Package server is the core's data-path listener: it accepts client
// connections within their limits, routes each request and dispatches it to
// an exchange of the relay (core/internal/relay), which carries its
// messages. For each request it:
//
//  1. routes by the longest context path (404 otherwise),
//  2. authenticates the client with the API's plans and identifies it
//     (docs/behaviour.md 2.3), then snapshots the request,
//  3. selects the entrypoint with the highest match count (404 otherwise),
//  4. runs request-phase policies (one unary call each; none costs nothing),
//  5. opens the request's exchange and hands it the socket: relay.Exchange
//     answers plain HTTP or WebSocket from there.
//
// It also opens the headless exchanges of push subscriptions (OpenHeadless),
// which go through the same steps without a socket, and writes the access
// log.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/metrics"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/relay"
	"github.com/sluice-gw/sluice/core/internal/reply"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Options tune the data path. Zero values take the documented defaults.
type Options struct {
	// Logger receives the data path's logs. Optional. Default: discard.
	Logger *slog.Logger
	// Metrics receive the data path's counters. Optional. Default: metrics
	// that are not registered anywhere.
	Metrics *metrics.Metrics
	// MaxRequestBodySize bounds a request body (HTTP POST publishes it as
	// one message) of an API that sets no limit of its own. Optional.
	// Default: 10 MiB.
	MaxRequestBodySize int
	// MaxHeaderBytes bounds a request's line and headers (431 beyond).
	// Optional. Default: 8 KiB.
	MaxHeaderBytes int
	// MaxConnections bounds the open connections. Optional. Default: 10000.
	MaxConnections int
	// MaxConnectionsPerIP bounds one client address's open connections.
	// Optional. Default: 1000.
	MaxConnectionsPerIP int
	// TLS serves HTTPS. Optional. Default: nil, plain HTTP.
	TLS *tls.Config
	// ReadTimeout bounds reading one request. Optional. Default: 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a whole (non-streaming) response; streams
	// are bounded per write by StreamWriteTimeout instead. Optional.
	// Default: 30s.
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection waiting for its next
	// request. Optional. Default: 120s.
	IdleTimeout time.Duration
	// StreamWriteTimeout bounds one write of a stream (an SSE chunk, a
	// WebSocket frame): a client that reads nothing for this long is treated
	// as gone. Optional. Default: 60s.
	StreamWriteTimeout time.Duration
	// PluginCallTimeout bounds each call to a plugin on a request's behalf:
	// the request-phase calls, and every publish batch and message-phase
	// batch (a 504 past it). Optional. Default: 30s.
	PluginCallTimeout time.Duration
	// StopGrace is how long an ended exchange lets its plugins finish (commit
	// what was acknowledged, return from Connect) before its streams are
	// cancelled. Optional. Default: 5s.
	StopGrace time.Duration
	// WebSocket tunes WebSocket connections.
	WebSocket WebSocketOptions
	// AccessLog receives one record per request (accesslog.go) at info
	// level. Optional. Default: nil, no access log.
	AccessLog *slog.Logger
}

// WebSocketOptions tune WebSocket connections; see relay.WebSocketOptions.
// An alias, so the gateway configures the whole data path through Options.
type WebSocketOptions = relay.WebSocketOptions

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics, _ = metrics.New(nil)
	}
	if o.MaxRequestBodySize <= 0 {
		o.MaxRequestBodySize = 10 << 20
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 8 << 10
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 10000
	}
	if o.MaxConnectionsPerIP <= 0 {
		o.MaxConnectionsPerIP = 1000
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.PluginCallTimeout <= 0 {
		o.PluginCallTimeout = 30 * time.Second
	}
	// The relay takes the defaults of the options it reads alone.
}

// NewMetrics creates the data path's metrics and registers them with reg
// (nil keeps them unregistered). It is here, next to Options.Metrics that
// takes them, so the gateway and its tests build a data path from this
// package alone.
func NewMetrics(reg prometheus.Registerer) (*metrics.Metrics, error) {
	return metrics.New(reg)
}

// deployment is one immutable set of APIs; Deploy swaps it atomically.
type deployment struct {
	apis   []*API
	router *router
}

// Server is the data-path listener. Create it with New, give it APIs with
// Deploy, then Serve or ListenAndServe; Shutdown stops it.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	flows   *flow.Engine
	relay   *relay.Relay
	http    *fasthttp.Server

	dep      atomic.Pointer[deployment]
	deployed atomic.Bool

	// base bounds the calls made before an exchange opens (plans, the
	// request phase); Shutdown cancels it.
	base     context.Context
	stop     context.CancelFunc
	stopping atomic.Bool
}

// New returns a server with no API deployed: every request gets 404 until
// Deploy is called.
func New(opts Options) *Server {
	opts.defaults()
	flows := flow.NewEngine()
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: opts.Metrics,
		flows:   flows,
		relay: relay.New(relay.Options{
			Logger:             opts.Logger,
			Metrics:            opts.Metrics,
			Flows:              flows,
			StreamWriteTimeout: opts.StreamWriteTimeout,
			PluginCallTimeout:  opts.PluginCallTimeout,
			StopGrace:          opts.StopGrace,
			WebSocket:          opts.WebSocket,
		}),
	}
	s.base, s.stop = context.WithCancel(context.Background())
	s.http = &fasthttp.Server{
		Handler:                       s.handle,
		Name:                          "sluice",
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		MaxRequestBodySize:            opts.MaxRequestBodySize,
		ReadBufferSize:                opts.MaxHeaderBytes,
		ReadTimeout:                   opts.ReadTimeout,
		WriteTimeout:                  opts.WriteTimeout,
		IdleTimeout:                   opts.IdleTimeout,
		CloseOnShutdown:               true,
		TCPKeepalive:                  true,
		// Gives a connection's read buffer (MaxHeaderBytes) back to a
		// shared pool once the request is read, instead of holding it
		// while a response streams: 10,000 SSE streams held 80 MiB of
		// read buffers otherwise.
		ReduceMemoryUsage: true,
		Logger:            fasthttpLogger{opts.Logger},
	}
	s.http.HeaderReceived = s.requestConfig
	s.http.ErrorHandler = s.readError
	s.dep.Store(&deployment{router: newRouter(nil)})
	return s
}

// Deploy replaces the deployed APIs atomically: requests already running keep
// the deployment they started with, new requests see apis. Every instance in
// apis must already be configured in its plugin. An invalid deployment is
// rejected whole and the previous one stays.
func (s *Server) Deploy(apis []*API) error {
	if err := validate(apis); err != nil {
		return err
	}
	cp := append([]*API(nil), apis...)
	s.dep.Store(&deployment{apis: cp, router: newRouter(cp)})
	s.deployed.Store(true)
	s.log.Info("apis deployed", "count", len(cp))
	return nil
}

// Deployed reports whether Deploy has succeeded at least once.
func (s *Server) Deployed() bool {
	return s.deployed.Load()
}

// APIs returns the deployed APIs, in deployment order. The result must not
// be modified.
func (s *Server) APIs() []*API {
	return s.dep.Load().apis
}

// Serve serves the data path on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.startProfile()
	return s.http.Serve(s.listener(ln))
}

// ListenAndServe listens on the TCP address addr and serves the data path
// until Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Shutdown stops accepting connections and ends every exchange gracefully:
// subscriptions are closed (so endpoints commit what clients acknowledged)
// and the entrypoints of streams hear End with stopping set, so they tell
// their clients to reconnect (an SSE goaway event, a WebSocket 1013) and
// finish; what is still running after StopGrace, or when ctx ends, is
// cancelled (a WebSocket then closes with 1013 "Try Again Later"). New
// requests on kept-alive connections get 503 meanwhile.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopping.Swap(true) {
		return errors.New("server: Shutdown called twice")
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.ShutdownWithContext(ctx) }()
	err := s.relay.Shutdown(ctx)
	s.stop()
	if herr := <-httpDone; err == nil {
		err = herr
	}
	s.flows.Close()
	s.relay.Close()
	stopProfile()
	return err
}

// Handler returns the data path's request handler, for embedding the data
// path in another fasthttp server or for tests.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// handle is the fasthttp handler of every data-path request.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	// The access record is filled as the request is understood and ended
	// (access line, duration histogram) whichever way handle returns.
	rec := s.startAccess()
	defer s.finishAccess(ctx, rec)
	dep := s.dep.Load()
	api, contextPath, pathInfo := dep.router.match(string(ctx.Path()))
	if api == nil {
		reply.Failure(ctx, reply.Accept(ctx), http.StatusNotFound, msgNoContextPath)
		s.metrics.Request("", "", http.StatusNotFound)
		return
	}
	rec.api = api

	auth, denied := s.authenticate(ctx, api)
	id := plan.Identify(plan.RemoteHost(ctx.RemoteAddr()), auth.Subscription, plan.NewRequestID(), firstValue(ctx, plan.HeaderTransactionID), firstValue(ctx, plan.HeaderClientIdentifier)).WithPlan(auth)
	rec.id = id
	ctx.Response.Header.Set(plan.HeaderClientIdentifier, id.Provided)
	ctx.Response.Header.Set(plan.HeaderTransactionID, id.TransactionID)
	ctx.Response.Header.Set(plan.HeaderRequestID, id.RequestID)

	// A preflight is answered here: it never reaches an entrypoint or a
	// policy. Every other response of the API, failures included, carries
	// the CORS headers; set now, they survive writeWhole, startStream and
	// reply.Failure, which only replace headers they name.
	if api.CORS.Preflight(ctx) {
		s.metrics.Request(api.Name, "", ctx.Response.StatusCode())
		return
	}
	api.CORS.Decorate(ctx, ctx.Request.Header.Peek("Origin"))
	if denied != nil {
		s.refuse(ctx, api, denied)
		return
	}

	req := snapshot(ctx, contextPath, pathInfo, id)
	accept := headerValues(req.Headers, "Accept")
	if msg := notUTF8(req); msg != "" {
		reply.Failure(ctx, accept, http.StatusBadRequest, msg)
		s.metrics.Request(api.Name, "", http.StatusBadRequest)
		return
	}
	ep := selectEntrypoint(api.Entrypoints, matchInput{method: req.Method, accept: accept, websocket: req.Websocket})
	if ep == nil {
		reply.Failure(ctx, accept, http.StatusNotFound, msgNoEntrypoint)
		s.metrics.Request(api.Name, "", http.StatusNotFound)
		return
	}
	rec.ep = ep
	fail := func(f *pluginv1.Failure) {
		f = flow.Normalize(f)
		reply.Failure(ctx, accept, int(f.GetStatus()), f.GetMessage())
		s.metrics.Request(api.Name, ep.Type, int(f.GetStatus()))
	}

	pctx := &pluginv1.Context{ApiId: api.Name, Request: req, Attributes: id.Attributes(api.Name)}
	// The flows are chosen once per request; the path parameters they
	// capture are part of the request every policy and the endpoint see.
	sel := flow.Select(api.Flows, pctx)
	req.PathParams = sel.PathParams
	if len(sel.Request) > 0 {
		cctx, cancel := context.WithTimeout(s.base, s.opts.PluginCallTimeout)
		f := s.flows.OnRequest(cctx, sel.Request, pctx)
		cancel()
		if f != nil {
			fail(f)
			return
		}
	}

	x, f := s.relay.Open(relay.Request{
		API: api.Name, Entrypoint: ep, Endpoint: api.Endpoint, Targets: api.Targets,
		Context: pctx, Accept: accept, Flows: sel,
	})
	if f != nil {
		fail(f)
		return
	}
	rec.x = x
	if req.Websocket {
		x.ServeWebSocket(ctx)
		return
	}
	x.ServeHTTP(ctx)
}

// fasthttpLogger sends fasthttp's own messages to slog.
type fasthttpLogger struct{ log *slog.Logger }

// Printf logs one fasthttp message at debug level: they are about single
// connections (malformed requests, resets), not the gateway's health.
func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("http", "msg", fmt.Sprintf(format, redactArgs(args)...))
	}
}
