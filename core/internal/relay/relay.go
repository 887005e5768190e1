// Package relay carries one client request's messages once the server has
// routed it: the exchange connects the client's socket to its entrypoint
// plugin and the entrypoint to the endpoint plugin, through the policies of
// the request's flows.
//
// For each exchange (Relay.Open) it:
//
//  1. opens the entrypoint's Connect stream, whose first frame carries the
//     request's context, encoded once (context_codec.go);
//  2. hands the entrypoint's socket actions (Respond, Write, Finish) to the
//     transport that owns the client: a whole or streaming HTTP response
//     (Exchange.ServeHTTP), WebSocket frames (Exchange.ServeWebSocket), or
//     no socket at all for a push subscription (Exchange.ServeHeadless);
//  3. sends publish batches through publish-phase policies to the endpoint's
//     shared Publish stream, then on a Publish call of the exchange's own;
//  4. opens the endpoint subscription the entrypoint asks for, whose batches
//     pass subscribe-phase policies before the entrypoint frames them, and
//     acknowledges what the transport has written.
//
// Batches no policy has to see are relayed as the bytes they came as
// (codec.go). Buffers are bounded everywhere, so a slow client slows down
// its own subscription (and, through gRPC flow control, the endpoint)
// instead of growing memory.
package relay

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/metrics"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Options tune the relay. Zero values take the documented defaults.
type Options struct {
	// Logger receives the relay's logs. Optional. Default: discard.
	Logger *slog.Logger
	// Metrics count the messages carried and the requests answered.
	// Optional. Default: metrics that are not registered anywhere.
	Metrics *metrics.Metrics
	// Flows runs the publish-, subscribe- and response-phase policies. The
	// caller owns it and closes it after Shutdown. Optional. Default: an
	// engine of the relay's own, which Close closes.
	Flows *flow.Engine
	// StreamWriteTimeout bounds one write of a stream (an SSE chunk, a
	// WebSocket frame): a client that reads nothing for this long is treated
	// as gone. Optional. Default: 60s.
	StreamWriteTimeout time.Duration
	// PluginCallTimeout bounds each call to a plugin on an exchange's
	// behalf: every publish batch and message-phase batch (a 504 past it).
	// Optional. Default: 30s.
	PluginCallTimeout time.Duration
	// StopGrace is how long an ended exchange lets its plugins finish (commit
	// what was acknowledged, return from Connect) before its streams are
	// cancelled. Optional. Default: 5s.
	StopGrace time.Duration
	// WebSocket tunes WebSocket connections.
	WebSocket WebSocketOptions
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

type publishMux = flow.Mux[*publishRequest, *pluginv1.Publish_Response]

// Relay holds what the exchanges of one data path share: the endpoints'
// shared Publish streams, and the live exchanges, which Shutdown ends.
// Create it with New.
type Relay struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	flows   *flow.Engine
	// ownFlows is set when flows is the relay's own, for Close.
	ownFlows bool

	// base is the parent of every exchange; Shutdown cancels it.
	base     context.Context
	stop     context.CancelFunc
	stopping atomic.Bool
	inflight sync.WaitGroup

	exMu      sync.Mutex
	exchanges map[*Exchange]struct{}

	pubMu sync.Mutex
	pubs  map[string]*publishMux
}

// New returns a relay with no exchange.
func New(opts Options) *Relay {
	opts.defaults()
	own := opts.Flows == nil
	if own {
		opts.Flows = flow.NewEngine()
	}
	r := &Relay{
		opts:     opts,
		log:      opts.Logger,
		metrics:  opts.Metrics,
		flows:    opts.Flows,
		ownFlows: own,
		pubs:     map[string]*publishMux{},

		exchanges: map[*Exchange]struct{}{},
	}
	r.base, r.stop = context.WithCancel(context.Background())
	return r
}

// Shutdown ends every exchange gracefully and refuses new ones (503):
// subscriptions are closed (so endpoints commit what clients acknowledged)
// and the entrypoints of streams hear End with stopping set, so they tell
// their clients to reconnect (an SSE goaway event, a WebSocket 1013) and
// finish. It returns once every exchange has ended, or when ctx ends; then
// whatever is still running is cancelled.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.stopping.Store(true)
	r.exMu.Lock()
	live := make([]*Exchange, 0, len(r.exchanges))
	for x := range r.exchanges {
		live = append(live, x)
	}
	r.exMu.Unlock()
	for _, x := range live {
		x.serverStopping()
	}

	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.stop()
	return err
}

// Close closes the endpoints' shared Publish streams (and the flow engine
// when it is the relay's own), once nothing publishes any more (after
// Shutdown).
func (r *Relay) Close() {
	if r.ownFlows {
		r.flows.Close()
	}
	r.pubMu.Lock()
	pubs := r.pubs
	r.pubs = map[string]*publishMux{}
	r.pubMu.Unlock()
	for _, m := range pubs {
		m.Close()
	}
}

// publishMux returns the shared Publish stream of an endpoint plugin.
func (r *Relay) publishMux(p flow.PluginRef) *publishMux {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	m := r.pubs[p.Name()]
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
		r.pubs[p.Name()] = m
	}
	return m
}

// errShuttingDown is the failure of exchanges cut by Shutdown.
var errShuttingDown = &pluginv1.Failure{
	Status:       http.StatusServiceUnavailable,
	Key:          "FAILURE_GATEWAY_STOPPING",
	Message:      "The gateway is shutting down; retry on another instance",
	Retriable:    true,
	RequestLevel: true,
}
