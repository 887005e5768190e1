package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// HeaderFailureKey is the header of a headless exchange's final response
// that carries the machine key of why it ended (e.g. WEBHOOK_UNREACHABLE).
const HeaderFailureKey = "Sluice-Failure-Key"

// HeadlessSpec is an exchange the core opens itself, with no client socket:
// a push subscription. It goes through the same steps as a request (flow
// selection, request phase, the entrypoint's Connect stream, the endpoint
// subscription and acknowledgements); only the socket is missing.
type HeadlessSpec struct {
	// API is the deployed API's name.
	API string
	// Entrypoint is the entrypoint type that runs the exchange (webhook).
	Entrypoint string
	// ID is the subscription id. It is the client identifier, so the
	// endpoint's consumer group: the same subscription on several gateways
	// shares its partitions.
	ID string
	// Plan is the plan type the subscription belongs to (push).
	Plan string
	// Subscription is the subscription block as JSON, sent in Open.
	Subscription []byte
	// OnWrite, when set, receives the chunks of each Write before its
	// acknowledgement is sent: what the entrypoint frames, with no client
	// to send it to (a webhook writes one delivery report per chunk).
	OnWrite func(chunks [][]byte)
}

// HeadlessResult says how a headless exchange ended.
type HeadlessResult struct {
	// Status is the final response's status; 0 when the exchange ended
	// without one (stopped, or the entrypoint returned).
	Status int
	// Key is the failure's machine key, when there is one.
	Key string
	// Message is the failure's message or the final response's body.
	Message string
}

// Headless is a running headless exchange.
type Headless struct {
	x       *exchange
	onWrite func([][]byte)
	done    chan struct{}

	mu     sync.Mutex
	result HeadlessResult
}

// OpenHeadless opens a headless exchange on the deployed API spec.API. It
// fails when the API or its entrypoint is not deployed, or when the plugin
// is down or the request phase refused it.
func (s *Server) OpenHeadless(spec HeadlessSpec) (*Headless, error) {
	var api *API
	for _, a := range s.dep.Load().apis {
		if a.Name == spec.API {
			api = a
			break
		}
	}
	if api == nil {
		return nil, fmt.Errorf("api %q is not deployed", spec.API)
	}
	var ep *EntrypointInstance
	for _, e := range api.Entrypoints {
		if e.Type == spec.Entrypoint {
			ep = e
			break
		}
	}
	if ep == nil {
		return nil, fmt.Errorf("api %q has no %s entrypoint", spec.API, spec.Entrypoint)
	}
	if spec.Subscription == nil {
		spec.Subscription = []byte("{}")
	}
	// The plan.Identity of a request that the plan accepted for subscription
	// spec.ID, with no remote address and no headers.
	id := plan.Identify("", spec.ID, plan.NewRequestID(), "", spec.ID).WithPlan(plan.Result{Plan: spec.Plan, Subscription: spec.ID})
	req := &pluginv1.Request{
		Id:               id.RequestID,
		TransactionId:    id.TransactionID,
		ClientIdentifier: id.ClientID,
		Path:             normalizeContextPath(api.ContextPath),
		ContextPath:      normalizeContextPath(api.ContextPath),
		PathInfo:         "/",
	}
	pctx := &pluginv1.Context{ApiId: api.Name, Request: req, Attributes: id.Attributes(api.Name)}
	sel := flow.Select(api.Flows, pctx)
	req.PathParams = sel.PathParams
	if len(sel.Request) > 0 {
		cctx, cancel := context.WithTimeout(s.base, s.opts.PluginCallTimeout)
		f := s.flows.OnRequest(cctx, sel.Request, pctx)
		cancel()
		if f != nil {
			return nil, errors.New(flow.Normalize(f).GetMessage())
		}
	}
	x, f := s.openWith(api, ep, pctx, []string{"application/json"}, sel, spec.Subscription)
	if f != nil {
		return nil, errors.New(flow.Normalize(f).GetMessage())
	}
	h := &Headless{x: x, onWrite: spec.OnWrite, done: make(chan struct{})}
	go h.drive()
	return h, nil
}

// drive is the headless exchange's transport: it reads the entrypoint's
// socket actions, hands written chunks to OnWrite and acknowledges them as
// a socket transport does once they are on the wire.
func (h *Headless) drive() {
	x := h.x
	defer func() {
		// Done only once the entrypoint and the subscription have ended,
		// so what was acknowledged is committed.
		<-x.ctx.Done()
		close(h.done)
	}()
	for {
		select {
		case a, ok := <-x.out:
			if !ok {
				if f := x.endFailure.Load(); f != nil {
					h.fail(f)
				}
				x.detach()
				return
			}
			switch k := a.GetKind().(type) {
			case *pluginv1.Connect_Response_Write:
				if h.onWrite != nil && len(k.Write.GetChunks()) > 0 {
					h.onWrite(k.Write.GetChunks())
				}
				if t := k.Write.GetAckThrough(); t > 0 {
					x.ack(t)
				}
			case *pluginv1.Connect_Response_Respond:
				if len(k.Respond.GetBody()) > 0 {
					h.end(k.Respond)
					x.finished()
					x.detach()
					return
				}
			case *pluginv1.Connect_Response_Finish:
				h.end(k.Finish.GetRespond())
				x.finished()
				x.detach()
				return
			}
		case f := <-x.direct:
			h.fail(f)
			x.clientGone()
			x.detach()
			return
		}
	}
}

func (h *Headless) fail(f *pluginv1.Failure) {
	f = flow.Normalize(f)
	h.mu.Lock()
	h.result = HeadlessResult{Status: int(f.GetStatus()), Key: f.GetKey(), Message: f.GetMessage()}
	h.mu.Unlock()
}

func (h *Headless) end(r *pluginv1.Connect_Respond) {
	if r == nil {
		return
	}
	res := HeadlessResult{Status: int(r.GetStatus()), Message: string(r.GetBody())}
	for _, hd := range r.GetHeaders() {
		if http.CanonicalHeaderKey(hd.GetName()) == HeaderFailureKey && len(hd.GetValues()) > 0 {
			res.Key = hd.GetValues()[0]
		}
	}
	h.mu.Lock()
	h.result = res
	h.mu.Unlock()
}

// Stop ends the exchange as a client leaving would: the entrypoint hears
// End{client_gone}, the subscription stops and commits what was
// acknowledged. Done is closed once all of it is over (StopGrace at most).
func (h *Headless) Stop() { h.x.clientGone() }

// Done is closed when the exchange has ended.
func (h *Headless) Done() <-chan struct{} { return h.done }

// Result says how the exchange ended; meaningful once Done is closed.
func (h *Headless) Result() HeadlessResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.result
}
