package server

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
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
	s      *Server
	api    *API
	ep     *EntrypointInstance
	pctx   *pluginv1.Context
	accept []string
	plugin string

	ctx    context.Context
	cancel context.CancelFunc
	stream pluginv1.Entrypoint_ConnectClient

	sendMu     sync.Mutex
	sendClosed bool

	out    chan *pluginv1.Connect_Response
	direct chan *pluginv1.Failure

	responded  atomic.Bool
	endFailure atomic.Pointer[pluginv1.Failure]

	goneOnce   sync.Once
	detachOnce sync.Once

	mu       sync.Mutex
	sub      *subscription
	subLive  bool
	outDone  bool
	winding  bool
	graceEnd *time.Timer
}

// open connects the entrypoint and sends Open. The failure is set when the
// plugin is down or refused the stream.
func (s *Server) open(api *API, ep *EntrypointInstance, pctx *pluginv1.Context, accept []string) (*exchange, *pluginv1.Failure) {
	name := ep.Plugin.Name()
	clients, err := ep.Plugin.Clients()
	if err != nil || clients == nil {
		return nil, flow.Unavailable(name)
	}
	if s.stopping.Load() {
		return nil, errShuttingDown
	}
	ctx, cancel := context.WithCancel(s.base)
	stream, err := clients.Entrypoint.Connect(ctx)
	if err != nil {
		cancel()
		return nil, flow.TransportFailure(name, err)
	}
	open := &pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{Open: &pluginv1.Connect_Open{InstanceId: ep.InstanceID, Context: pctx}}}
	if err := stream.Send(open); err != nil {
		// Send only reports that the stream is gone; Recv says why.
		_, rerr := stream.Recv()
		cancel()
		if rerr == nil {
			rerr = err
		}
		return nil, flow.TransportFailure(name, rerr)
	}
	x := &exchange{
		s: s, api: api, ep: ep, pctx: pctx, accept: accept, plugin: name,
		ctx: ctx, cancel: cancel, stream: stream,
		out:    make(chan *pluginv1.Connect_Response, outBuffer),
		direct: make(chan *pluginv1.Failure, 1),
	}
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
	x.sendMu.Lock()
	defer x.sendMu.Unlock()
	if x.sendClosed {
		return
	}
	_ = x.stream.Send(req)
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

func (x *exchange) recvLoop() {
	var pubQ chan *pluginv1.Connect_PublishBatch
	defer func() {
		close(x.out)
		if pubQ != nil {
			close(pubQ)
		}
	}()
	for {
		resp, err := x.stream.Recv()
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
			if pubQ == nil {
				pubQ = make(chan *pluginv1.Connect_PublishBatch, publishBuffer)
				go x.publisher(pubQ)
			}
			select {
			case pubQ <- k.Publish:
			case <-x.ctx.Done():
				return
			}
		case *pluginv1.Connect_Response_Subscribe:
			x.subscribe(k.Subscribe)
		default:
			// A kind from a newer protocol revision: nothing to do with it.
		}
	}
}

// publisher handles one client's publish batches one at a time, in order, as
// the endpoint contract promises.
func (x *exchange) publisher(q <-chan *pluginv1.Connect_PublishBatch) {
	for b := range q {
		f := x.publish(b.GetMessages())
		x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Published{
			Published: &pluginv1.Connect_Published{BatchId: b.GetBatchId(), Failure: f},
		}})
	}
}

func (x *exchange) publish(msgs []*pluginv1.Message) *pluginv1.Failure {
	ep := x.api.Endpoint
	if ep == nil {
		return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
			Message: "API " + x.api.Name + " has no endpoint to publish to; declare an endpoint block", RequestLevel: true}
	}
	if len(x.api.Flows.Publish) > 0 {
		var f *pluginv1.Failure
		msgs, f = x.s.flows.OnMessages(x.ctx, flow.PhasePublish, x.api.Flows.Publish, x.pctx, msgs)
		if f != nil {
			return f
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	resp, f := x.s.publishMux(ep.Plugin).Call(x.ctx, &pluginv1.Publish_Request{
		InstanceId: ep.InstanceID,
		Context:    x.pctx,
		Messages:   msgs,
	})
	if f != nil {
		return f
	}
	if f := resp.GetFailure(); f != nil {
		return flow.Normalize(f)
	}
	x.s.metrics.addPublished(x.api.Name, len(msgs))
	return nil
}

// subscribe starts the endpoint subscription (once per exchange).
func (x *exchange) subscribe(ss *pluginv1.Connect_SubscribeStart) {
	x.mu.Lock()
	if x.winding {
		x.mu.Unlock()
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

// clientGone is called by the transport on the first failed write or read:
// the entrypoint hears End{client_gone}, the subscription stops.
func (x *exchange) clientGone() {
	x.goneOnce.Do(func() {
		x.wind()
		go func() {
			x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{ClientGone: true}}})
			x.closeSend()
		}()
	})
}

// serverStopping ends a subscribing exchange for Shutdown: the subscription
// stops and the entrypoint hears End (not client_gone), so it can finish its
// stream the way it finishes any ended stream. Publishing exchanges are left
// to complete within StopGrace.
func (x *exchange) serverStopping() {
	x.mu.Lock()
	sub := x.sub
	x.mu.Unlock()
	if sub == nil {
		x.wind()
		return
	}
	x.wind()
	go x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{}}})
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
	if x.winding {
		x.mu.Unlock()
		return
	}
	x.winding = true
	sub := x.sub
	x.graceEnd = time.AfterFunc(x.s.opts.StopGrace, x.cancel)
	x.mu.Unlock()
	if sub != nil {
		sub.stop()
	}
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

// maybeEnd cancels the exchange once both the entrypoint and the
// subscription are done.
func (x *exchange) maybeEnd() {
	x.mu.Lock()
	done := x.outDone && !x.subLive
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
	stream, err := clients.Endpoint.Subscribe(x.ctx)
	if err != nil {
		x.endpointFailure(flow.TransportFailure(name, err))
		return
	}
	start := &pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Start{Start: &pluginv1.Subscribe_Start{
		InstanceId: ep.InstanceID,
		Context:    x.pctx,
		Qos:        ss.GetQos(),
		LastId:     ss.GetLastId(),
		Limit:      ss.GetLimit(),
	}}}
	sub.sendMu.Lock()
	_ = stream.Send(start)
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
		resp, err := stream.Recv()
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
		switch k := resp.GetKind().(type) {
		case *pluginv1.Subscribe_Response_Ready:
			x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Ready{Ready: &pluginv1.Connect_Ready{Cursor: k.Ready.GetCursor()}}})
		case *pluginv1.Subscribe_Response_Batch:
			if sub.isStopped() {
				continue
			}
			msgs := k.Batch.GetMessages()
			if len(x.api.Flows.Subscribe) > 0 {
				var f *pluginv1.Failure
				msgs, f = x.s.flows.OnMessages(x.ctx, flow.PhaseSubscribe, x.api.Flows.Subscribe, x.pctx, msgs)
				if f != nil {
					// A subscribe-phase interrupt becomes an error message on
					// the stream, which each entrypoint renders its own way.
					msgs = []*pluginv1.Message{{Error: f}}
				}
			}
			if len(msgs) == 0 {
				continue
			}
			x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Deliver{Deliver: &pluginv1.Connect_Deliver{Messages: msgs}}})
			n := 0
			for _, m := range msgs {
				if m.GetError() == nil {
					n++
				}
			}
			x.s.metrics.addDelivered(x.api.Name, n)
		case *pluginv1.Subscribe_Response_Failure:
			x.endpointFailure(k.Failure)
		}
	}
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
