package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// Buffer sizes of an exchange. Small on purpose: they only smooth bursts;
// backpressure does the rest.
const (
	outBuffer     = 16
	publishBuffer = 16
)

// exchange drives one entrypoint Connect stream for one client.
//
// Goroutines: recvLoop reads the entrypoint's actions and hands socket
// actions (Respond, Write, Finish) to the transport through out, publish
// batches to publisher through a queue, and starts the subscription. The
// transport (the fasthttp handler, then the response body reader or the
// WebSocket writer) is the only reader of out and ends by detaching, which
// drains whatever is left. The exchange ends when the entrypoint has ended
// its stream and the subscription has ended, or StopGrace after the client
// side is done, whichever comes first.
type exchange struct {
	s    *Server
	api  *API
	ep   *EntrypointInstance
	pctx *pluginv1.Context
	// flows are the steps the request's selected flows run.
	flows *flow.Selection
	// ctxBytes is pctx encoded, made once by open.
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
	// access is the access-log record of the request, nil for a headless
	// exchange.
	access     atomic.Pointer[access]
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

// open connects the entrypoint and sends Open. The failure is set when the
// plugin is down or refused the stream.
func (s *Server) open(api *API, ep *EntrypointInstance, pctx *pluginv1.Context, accept []string, sel *flow.Selection) (*exchange, *pluginv1.Failure) {
	return s.openWith(api, ep, pctx, accept, sel, nil)
}

// openWith is open for an exchange with no client socket when subscription
// is set: the Open carries the push subscription it runs.
func (s *Server) openWith(api *API, ep *EntrypointInstance, pctx *pluginv1.Context, accept []string, sel *flow.Selection, subscription []byte) (*exchange, *pluginv1.Failure) {
	name := ep.Plugin.Name()
	clients, err := ep.Plugin.Clients()
	if err != nil || clients == nil {
		return nil, flow.Unavailable(name)
	}
	if s.stopping.Load() {
		return nil, errShuttingDown
	}
	// The context is fixed from here on: it is encoded once, for the Open
	// and for every publish and subscribe request of the exchange.
	ctxBytes, err := encodeContext(pctx)
	if err != nil {
		return nil, flow.TransportFailure(name, err)
	}
	ctx, cancel := context.WithCancel(s.base)
	stream, err := clients.Entrypoint.Connect(ctx, withCodec)
	if err != nil {
		cancel()
		return nil, flow.TransportFailure(name, err)
	}
	var first any = openFrame(ep.InstanceID, ctxBytes)
	if subscription != nil {
		// Rare (one per push subscription start): encoded the plain way.
		first = &pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{Open: &pluginv1.Connect_Open{
			InstanceId: ep.InstanceID, Context: pctx, SubscriptionJson: subscription}}}
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
	x := &exchange{
		s: s, api: api, ep: ep, pctx: pctx, flows: sel, ctxBytes: ctxBytes, accept: accept, plugin: name,
		ctx: ctx, cancel: cancel, stream: stream,
		out:    make(chan *pluginv1.Connect_Response, outBuffer),
		direct: make(chan *pluginv1.Failure, 1),

		inboundMore: make(chan struct{}, 1),
	}
	x.inbound.Store(entrypoint.InitialInboundCredit)
	s.inflight.Add(1)
	s.exMu.Lock()
	s.exchanges[x] = struct{}{}
	s.exMu.Unlock()
	context.AfterFunc(ctx, func() {
		s.exMu.Lock()
		delete(s.exchanges, x)
		s.exMu.Unlock()
		s.inflight.Done()
	})
	go x.recvLoop()
	if s.stopping.Load() {
		// Shutdown began while this exchange was being opened and did not
		// see it: stop it the same way.
		x.serverStopping()
	}
	return x, nil
}

// send sends one event to the entrypoint. Errors are ignored: a broken
// stream is reported by recvLoop.
func (x *exchange) send(req *pluginv1.Connect_Request) {
	x.sendMsg(req)
}

// sendMsg sends a *pluginv1.Connect_Request, or one already encoded
// (*rawMessage).
func (x *exchange) sendMsg(m any) {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	if x.sendClosed {
		return
	}
	_ = x.stream.SendMsg(m)
}

// closeSend tells the entrypoint that no more events will come.
func (x *exchange) closeSend() {
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	if !x.sendClosed {
		x.sendClosed = true
		_ = x.stream.CloseSend()
	}
}

// pubBatch is one publish action of the entrypoint: decoded (msgs), or
// relayed as it came (raw) when no publish-phase policy has to see it.
type pubBatch struct {
	id   uint64
	msgs []*pluginv1.Message
	raw  *rawBatch
	// result, when set, receives the outcome instead of the entrypoint (a
	// batch with then_respond: the core answers the client itself).
	result chan *pluginv1.Failure
	// target names the API endpoint to publish to; "" is the first one.
	target string
}

func (x *exchange) recvLoop() {
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
			case x.s.base.Err() != nil:
				x.endFailure.Store(errShuttingDown)
			case x.ctx.Err() == nil:
				f := flow.TransportFailure(x.plugin, err)
				x.endFailure.Store(f)
				x.s.log.Warn("entrypoint stream failed", "api", x.api.Name, "entrypoint", x.ep.Type, "plugin", x.plugin, "status", f.GetStatus(), "error", err)
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

// publishThenRespond publishes the entrypoint's last batch (after any
// queued before it) and answers the client: then on success, the gateway's
// failure response otherwise. It reports false when the exchange ended
// first.
func (x *exchange) publishThenRespond(queue func(pubBatch) bool, b pubBatch, then *pluginv1.Connect_Respond) bool {
	b.result = make(chan *pluginv1.Failure, 1)
	if !queue(b) {
		return false
	}
	var f *pluginv1.Failure
	select {
	case f = <-b.result:
	case <-x.ctx.Done():
		return false
	}
	if f != nil {
		status, headers, body := httpfailure.Response(x.accept, &gateway.Failure{
			Status: int(f.GetStatus()), Key: f.GetKey(), Message: f.GetMessage(), Retriable: f.GetRetriable(),
		}, http.StatusServiceUnavailable)
		then = &pluginv1.Connect_Respond{Status: int32(status), Headers: wireHeaders(headers), Body: body}
	}
	x.responded.Store(true)
	select {
	case x.out <- &pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Finish{Finish: &pluginv1.Connect_Finish{Respond: then}}}:
		return true
	case <-x.ctx.Done():
		return false
	}
}

// wireHeaders converts headers to their wire list.
func wireHeaders(h map[string][]string) []*pluginv1.Header {
	out := make([]*pluginv1.Header, 0, len(h))
	for name, values := range h {
		out = append(out, &pluginv1.Header{Name: name, Values: values})
	}
	return out
}

// decodeAction reads one action of the entrypoint. A publish batch that no
// publish-phase policy has to see is returned undecoded (raw); everything
// else is decoded.
func (x *exchange) decodeAction(frame rawFrame) (*rawBatch, *pluginv1.Connect_Response, error) {
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

// publisher handles one client's publish batches one at a time, in order, as
// the endpoint contract promises. It goes on after the entrypoint ended its
// stream, until every batch queued before is published (StopGrace after the
// exchange began to wind at most): what a client sent before it left is not
// dropped.
func (x *exchange) publisher(q <-chan pubBatch) {
	defer func() {
		x.mu.Lock()
		x.pubLive = false
		x.mu.Unlock()
		x.maybeEnd()
	}()
	for b := range q {
		var f *pluginv1.Failure
		if b.raw != nil {
			f = x.publishRaw(b.raw)
		} else {
			f = x.publish(b.msgs, b.target)
		}
		if b.result != nil {
			b.result <- f
			continue
		}
		x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Published{
			Published: &pluginv1.Connect_Published{BatchId: b.id, Failure: f},
		}})
	}
}

// noEndpoint is the failure of a publish on an API without an endpoint.
func (x *exchange) noEndpoint() *pluginv1.Failure {
	return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
		Message: "API " + x.api.Name + " has no endpoint to publish to; declare an endpoint block", RequestLevel: true}
}

func (x *exchange) publish(msgs []*pluginv1.Message, target string) *pluginv1.Failure {
	ep := x.api.Endpoint
	if target != "" {
		// A named endpoint (a webhook's dead-letter endpoint): the
		// messages were already through the subscribe phase, so the
		// publish phase, written for what clients send, does not run.
		if ep = x.api.Targets[target]; ep == nil {
			return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
				Message: "API " + x.api.Name + " has no endpoint named " + target}
		}
	} else if ep == nil {
		return x.noEndpoint()
	}
	if target == "" && len(x.flows.Publish) > 0 {
		var f *pluginv1.Failure
		cctx, cancel := x.callContext()
		msgs, f = x.s.flows.OnMessages(cctx, flow.PhasePublish, x.flows.Publish, x.pctx, msgs)
		cancel()
		if f != nil {
			return f
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return x.callPublish(ep, &publishRequest{typed: &pluginv1.Publish_Request{
		InstanceId: ep.InstanceID,
		Context:    x.contextFor(ep),
		Messages:   msgs,
	}}, len(msgs))
}

// publishRaw publishes a batch relayed without decoding: the request is the
// exchange's encoded instance id and context, then the batch's messages.
func (x *exchange) publishRaw(b *rawBatch) *pluginv1.Failure {
	ep := x.api.Endpoint
	if ep == nil {
		return x.noEndpoint()
	}
	if b.count == 0 {
		return nil
	}
	if x.pubHead == nil {
		h := protowire.AppendTag(nil, fieldPublishRequestInstance, protowire.BytesType)
		h = protowire.AppendString(h, ep.InstanceID)
		h = protowire.AppendTag(h, fieldPublishRequestContext, protowire.BytesType)
		ctxBytes, err := x.contextBytesFor(ep)
		if err != nil {
			return flow.TransportFailure(ep.Plugin.Name(), err)
		}
		x.pubHead = protowire.AppendBytes(h, ctxBytes)
	}
	raw := make(rawMessage, 0, 2+len(b.parts))
	raw = append(raw, nil, x.pubHead)
	raw = append(raw, b.parts...)
	return x.callPublish(ep, &publishRequest{raw: raw}, b.count)
}

// callPublish sends one batch of n messages on the endpoint's shared
// Publish stream and waits for its result.
//
// An exchange's first batch goes on the endpoint's shared stream: a POST
// publishes once, and opening a call of its own would cost two more
// frames. Later batches (a WebSocket publisher) go on the exchange's own
// Publish call, where the context is sent once and then referred to.
func (x *exchange) callPublish(ep *EndpointInstance, req *publishRequest, n int) *pluginv1.Failure {
	var (
		resp *pluginv1.Publish_Response
		f    *pluginv1.Failure
	)
	if x.published > 0 {
		resp, f = x.callOwnPublish(ep, req)
	} else {
		cctx, cancel := x.callContext()
		resp, f = x.s.publishMux(ep.Plugin).Call(cctx, req)
		cancel()
	}
	x.published++
	if f != nil {
		return f
	}
	if f := resp.GetFailure(); f != nil {
		return flow.Normalize(f)
	}
	x.s.metrics.addPublished(x.api.Name, n)
	x.countMessages(n)
	return nil
}

// subscribe starts the endpoint subscription (once per exchange). An
// exchange that is already ending starts none; if the gateway is stopping,
// the entrypoint, which waits for its subscription, hears End{stopping}
// instead.
func (x *exchange) subscribe(ss *pluginv1.Connect_SubscribeStart) {
	x.mu.Lock()
	if x.winding {
		tell := x.tellStoppingLocked()
		x.mu.Unlock()
		if tell {
			go x.sendStopping()
		}
		return
	}
	if x.sub != nil {
		x.mu.Unlock()
		x.endpointFailure(&pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
			Message: "entrypoint " + x.ep.Type + " started a second subscription on one exchange"})
		return
	}
	sub := &subscription{x: x}
	x.sub = sub
	x.subLive = true
	x.mu.Unlock()
	go sub.run(ss)
}

// endpointFailure reports a failure of the endpoint side to the entrypoint.
// A request-level failure before anything was responded is also offered to
// the transport, which answers it directly.
func (x *exchange) endpointFailure(f *pluginv1.Failure) {
	f = flow.Normalize(f)
	x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_EndpointFailure{EndpointFailure: f}})
	if f.GetRequestLevel() && !x.responded.Load() {
		select {
		case x.direct <- f:
		default:
		}
	}
}

// ack acknowledges delivered messages through tag, once they are written.
func (x *exchange) ack(tag uint64) {
	x.mu.Lock()
	sub := x.sub
	x.mu.Unlock()
	if sub != nil {
		sub.ack(tag)
	}
}

// clientGone is called by the transport on the first failed write or read
// (a WebSocket client's close frame included): the entrypoint hears
// End{client_gone}, the subscription stops. The entrypoint's receive side
// stays open until it ends its stream (finished) or StopGrace ends the
// exchange, so the outcomes of publishes of what the client sent before it
// left (Published) still reach it: a WebSocket entrypoint publishes the
// client's last messages, in order, and stops at a failure.
func (x *exchange) clientGone() {
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
func (x *exchange) serverStopping() {
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
func (x *exchange) tellStoppingLocked() bool {
	if !x.stopping || x.stopTold {
		return false
	}
	x.stopTold = true
	return true
}

// sendStopping tells the entrypoint that the gateway is stopping.
func (x *exchange) sendStopping() {
	x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{Stopping: true}}})
}

// finished is called by the transport once the exchange's answer is
// complete (Finish, or the entrypoint ended its stream).
func (x *exchange) finished() {
	x.wind()
	go x.closeSend()
}

// wind starts the end of the exchange: the subscription is asked to stop
// (its stream half-closed, so acknowledgements already sent still reach the
// endpoint), and everything is cancelled after StopGrace at the latest.
func (x *exchange) wind() {
	x.mu.Lock()
	sub := x.windLocked()
	x.mu.Unlock()
	if sub != nil {
		sub.stop()
	}
}

// windLocked is wind under x.mu: it starts the grace timer (once) and
// returns the subscription the caller must stop, without the lock.
func (x *exchange) windLocked() *subscription {
	if x.winding {
		return nil
	}
	x.winding = true
	x.graceEnd = time.AfterFunc(x.s.opts.StopGrace, x.cancel)
	return x.sub
}

// detach is how a transport stops reading out: whatever the entrypoint still
// sends is discarded until it ends its stream.
func (x *exchange) detach() {
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

func (x *exchange) subEnded() {
	x.mu.Lock()
	x.subLive = false
	x.mu.Unlock()
	x.maybeEnd()
}

// maybeEnd cancels the exchange once the entrypoint, the subscription and
// the publisher are done.
func (x *exchange) maybeEnd() {
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

// subscription is the endpoint Subscribe stream of one exchange.
type subscription struct {
	x *exchange

	mu      sync.Mutex
	stream  pluginv1.Endpoint_SubscribeClient
	stopped bool
	sendMu  sync.Mutex
}

func (sub *subscription) run(ss *pluginv1.Connect_SubscribeStart) {
	x := sub.x
	defer x.subEnded()
	ep := x.api.Endpoint
	if ep == nil {
		x.endpointFailure(&pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
			Message: "API " + x.api.Name + " has no endpoint to subscribe to; declare an endpoint block", RequestLevel: true})
		return
	}
	if q := ss.GetQos(); q != "" && len(ep.QoS) > 0 && !slices.Contains(ep.QoS, q) {
		x.endpointFailure(&pluginv1.Failure{Status: http.StatusInternalServerError, Key: "FAILURE_QOS_UNSUPPORTED",
			Message: "endpoint " + ep.Type + " does not support qos " + q + "; use one of " + joinQuoted(ep.QoS), RequestLevel: true})
		return
	}
	name := ep.Plugin.Name()
	clients, err := ep.Plugin.Clients()
	if err != nil || clients == nil {
		x.endpointFailure(flow.Unavailable(name))
		return
	}
	// Its own context, so a frame the core cannot read ends the stream too.
	sctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	stream, err := clients.Endpoint.Subscribe(sctx, withCodec)
	if err != nil {
		x.endpointFailure(flow.TransportFailure(name, err))
		return
	}
	ctxBytes, err := x.contextBytesFor(ep)
	if err != nil {
		x.endpointFailure(flow.TransportFailure(name, err))
		return
	}
	start := startFrame(ep.InstanceID, ctxBytes, ss)
	sub.sendMu.Lock()
	_ = stream.SendMsg(start)
	sub.sendMu.Unlock()
	sub.mu.Lock()
	sub.stream = stream
	stopped := sub.stopped
	sub.mu.Unlock()
	if stopped {
		sub.closeSend()
	}
	x.s.metrics.subscription(x.api.Name, 1)
	defer x.s.metrics.subscription(x.api.Name, -1)

	for {
		var frame rawFrame
		err := stream.RecvMsg(&frame)
		if err != nil {
			if sub.isStopped() || x.ctx.Err() != nil {
				return
			}
			if err == io.EOF {
				x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{}}})
				return
			}
			x.endpointFailure(flow.TransportFailure(name, err))
			return
		}
		if err := sub.handle(frame); err != nil {
			if !sub.isStopped() && x.ctx.Err() == nil {
				x.endpointFailure(flow.TransportFailure(name, err))
			}
			return
		}
	}
}

// handle relays one Subscribe response. A batch no policy has to see goes
// to the entrypoint as it came, without being decoded (the bytes of a
// Subscribe.Batch are those of a Connect.Deliver); anything else is decoded.
func (sub *subscription) handle(frame rawFrame) error {
	x := sub.x
	if num, batch, ok := onlyField(frame); ok && num == fieldSubscribeResponseBatch && len(x.flows.Subscribe) == 0 {
		if sub.isStopped() {
			return nil
		}
		all, data, err := countMessages(batch)
		if err != nil {
			return err
		}
		if all == 0 {
			return nil
		}
		x.sendMsg(deliverFrame(batch))
		x.s.metrics.addDelivered(x.api.Name, data)
		x.countMessages(data)
		return nil
	}
	resp := &pluginv1.Subscribe_Response{}
	if err := proto.Unmarshal(frame, resp); err != nil {
		return err
	}
	switch k := resp.GetKind().(type) {
	case *pluginv1.Subscribe_Response_Ready:
		x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Ready{Ready: &pluginv1.Connect_Ready{Cursor: k.Ready.GetCursor()}}})
	case *pluginv1.Subscribe_Response_Batch:
		if sub.isStopped() {
			return nil
		}
		msgs := k.Batch.GetMessages()
		if len(x.flows.Subscribe) > 0 {
			var f *pluginv1.Failure
			cctx, cancel := x.callContext()
			msgs, f = x.s.flows.OnMessages(cctx, flow.PhaseSubscribe, x.flows.Subscribe, x.pctx, msgs)
			cancel()
			if f != nil {
				// A subscribe-phase interrupt becomes an error message on
				// the stream, which each entrypoint renders its own way.
				msgs = []*pluginv1.Message{{Error: f}}
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Deliver{Deliver: &pluginv1.Connect_Deliver{Messages: msgs}}})
		n := 0
		for _, m := range msgs {
			if m.GetError() == nil {
				n++
			}
		}
		x.s.metrics.addDelivered(x.api.Name, n)
		x.countMessages(n)
	case *pluginv1.Subscribe_Response_Failure:
		x.endpointFailure(k.Failure)
	}
	return nil
}

func (sub *subscription) isStopped() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.stopped
}

// stop half-closes the subscription: the endpoint sees its acknowledgements
// end and stops; the exchange's grace timer cancels it otherwise.
func (sub *subscription) stop() {
	sub.mu.Lock()
	if sub.stopped {
		sub.mu.Unlock()
		return
	}
	sub.stopped = true
	has := sub.stream != nil
	sub.mu.Unlock()
	if has {
		sub.closeSend()
	}
}

func (sub *subscription) closeSend() {
	sub.sendMu.Lock()
	defer sub.sendMu.Unlock()
	_ = sub.stream.CloseSend()
}

func (sub *subscription) ack(tag uint64) {
	sub.mu.Lock()
	stream, stopped := sub.stream, sub.stopped
	sub.mu.Unlock()
	if stream == nil || stopped {
		return
	}
	sub.sendMu.Lock()
	defer sub.sendMu.Unlock()
	_ = stream.Send(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Ack{Ack: &pluginv1.Subscribe_Ack{ThroughTag: tag}}})
}

func joinQuoted(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += `"` + s + `"`
	}
	return out
}

// ownPublish is an exchange's own Publish call on the endpoint plugin.
type ownPublish struct {
	clients *serve.Clients
	stream  pluginv1.Endpoint_PublishClient
	cancel  context.CancelFunc
	// sentContext is set once a request on this call carried the context.
	sentContext bool
	nextID      uint64
}

// callOwnPublish sends one batch on the exchange's own Publish call and
// waits for its result. The call is opened on first use and again after the
// plugin was restarted; its first request carries the context, the others
// are flagged same_context. A plugin without the "same-context" feature
// gets every batch on the shared stream instead.
func (x *exchange) callOwnPublish(ep *EndpointInstance, req *publishRequest) (*pluginv1.Publish_Response, *pluginv1.Failure) {
	name := ep.Plugin.Name()
	clients, err := ep.Plugin.Clients()
	if err != nil || clients == nil {
		return nil, flow.Unavailable(name)
	}
	if !slices.Contains(clients.Features, tunnel.FeatureSameContext) {
		cctx, cancel := x.callContext()
		defer cancel()
		return x.s.publishMux(ep.Plugin).Call(cctx, req)
	}
	own := x.ownPub
	if own == nil || own.clients != clients {
		sctx, cancel := context.WithCancel(x.ctx)
		stream, err := clients.Endpoint.Publish(sctx, withCodec)
		if err != nil {
			cancel()
			return nil, flow.TransportFailure(name, err)
		}
		own = &ownPublish{clients: clients, stream: stream, cancel: cancel}
		x.ownPub = own
	}
	// A plugin that stops answering must not hold the client forever: past
	// the deadline the call is given up, and the next batch opens another.
	var late atomic.Bool
	deadline := time.AfterFunc(x.s.opts.PluginCallTimeout, func() {
		late.Store(true)
		own.cancel()
	})
	defer deadline.Stop()
	if own.sentContext {
		req.dropContext(ep.InstanceID)
	}
	own.nextID++
	req.setID(own.nextID)
	err = publishStream{own.stream}.Send(req)
	var resp pluginv1.Publish_Response
	if err == nil {
		err = own.stream.RecvMsg(&resp)
	}
	if err != nil {
		// Whatever broke, the next batch starts a new call.
		x.ownPub = nil
		own.cancel()
		if late.Load() {
			err = status.Error(codes.DeadlineExceeded, "no publish result within "+x.s.opts.PluginCallTimeout.String())
		}
		return nil, flow.TransportFailure(name, err)
	}
	own.sentContext = true
	if resp.GetBatchId() != own.nextID {
		x.ownPub = nil
		return nil, flow.TransportFailure(name, errOutOfOrder)
	}
	return &resp, nil
}

var errOutOfOrder = errors.New("publish result for another batch")

// grantInbound adds credit for client frames and wakes a reader waiting
// for it.
func (x *exchange) grantInbound(n int64) {
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
func (x *exchange) spendInbound(n int64) bool {
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
func (x *exchange) contextFor(ep *EndpointInstance) *pluginv1.Context {
	if !ep.OmitBody {
		return x.pctx
	}
	return flow.WithoutBody(x.pctx)
}

// contextBytesFor is contextFor encoded: the bytes encoded for the
// entrypoint when the body goes along, encoded once more without it
// otherwise.
func (x *exchange) contextBytesFor(ep *EndpointInstance) ([]byte, error) {
	if !ep.OmitBody || len(x.pctx.GetRequest().GetBody()) == 0 {
		return x.ctxBytes, nil
	}
	return encodeContext(flow.WithoutBody(x.pctx))
}

// callContext bounds one call to a plugin on the exchange's behalf: a plugin
// that stops answering gets the client a 504, not a hang.
func (x *exchange) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(x.ctx, x.s.opts.PluginCallTimeout)
}
