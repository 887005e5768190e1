package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// subscribe starts the endpoint subscription (once per exchange). An
// exchange that is already ending starts none; if the gateway is stopping,
// the entrypoint, which waits for its subscription, hears End{stopping}
// instead.
func (x *Exchange) subscribe(ss *pluginv1.Connect_SubscribeStart) {
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

// ack acknowledges delivered messages through tag, once they are written.
func (x *Exchange) ack(tag uint64) {
	x.mu.Lock()
	sub := x.sub
	x.mu.Unlock()
	if sub != nil {
		sub.ack(tag)
	}
}

// subscription is the endpoint Subscribe stream of one exchange.
type subscription struct {
	x *Exchange

	mu      sync.Mutex
	stream  pluginv1.Endpoint_SubscribeClient
	stopped bool
	sendMu  sync.Mutex
}

func (sub *subscription) run(ss *pluginv1.Connect_SubscribeStart) {
	x := sub.x
	defer x.subEnded()
	ep := x.endpoint
	if ep == nil {
		x.endpointFailure(&pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
			Message: "API " + x.api + " has no endpoint to subscribe to; declare an endpoint block", RequestLevel: true})
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
	x.r.metrics.Subscription(x.api, 1)
	defer x.r.metrics.Subscription(x.api, -1)

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
			if err != errSubscribePhaseFailed && !sub.isStopped() && x.ctx.Err() == nil {
				x.endpointFailure(flow.TransportFailure(name, err))
			}
			return
		}
	}
}

// errSubscribePhaseFailed ends a subscription whose subscribe phase could not
// process a batch; the entrypoint has already heard the failure.
var errSubscribePhaseFailed = errors.New("the subscribe phase failed")

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
		x.r.metrics.AddDelivered(x.api, data)
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
			msgs, f = x.r.flows.OnMessages(cctx, flow.PhaseSubscribe, x.flows.Subscribe, x.pctx, msgs)
			cancel()
			switch {
			case f != nil && (sub.isStopped() || x.ctx.Err() != nil):
				// Stopping already (the client left, the gateway stops):
				// the call was cut short, not failed, and nobody is left to
				// hear about it; the batch stays unacknowledged.
				return nil
			case f.GetRequestLevel():
				// The policy's plugin is down, stopped answering or broke:
				// the batch was not processed, so the stream ends with the
				// failure (an error event, a close code) and the client
				// resumes from the last message it got, at-least-once.
				x.endpointFailure(f)
				return errSubscribePhaseFailed
			case f != nil:
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
		x.r.metrics.AddDelivered(x.api, n)
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
