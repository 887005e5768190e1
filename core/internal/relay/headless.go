package relay

import (
	"net/http"
	"sync"

	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// headerFailureKey is the header of a headless exchange's final response
// that carries the machine key of why it ended (e.g. WEBHOOK_UNREACHABLE).
const headerFailureKey = "Sluice-Failure-Key"

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

// Headless is a running headless exchange (ServeHeadless).
type Headless struct {
	x       *Exchange
	onWrite func([][]byte)
	done    chan struct{}

	mu     sync.Mutex
	result HeadlessResult
}

// ServeHeadless runs the exchange with no client socket, for a push
// subscription (Request.Subscription): what the entrypoint writes goes to
// onWrite, which may be nil, and is acknowledged as a socket transport
// acknowledges what is on the wire.
func (x *Exchange) ServeHeadless(onWrite func(chunks [][]byte)) *Headless {
	h := &Headless{x: x, onWrite: onWrite, done: make(chan struct{})}
	go h.drive()
	return h
}

// drive is the headless exchange's transport: it reads the entrypoint's
// socket actions, hands written chunks to onWrite and acknowledges them as
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
		if http.CanonicalHeaderKey(hd.GetName()) == headerFailureKey && len(hd.GetValues()) > 0 {
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
