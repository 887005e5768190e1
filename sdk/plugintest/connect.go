package plugintest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Connect opens one Connect stream and sends Open. The exchange is closed at
// t.Cleanup if the test does not close it. As with Subscribe, the harness
// holds at most one action the test has not taken with Next.
func (h *Harness) Connect(t testing.TB, instanceID string, c *gateway.Context) *Exchange {
	t.Helper()
	return h.ConnectOpen(t, &entrypoint.Open{InstanceID: instanceID, Context: c})
}

// ConnectOpen is Connect with the whole Open, e.g. a push subscription's
// (Open.Subscription), as the gateway opens a headless exchange.
func (h *Harness) ConnectOpen(t testing.TB, o *entrypoint.Open) *Exchange {
	t.Helper()
	open, err := wire.OpenToWire(o)
	if err != nil {
		t.Fatalf("plugintest: Connect: %v", err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	stream, err := h.Clients.Entrypoint.Connect(ctx)
	if err != nil {
		cancel()
		t.Fatalf("plugintest: Connect: %v", err)
	}
	if err := stream.Send(open); err != nil {
		cancel()
		t.Fatalf("plugintest: Connect: send Open: %v", err)
	}
	e := &Exchange{stream: stream, ctx: ctx, cancel: cancel, actions: make(chan Action)}
	go e.receive()
	t.Cleanup(e.Close)
	return e
}

// Exchange is the core's side of one Connect stream.
type Exchange struct {
	stream  pluginv1.Entrypoint_ConnectClient
	ctx     context.Context
	cancel  context.CancelFunc
	actions chan Action // closed when the stream ends

	sendMu sync.Mutex

	mu      sync.Mutex
	endErr  error
	granted int64
}

// ActionKind says which field of an Action is set.
type ActionKind int

// The kinds of actions an entrypoint takes. ActionNone is the zero value,
// returned when nothing arrived in time.
const (
	ActionNone ActionKind = iota
	ActionRespond
	ActionWrite
	ActionPublish
	ActionSubscribe
	ActionFinish
	// ActionEnd means the stream ended: Connect returned. Err holds the
	// status error when it returned one.
	ActionEnd
)

var actionNames = [...]string{"none", "respond", "write", "publish", "subscribe", "finish", "end"}

// String names the kind, for test failure messages.
func (k ActionKind) String() string {
	if k >= 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// RespondAction is entrypoint.Conn.Respond.
type RespondAction struct {
	// Status is the HTTP status.
	Status int
	// Headers are the response headers.
	Headers gateway.Headers
	// Body is the whole body, for a non-streaming response.
	Body []byte
}

// WriteAction is entrypoint.Conn.Write.
type WriteAction struct {
	// Chunks are the framed chunks.
	Chunks [][]byte
	// Text marks WebSocket text frames.
	Text bool
	// AckThrough acknowledges delivered messages up to this tag (0 for none).
	AckThrough uint64
}

// PublishAction is entrypoint.Conn.Publish.
type PublishAction struct {
	// BatchID is the id the plugin expects in the Published event.
	BatchID uint64
	// Messages are the batch.
	Messages []*gateway.Message
	// ThenFinish is set by PublishThenFinish: the response the core sends
	// once the batch is published. The plugin expects no Published event.
	ThenFinish *entrypoint.Finish
}

// SubscribeAction is entrypoint.Conn.Subscribe.
type SubscribeAction struct {
	// QoS is the requested QoS.
	QoS string
	// LastID is the client's last seen id.
	LastID string
	// Limit is the message limit hint.
	Limit int64
}

// Action is one Connect response, converted to Go.
type Action struct {
	// Kind says which field is set.
	Kind ActionKind
	// Respond for ActionRespond.
	Respond RespondAction
	// Write for ActionWrite.
	Write WriteAction
	// Publish for ActionPublish.
	Publish PublishAction
	// Subscribe for ActionSubscribe.
	Subscribe SubscribeAction
	// Finish for ActionFinish. Status, Headers and Body are set when the
	// Finish carried a final response.
	Finish entrypoint.Finish
	// Err for ActionEnd: nil when Connect returned nil.
	Err error
}

// actionFromWire converts a Connect response; ok is false for kinds this SDK
// does not know.
func actionFromWire(r *pluginv1.Connect_Response) (a Action, ok bool) {
	switch k := r.GetKind().(type) {
	case *pluginv1.Connect_Response_Respond:
		a.Kind = ActionRespond
		a.Respond = RespondAction{
			Status:  int(k.Respond.GetStatus()),
			Headers: wire.HeadersFromWire(k.Respond.GetHeaders()),
			Body:    k.Respond.GetBody(),
		}
	case *pluginv1.Connect_Response_Write:
		a.Kind = ActionWrite
		a.Write = WriteAction{Chunks: k.Write.GetChunks(), Text: k.Write.GetText(), AckThrough: k.Write.GetAckThrough()}
	case *pluginv1.Connect_Response_Publish:
		a.Kind = ActionPublish
		a.Publish = PublishAction{BatchID: k.Publish.GetBatchId(), Messages: wire.MessagesFromWire(k.Publish.GetMessages())}
		if r := k.Publish.GetThenRespond(); r != nil {
			a.Publish.ThenFinish = &entrypoint.Finish{Status: int(r.GetStatus()), Headers: wire.HeadersFromWire(r.GetHeaders()), Body: r.GetBody()}
		}
	case *pluginv1.Connect_Response_Subscribe:
		a.Kind = ActionSubscribe
		a.Subscribe = SubscribeAction{QoS: k.Subscribe.GetQos(), LastID: k.Subscribe.GetLastId(), Limit: k.Subscribe.GetLimit()}
	case *pluginv1.Connect_Response_Finish:
		a.Kind = ActionFinish
		a.Finish = wire.FinishFromWire(k.Finish)
	default:
		return a, false
	}
	return a, true
}

func (e *Exchange) receive() {
	defer close(e.actions)
	for {
		r, err := e.stream.Recv()
		if err != nil {
			if err != io.EOF && e.ctx.Err() == nil {
				e.mu.Lock()
				e.endErr = err
				e.mu.Unlock()
			}
			return
		}
		if c := r.GetCredit(); c != nil {
			// Credit is bookkeeping, not an action a test waits for.
			e.mu.Lock()
			e.granted += c.GetBytes()
			e.mu.Unlock()
			continue
		}
		a, ok := actionFromWire(r)
		if !ok {
			continue
		}
		select {
		case e.actions <- a:
		case <-e.ctx.Done():
			return
		}
	}
}

// Granted is the inbound credit the plugin granted so far with
// Conn.GrantInbound, in bytes.
func (e *Exchange) Granted() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.granted
}

// Send converts ev to a Connect request and sends it; the plugin receives it
// on entrypoint.Conn.Events. An event sent after the exchange ended is
// dropped, as it would be by the core.
func (e *Exchange) Send(t testing.TB, ev entrypoint.Event) {
	t.Helper()
	r, err := wire.EventToWire(ev)
	if err != nil {
		t.Fatalf("plugintest: Send: %v", err)
	}
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	if err := e.stream.Send(r); err != nil && !streamGone(err) {
		t.Fatalf("plugintest: Send: %v", err)
	}
}

// CloseEvents half-closes the stream: the plugin's Events channel is closed
// once it has read what was sent, as when the core has nothing more to send.
func (e *Exchange) CloseEvents(t testing.TB) {
	t.Helper()
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	if err := e.stream.CloseSend(); err != nil {
		t.Fatalf("plugintest: CloseEvents: %v", err)
	}
}

// Next returns the plugin's next action; Kind is ActionNone when timeout
// passes and ActionEnd (repeatedly) once the stream has ended.
func (e *Exchange) Next(t testing.TB, timeout time.Duration) Action {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case a, ok := <-e.actions:
		if !ok {
			e.mu.Lock()
			defer e.mu.Unlock()
			return Action{Kind: ActionEnd, Err: e.endErr}
		}
		return a
	case <-timer.C:
		return Action{}
	}
}

// Expect returns the next action and fails the test unless it is of kind.
func (e *Exchange) Expect(t testing.TB, kind ActionKind, timeout time.Duration) Action {
	t.Helper()
	a := e.Next(t, timeout)
	if a.Kind != kind {
		if a.Kind == ActionEnd && a.Err != nil {
			t.Fatalf("plugintest: expected %v, the exchange ended with %v", kind, a.Err)
		}
		t.Fatalf("plugintest: expected %v, got %v", kind, a.Kind)
	}
	return a
}

// Close ends the stream from the core's side, which cancels the plugin's
// Connect context. It is idempotent.
func (e *Exchange) Close() { e.cancel() }
