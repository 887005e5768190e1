package relay

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

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

// publishThenRespond publishes the entrypoint's last batch (after any
// queued before it) and answers the client: then on success, the gateway's
// failure response otherwise. It reports false when the exchange ended
// first.
func (x *Exchange) publishThenRespond(queue func(pubBatch) bool, b pubBatch, then *pluginv1.Connect_Respond) bool {
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

// publisher handles one client's publish batches one at a time, in order, as
// the endpoint contract promises. It goes on after the entrypoint ended its
// stream, until every batch queued before is published (StopGrace after the
// exchange began to wind at most): what a client sent before it left is not
// dropped.
func (x *Exchange) publisher(q <-chan pubBatch) {
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
func (x *Exchange) noEndpoint() *pluginv1.Failure {
	return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
		Message: "API " + x.api + " has no endpoint to publish to; declare an endpoint block", RequestLevel: true}
}

func (x *Exchange) publish(msgs []*pluginv1.Message, target string) *pluginv1.Failure {
	ep := x.endpoint
	if target != "" {
		// A named endpoint (a webhook's dead-letter endpoint): the
		// messages were already through the subscribe phase, so the
		// publish phase, written for what clients send, does not run.
		if ep = x.targets[target]; ep == nil {
			return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: flow.KeyInternal,
				Message: "API " + x.api + " has no endpoint named " + target}
		}
	} else if ep == nil {
		return x.noEndpoint()
	}
	if target == "" && len(x.flows.Publish) > 0 {
		var f *pluginv1.Failure
		cctx, cancel := x.callContext()
		msgs, f = x.r.flows.OnMessages(cctx, flow.PhasePublish, x.flows.Publish, x.pctx, msgs)
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
func (x *Exchange) publishRaw(b *rawBatch) *pluginv1.Failure {
	ep := x.endpoint
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
func (x *Exchange) callPublish(ep *EndpointInstance, req *publishRequest, n int) *pluginv1.Failure {
	var (
		resp *pluginv1.Publish_Response
		f    *pluginv1.Failure
	)
	if x.published > 0 {
		resp, f = x.callOwnPublish(ep, req)
	} else {
		cctx, cancel := x.callContext()
		resp, f = x.r.publishMux(ep.Plugin).Call(cctx, req)
		cancel()
	}
	x.published++
	if f != nil {
		return f
	}
	if f := resp.GetFailure(); f != nil {
		return flow.Normalize(f)
	}
	x.r.metrics.AddPublished(x.api, n)
	x.countMessages(n)
	return nil
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
func (x *Exchange) callOwnPublish(ep *EndpointInstance, req *publishRequest) (*pluginv1.Publish_Response, *pluginv1.Failure) {
	name := ep.Plugin.Name()
	clients, err := ep.Plugin.Clients()
	if err != nil || clients == nil {
		return nil, flow.Unavailable(name)
	}
	if !slices.Contains(clients.Features, tunnel.FeatureSameContext) {
		cctx, cancel := x.callContext()
		defer cancel()
		return x.r.publishMux(ep.Plugin).Call(cctx, req)
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
	deadline := time.AfterFunc(x.r.opts.PluginCallTimeout, func() {
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
			err = status.Error(codes.DeadlineExceeded, "no publish result within "+x.r.opts.PluginCallTimeout.String())
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
