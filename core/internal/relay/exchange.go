package relay

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Buffer sizes of an exchange. Small on purpose: they only smooth bursts;
// backpressure does the rest.
const (
	outBuffer     = 16
	publishBuffer = 16
)

// Exchange is one client request's journey through the plugins: it drives
// the entrypoint's Connect stream for one client, and the endpoint streams
// the entrypoint asks for. Open it with Relay.Open, then serve it with
// exactly one of ServeHTTP, ServeWebSocket or ServeHeadless.
//
// Goroutines: recvLoop reads the entrypoint's actions and hands socket
// actions (Respond, Write, Finish) to the transport through out, publish
// batches to publisher through a queue, and starts the subscription. The
// transport (the fasthttp handler, then the response body reader or the
// WebSocket writer) is the only reader of out and ends by detaching, which
// drains whatever is left. The exchange ends when the entrypoint has ended
// its stream and the subscription has ended, or StopGrace after the client
// side is done, whichever comes first.
type Exchange struct {
	r *Relay
	// api is the API's name.
	api string
	ep  *EntrypointInstance
	// endpoint and targets are the API's endpoints (Request).
	endpoint *EndpointInstance
	targets  map[string]*EndpointInstance
	pctx     *pluginv1.Context
	// flows are the steps the request's selected flows run.
	flows *flow.Selection
	// ctxBytes is pctx encoded, made once by Open.
	ctxBytes []byte
	accept   []string
	plugin   string

	ctx    context.Context
	cancel context.CancelFunc
	stream pluginv1.Entrypoint_ConnectClient

	sendMu     sync.Mutex
	sendClosed bool

	out    chan *pluginv1.Connect_Response
	direct chan *pluginv1.Failure

	// inbound is the credit left for client frames, when the entrypoint
	// type grants it (EntrypointInstance.InboundCredit); inboundMore is
	// signalled when a grant arrives.
	inbound     atomic.Int64
	inboundMore chan struct{}

	responded atomic.Bool
	// messages counts the messages published and delivered, for the
	// request's access-log record (Messages).
	messages   atomic.Int64
	endFailure atomic.Pointer[pluginv1.Failure]

	goneOnce   sync.Once
	detachOnce sync.Once

	// pubHead is the encoded instance id and context of this exchange's
	// publish requests, made by the publisher on its first raw batch.
	pubHead []byte
	// published counts the batches sent; ownPub is the exchange's own
	// Publish call, used from the second batch on (callPublish). Both are
	// the publisher goroutine's alone.
	published int
	ownPub    *ownPublish

	mu      sync.Mutex
	sub     *subscription
	subLive bool
	outDone bool
	// pubLive is set while the publisher goroutine runs: batches the
	// entrypoint queued before it ended its stream are still published.
	pubLive  bool
	winding  bool
	graceEnd *time.Timer
	// stopping is set by serverStopping; stopTold once the entrypoint was
	// sent End{stopping}, which it gets at most once.
	stopping bool
	stopTold bool
}

// Open connects the request's entrypoint and sends it Open. The failure is
// set when the plugin is down or refused the stream, or when the relay is
// shutting down.
func (r *Relay) Open(req Request) (*Exchange, *pluginv1.Failure) {
	ep, pctx := req.Entrypoint, req.Context
	name := ep.Plugin.Name()
	clients, err := ep.Plugin.Clients()
	if err != nil || clients == nil {
		return nil, flow.Unavailable(name)
	}
	if r.stopping.Load() {
		return nil, errShuttingDown
	}
	// The context is fixed from here on: it is encoded once, for the Open
	// and for every publish and subscribe request of the exchange.
	ctxBytes, err := encodeContext(pctx)
	if err != nil {
		return nil, flow.TransportFailure(name, err)
	}
	ctx, cancel := context.WithCancel(r.base)
	stream, err := clients.Entrypoint.Connect(ctx, withCodec)
	if err != nil {
		cancel()
		return nil, flow.TransportFailure(name, err)
	}
	var first any = openFrame(ep.InstanceID, ctxBytes)
	if req.Subscription != nil {
		// Rare (one per push subscription start): encoded the plain way.
		first = &pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{Open: &pluginv1.Connect_Open{
			InstanceId: ep.InstanceID, Context: pctx, SubscriptionJson: req.Subscription}}}
	}
	if err := stream.SendMsg(first); err != nil {
		// Send only reports that the stream is gone; Recv says why.
		_, rerr := stream.Recv()
		cancel()
		if rerr == nil {
			rerr = err
		}
		return nil, flow.TransportFailure(name, rerr)
	}
	x := &Exchange{
		r: r, api: req.API, ep: ep, endpoint: req.Endpoint, targets: req.Targets,
		pctx: pctx, flows: req.Flows, ctxBytes: ctxBytes, accept: req.Accept, plugin: name,
		ctx: ctx, cancel: cancel, stream: stream,
		out:    make(chan *pluginv1.Connect_Response, outBuffer),
		direct: make(chan *pluginv1.Failure, 1),

		inboundMore: make(chan struct{}, 1),
	}
	x.inbound.Store(entrypoint.InitialInboundCredit)
	r.inflight.Add(1)
	r.exMu.Lock()
	r.exchanges[x] = struct{}{}
	r.exMu.Unlock()
	context.AfterFunc(ctx, func() {
		r.exMu.Lock()
		delete(r.exchanges, x)
		r.exMu.Unlock()
		r.inflight.Done()
	})
	go x.recvLoop()
	if r.stopping.Load() {
		// Shutdown began while this exchange was being opened and did not
		// see it: stop it the same way.
		x.serverStopping()
	}
	return x, nil
}

// Messages counts the messages the exchange has published and delivered so
// far, for the request's access-log record.
func (x *Exchange) Messages() int64 { return x.messages.Load() }

// AfterEnd calls f in its own goroutine once the exchange has ended: its
// entrypoint and its subscription are done, or were cancelled.
func (x *Exchange) AfterEnd(f func()) { context.AfterFunc(x.ctx, f) }

// countMessages adds n messages to the exchange's count. It is called where
// published and delivered messages are counted for the metrics.
func (x *Exchange) countMessages(n int) { x.messages.Add(int64(n)) }

// send sends one event to the entrypoint. Errors are ignored: a broken
// stream is reported by recvLoop.
func (x *Exchange) send(req *pluginv1.Connect_Request) {
	x.sendMsg(req)
}

// sendMsg sends a *pluginv1.Connect_Request, or one already encoded
// (*rawMessage).
func (x *Exchange) sendMsg(m any) {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	if x.sendClosed {
		return
	}
	_ = x.stream.SendMsg(m)
}

// closeSend tells the entrypoint that no more events will come.
func (x *Exchange) closeSend() {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	if !x.sendClosed {
		x.sendClosed = true
		_ = x.stream.CloseSend()
	}
}

func (x *Exchange) recvLoop() {
	var pubQ chan pubBatch
	defer func() {
		close(x.out)
		if pubQ != nil {
			close(pubQ)
		}
	}()
	queue := func(b pubBatch) bool {
		if pubQ == nil {
			pubQ = make(chan pubBatch, publishBuffer)
			x.mu.Lock()
			x.pubLive = true
			x.mu.Unlock()
			go x.publisher(pubQ)
		}
		select {
		case pubQ <- b:
			return true
		case <-x.ctx.Done():
			return false
		}
	}
	for {
		var frame rawFrame
		err := x.stream.RecvMsg(&frame)
		var resp *pluginv1.Connect_Response
		if err == nil {
			var raw *rawBatch
			raw, resp, err = x.decodeAction(frame)
			if raw != nil {
				if raw.then != nil {
					then := &pluginv1.Connect_Respond{}
					if err = proto.Unmarshal(raw.then, then); err == nil {
						if !x.publishThenRespond(queue, pubBatch{id: raw.id, raw: raw}, then) {
							return
						}
						continue
					}
				} else {
					if !queue(pubBatch{id: raw.id, raw: raw}) {
						return
					}
					continue
				}
			}
		}
		if err != nil {
			switch {
			case err == io.EOF:
			case x.r.base.Err() != nil:
				x.endFailure.Store(errShuttingDown)
			case x.ctx.Err() == nil:
				f := flow.TransportFailure(x.plugin, err)
				x.endFailure.Store(f)
				x.r.log.Warn("entrypoint stream failed", "api", x.api, "entrypoint", x.ep.Type, "plugin", x.plugin, "status", f.GetStatus(), "error", err)
			}
			return
		}
		switch k := resp.GetKind().(type) {
		case *pluginv1.Connect_Response_Respond, *pluginv1.Connect_Response_Write, *pluginv1.Connect_Response_Finish:
			x.responded.Store(true)
			select {
			case x.out <- resp:
			case <-x.ctx.Done():
				return
			}
		case *pluginv1.Connect_Response_Publish:
			b := pubBatch{id: k.Publish.GetBatchId(), msgs: k.Publish.GetMessages(), target: k.Publish.GetEndpoint()}
			if then := k.Publish.GetThenRespond(); then != nil {
				if !x.publishThenRespond(queue, b, then) {
					return
				}
				continue
			}
			if !queue(b) {
				return
			}
		case *pluginv1.Connect_Response_Credit:
			x.grantInbound(k.Credit.GetBytes())
		case *pluginv1.Connect_Response_Subscribe:
			x.subscribe(k.Subscribe)
		default:
			// A kind from a newer protocol revision: nothing to do with it.
		}
	}
}

// decodeAction reads one action of the entrypoint. A publish batch that no
// publish-phase policy has to see is returned undecoded (raw); everything
// else is decoded.
func (x *Exchange) decodeAction(frame rawFrame) (*rawBatch, *pluginv1.Connect_Response, error) {
	if num, body, ok := onlyField(frame); ok && num == fieldConnectResponsePublish && len(x.flows.Publish) == 0 {
		b, ok, err := rawPublishBatch(body)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return &b, nil, nil
		}
	}
	resp := &pluginv1.Connect_Response{}
	if err := proto.Unmarshal(frame, resp); err != nil {
		return nil, nil, err
	}
	return nil, resp, nil
}

// endpointFailure reports a failure of the endpoint side to the entrypoint.
// A request-level failure before anything was responded is also offered to
// the transport, which answers it directly.
func (x *Exchange) endpointFailure(f *pluginv1.Failure) {
	f = flow.Normalize(f)
	x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_EndpointFailure{EndpointFailure: f}})
	if f.GetRequestLevel() && !x.responded.Load() {
		select {
		case x.direct <- f:
		default:
		}
	}
}

// clientGone is called by the transport on the first failed write or read
// (a WebSocket client's close frame included): the entrypoint hears
// End{client_gone}, the subscription stops. The entrypoint's receive side
// stays open until it ends its stream (finished) or StopGrace ends the
// exchange, so the outcomes of publishes of what the client sent before it
// left (Published) still reach it: a WebSocket entrypoint publishes the
// client's last messages, in order, and stops at a failure.
func (x *Exchange) clientGone() {
	x.goneOnce.Do(func() {
		x.wind()
		go x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{ClientGone: true}}})
	})
}

// serverStopping ends an exchange for Shutdown. A subscribing exchange's
// subscription stops and its entrypoint hears End{stopping}, so it tells its
// client to reconnect elsewhere (an SSE goaway event, a WebSocket 1013) and
// finishes; it has StopGrace for that before it is cancelled. Plain HTTP
// exchanges that do not subscribe (a POST publishing) hear nothing and are
// left to complete within StopGrace.
func (x *Exchange) serverStopping() {
	x.mu.Lock()
	if x.stopping {
		// Shutdown and open may both see an exchange opened as the
		// gateway began stopping.
		x.mu.Unlock()
		return
	}
	x.stopping = true
	if x.winding {
		// Ending already (finished, or the client is gone): there is no
		// one left to tell.
		x.stopTold = true
	}
	// Deciding under the lock that subscribe also takes means an exchange
	// whose subscription starts concurrently is told exactly once: here, or
	// by subscribe, which then sees winding. A WebSocket is told even when
	// it only publishes: its entrypoint closes it with 1013 once what the
	// client sent is published, rather than being cut at StopGrace.
	tell := (x.sub != nil || x.pctx.GetRequest().GetWebsocket()) && x.tellStoppingLocked()
	sub := x.windLocked()
	x.mu.Unlock()
	if sub != nil {
		sub.stop()
	}
	if tell {
		go x.sendStopping()
	}
}

// tellStoppingLocked reports whether the entrypoint is still to hear that
// the gateway is stopping, and records that it will. x.mu must be held.
func (x *Exchange) tellStoppingLocked() bool {
	if !x.stopping || x.stopTold {
		return false
	}
	x.stopTold = true
	return true
}

// sendStopping tells the entrypoint that the gateway is stopping.
func (x *Exchange) sendStopping() {
	x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{Stopping: true}}})
}

// finished is called by the transport once the exchange's answer is
// complete (Finish, or the entrypoint ended its stream).
func (x *Exchange) finished() {
	x.wind()
	go x.closeSend()
}

// wind starts the end of the exchange: the subscription is asked to stop
// (its stream half-closed, so acknowledgements already sent still reach the
// endpoint), and everything is cancelled after StopGrace at the latest.
func (x *Exchange) wind() {
	x.mu.Lock()
	sub := x.windLocked()
	x.mu.Unlock()
	if sub != nil {
		sub.stop()
	}
}

// windLocked is wind under x.mu: it starts the grace timer (once) and
// returns the subscription the caller must stop, without the lock.
func (x *Exchange) windLocked() *subscription {
	if x.winding {
		return nil
	}
	x.winding = true
	x.graceEnd = time.AfterFunc(x.r.opts.StopGrace, x.cancel)
	return x.sub
}

// detach is how a transport stops reading out: whatever the entrypoint still
// sends is discarded until it ends its stream.
func (x *Exchange) detach() {
	x.detachOnce.Do(func() {
		go func() {
			for range x.out {
			}
			x.finished()
			x.mu.Lock()
			x.outDone = true
			x.mu.Unlock()
			x.maybeEnd()
		}()
	})
}

func (x *Exchange) subEnded() {
	x.mu.Lock()
	x.subLive = false
	x.mu.Unlock()
	x.maybeEnd()
}

// maybeEnd cancels the exchange once the entrypoint, the subscription and
// the publisher are done.
func (x *Exchange) maybeEnd() {
	x.mu.Lock()
	done := x.outDone && !x.subLive && !x.pubLive
	t := x.graceEnd
	x.mu.Unlock()
	if done {
		if t != nil {
			t.Stop()
		}
		x.cancel()
	}
}

// grantInbound adds credit for client frames and wakes a reader waiting
// for it.
func (x *Exchange) grantInbound(n int64) {
	if n <= 0 {
		return
	}
	x.inbound.Add(n)
	select {
	case x.inboundMore <- struct{}{}:
	default:
	}
}

// spendInbound takes credit for frames costing n, waiting while none is
// left; it reports false when the exchange ended first. A batch may take
// more than is left: what a client already sent is bounded by the inbox.
func (x *Exchange) spendInbound(n int64) bool {
	if !x.ep.InboundCredit {
		return true
	}
	for x.inbound.Load() <= 0 {
		select {
		case <-x.inboundMore:
		case <-x.ctx.Done():
			return false
		}
	}
	x.inbound.Add(-n)
	return true
}

// contextFor is the exchange's context as ep receives it: without the
// request body when the instance does not read it.
func (x *Exchange) contextFor(ep *EndpointInstance) *pluginv1.Context {
	if !ep.OmitBody {
		return x.pctx
	}
	return flow.WithoutBody(x.pctx)
}

// contextBytesFor is contextFor encoded: the bytes encoded for the
// entrypoint when the body goes along, encoded once more without it
// otherwise.
func (x *Exchange) contextBytesFor(ep *EndpointInstance) ([]byte, error) {
	if !ep.OmitBody || len(x.pctx.GetRequest().GetBody()) == 0 {
		return x.ctxBytes, nil
	}
	return encodeContext(flow.WithoutBody(x.pctx))
}

// callContext bounds one call to a plugin on the exchange's behalf: a plugin
// that stops answering gets the client a 504, not a hang.
func (x *Exchange) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(x.ctx, x.r.opts.PluginCallTimeout)
}
