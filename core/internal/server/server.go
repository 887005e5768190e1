// Package server is the core's data path: the fasthttp listener, the router
// (context paths), the keyless plan and client identification, entrypoint
// selection, the request phase, and the exchange engine that connects a
// client socket to an entrypoint plugin and that entrypoint to the endpoint.
//
// The core owns every socket. For each request it:
//
//  1. routes by the longest context path (404 otherwise),
//  2. identifies the client (docs/behaviour.md 2.3) and snapshots the request,
//  3. selects the entrypoint with the highest match count (404 otherwise),
//  4. runs request-phase policies (one unary call each; none costs nothing),
//  5. opens the entrypoint's Connect stream and drives it: responses and
//     writes go to the socket (HTTP streaming or WebSocket frames), publish
//     batches go through publish-phase policies to the endpoint's shared
//     Publish stream, a subscription opens an endpoint Subscribe stream whose
//     batches pass subscribe-phase policies before the entrypoint frames them.
//
// Buffers are bounded everywhere, so a slow client slows down its own
// subscription (and, through gRPC flow control, the endpoint) instead of
// growing memory.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/reply"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/metrics"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
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

// WebSocketOptions tune WebSocket connections, which live outside fasthttp's
// own limits once upgraded.
type WebSocketOptions struct {
	// ReadLimit bounds one incoming message; a larger one closes the
	// connection with 1009. Optional. Default: 1 MiB.
	ReadLimit int64
	// PingInterval is how often the core pings the client. Optional.
	// Default: 30s.
	PingInterval time.Duration
	// PongWait is how long the core waits for any frame (a pong or data)
	// before it treats the client as gone. Optional. Default: 60s.
	PongWait time.Duration
	// CheckOrigin decides whether a cross-origin upgrade is allowed.
	// Optional. Default: allow every origin, because the gateway fronts
	// public APIs whose clients are browsers on other origins, as the
	// reference gateway does; set it to restrict browsers.
	CheckOrigin func(ctx *fasthttp.RequestCtx) bool
}

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
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = 60 * time.Second
	}
	if o.PluginCallTimeout <= 0 {
		o.PluginCallTimeout = 30 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.WebSocket.ReadLimit <= 0 {
		o.WebSocket.ReadLimit = 1 << 20
	}
	if o.WebSocket.PingInterval <= 0 {
		o.WebSocket.PingInterval = 30 * time.Second
	}
	if o.WebSocket.PongWait <= 0 {
		o.WebSocket.PongWait = 60 * time.Second
	}
	if o.WebSocket.CheckOrigin == nil {
		o.WebSocket.CheckOrigin = func(*fasthttp.RequestCtx) bool { return true }
	}
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

type publishMux = flow.Mux[*publishRequest, *pluginv1.Publish_Response]

// Server is the data-path listener. Create it with New, give it APIs with
// Deploy, then Serve or ListenAndServe; Shutdown stops it.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	flows   *flow.Engine
	http    *fasthttp.Server

	dep      atomic.Pointer[deployment]
	deployed atomic.Bool

	// base is the parent of every exchange; Shutdown cancels it.
	base     context.Context
	stop     context.CancelFunc
	stopping atomic.Bool
	inflight sync.WaitGroup

	exMu      sync.Mutex
	exchanges map[*exchange]struct{}

	pubMu sync.Mutex
	pubs  map[string]*publishMux
}

// New returns a server with no API deployed: every request gets 404 until
// Deploy is called.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: opts.Metrics,
		flows:   flow.NewEngine(),
		pubs:    map[string]*publishMux{},

		exchanges: map[*exchange]struct{}{},
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
		Logger:                        fasthttpLogger{opts.Logger},
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

	s.exMu.Lock()
	live := make([]*exchange, 0, len(s.exchanges))
	for x := range s.exchanges {
		live = append(live, x)
	}
	s.exMu.Unlock()
	for _, x := range live {
		x.serverStopping()
	}

	exchangesDone := make(chan struct{})
	go func() { s.inflight.Wait(); close(exchangesDone) }()
	var err error
	select {
	case <-exchangesDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.stop()
	if herr := <-httpDone; err == nil {
		err = herr
	}
	s.flows.Close()
	s.pubMu.Lock()
	pubs := s.pubs
	s.pubs = map[string]*publishMux{}
	s.pubMu.Unlock()
	for _, m := range pubs {
		m.Close()
	}
	stopProfile()
	return err
}

// publishMux returns the shared Publish stream of an endpoint plugin.
func (s *Server) publishMux(p PluginRef) *publishMux {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	m := s.pubs[p.Name()]
	if m == nil {
		m = flow.NewMux(p, flow.MuxSpec[*publishRequest, *pluginv1.Publish_Response]{
			Open: func(ctx context.Context, c *serve.Clients) (flow.Stream[*publishRequest, *pluginv1.Publish_Response], error) {
				st, err := c.Endpoint.Publish(ctx, withCodec)
				if err != nil {
					return nil, err
				}
				return publishStream{st}, nil
			},
			SetID: (*publishRequest).setID,
			ID:    func(r *pluginv1.Publish_Response) uint64 { return r.GetBatchId() },
		})
		s.pubs[p.Name()] = m
	}
	return m
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

	x, f := s.open(api, ep, pctx, accept, sel)
	if f != nil {
		fail(f)
		return
	}
	rec.exchangeOpened(x)
	if req.Websocket {
		s.serveWebSocket(ctx, x)
		return
	}
	s.serveHTTP(ctx, x)
}

// errShuttingDown is the failure of exchanges cut by Shutdown.
var errShuttingDown = &pluginv1.Failure{
	Status:       http.StatusServiceUnavailable,
	Key:          "FAILURE_GATEWAY_STOPPING",
	Message:      "The gateway is shutting down; retry on another instance",
	Retriable:    true,
	RequestLevel: true,
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
