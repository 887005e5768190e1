// Package entrypoint is the author API of entrypoint plugins: how clients talk
// (SSE, WebSocket, HTTP GET/POST). The core owns the socket; an entrypoint
// decides what an exchange does and frames every byte written.
//
// The contract, as the core drives it:
//
//  1. The lifecycle of sdk/lifecycle. The type's Match (in Metadata) tells the
//     core which requests it takes, without a call.
//  2. Connect is called once per client exchange, with the request snapshot
//     and the context after request-phase policies. It runs until it returns.
//  3. Through Conn the entrypoint responds (status, headers), writes framed
//     chunks, publishes messages, starts a subscription and finishes. Events
//     from the core (inbound frames, delivered messages, publish results,
//     endpoint failures, the end of the client) arrive on Conn.Events.
//  4. Writes carry acknowledgements: once a Write with AckThrough is on the
//     wire, the endpoint may commit every message up to that tag.
//  5. When the gateway stops, the core sends End with Stopping set and
//     gives the exchange a grace period before it cancels ctx: that is the
//     time to tell the client to reconnect elsewhere and to Finish.
package entrypoint

import (
	"context"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// Open starts one client exchange.
type Open struct {
	// InstanceID is the configured instance.
	InstanceID string
	// Context is the client's context after request-phase policies.
	Context *gateway.Context
	// Subscription is set when the core opens the exchange itself, with no
	// client socket behind it (a webhook push subscription): the
	// subscription block's values as JSON (snake_case attribute and block
	// names). Such an exchange has no client to respond to: what it writes
	// is read by the core, and acknowledgements work as for a socket.
	// Empty for client requests.
	Subscription []byte
}

// TargetPublisher is implemented by the Conn of gateways that can publish to
// an API endpoint other than the first one (protocol v1.2). An entrypoint
// that needs it (a webhook's dead-letter endpoint) checks for it with a type
// assertion, so older gateways and test doubles keep working.
type TargetPublisher interface {
	// PublishTo is Conn.Publish to the API endpoint named endpoint (an
	// endpoint block's name label); "" is the API's first endpoint. The
	// result arrives as a Published event with the returned batch id.
	PublishTo(endpoint string, messages []*gateway.Message) (batchID uint64, err error)
}

// CapabilityInboundCredit is the type capability of an entrypoint that
// grants the core credit for client frames (Conn.GrantInbound); without it
// the core sends Inbound events as fast as the client writes.
const CapabilityInboundCredit = "inbound-credit"

// InitialInboundCredit is the credit, in bytes of client frames, an
// exchange of a CapabilityInboundCredit type starts with.
const InitialInboundCredit = 1 << 20

// EventKind says what an Event carries.
type EventKind int

// The kinds of events the core sends.
const (
	// Inbound carries WebSocket frames from the client.
	Inbound EventKind = iota + 1
	// Deliver carries messages from the endpoint, after subscribe policies.
	Deliver
	// Published answers Conn.Publish for BatchID; Failure is set on failure.
	Published
	// Ready carries the endpoint's starting position in Cursor.
	Ready
	// EndpointFailure carries a request-level failure of the endpoint.
	EndpointFailure
	// End says the client went away (ClientGone), the endpoint stream ended,
	// or the gateway is stopping (Stopping).
	End
)

// Frame is one WebSocket message.
type Frame struct {
	// Data is the payload.
	Data []byte
	// Text is true for text frames.
	Text bool
}

// Event is something that happened on the core's side of an exchange.
type Event struct {
	// Kind says which fields are set.
	Kind EventKind
	// Frames for Inbound.
	Frames []Frame
	// Messages for Deliver.
	Messages []*gateway.Message
	// BatchID for Published.
	BatchID uint64
	// Failure for Published (when the batch failed) and EndpointFailure.
	Failure *gateway.Failure
	// Cursor for Ready.
	Cursor string
	// ClientGone for End: nothing written reaches the client any more.
	ClientGone bool
	// Stopping for End: the gateway is stopping, so the exchange should tell
	// its client to reconnect (to another instance, or to this one once it
	// is back) and finish. The core cancels the exchange after its grace
	// period, so whatever the entrypoint writes must go out promptly.
	Stopping bool
}

// Finish ends an exchange.
type Finish struct {
	// CloseCode and Reason close a WebSocket (e.g. 1000 "Bye").
	CloseCode int
	// Reason is the WebSocket close reason.
	Reason string
	// Status, Headers and Body, when Status is set and nothing was responded
	// yet, are sent as the whole response.
	Status int
	// Headers of the final response.
	Headers gateway.Headers
	// Body of the final response.
	Body []byte
}

// Conn is the entrypoint's side of one exchange. Its methods are safe for use
// from one goroutine at a time.
type Conn interface {
	// Events yields what happens on the core's side; it is closed when the
	// exchange ends.
	Events() <-chan Event
	// Respond sets the status and headers of a streaming response, or, with a
	// body, sends a whole response.
	Respond(status int, headers gateway.Headers, body []byte) error
	// Write sends chunks: concatenated and flushed for HTTP, one frame each for
	// WebSocket. ackThrough (0 for none) acknowledges delivered messages once
	// the chunks are written.
	Write(chunks [][]byte, text bool, ackThrough uint64) error
	// Publish sends messages to the endpoint; the result arrives as a
	// Published event with the returned batch id.
	Publish(messages []*gateway.Message) (batchID uint64, err error)
	// PublishThenFinish sends messages to the endpoint as the exchange's
	// last action: once they are accepted the core answers the client with
	// success (its Status, Headers and Body); if publishing fails it
	// answers with the gateway's failure response (the failure's status,
	// 503 when it has none), rendered as httpfailure.Response does. No
	// Published event follows; the entrypoint returns from Connect. It saves
	// a round trip per request over Publish, Published and Finish.
	PublishThenFinish(messages []*gateway.Message, success Finish) error
	// GrantInbound lets the core read bytes more of client frames (Inbound
	// events) for this exchange; a frame costs its length plus one. It matters only for a type with the
	// CapabilityInboundCredit capability, which starts with
	// InitialInboundCredit: the entrypoint grants back what it has dealt
	// with (published), so a fast client is held back by TCP instead of
	// filling the entrypoint's memory.
	GrantInbound(bytes int) error
	// Subscribe starts the endpoint subscription.
	Subscribe(qos, lastID string, limit int64) error
	// Finish ends the exchange.
	Finish(f Finish) error
}

// Entrypoint is implemented by entrypoint plugins.
type Entrypoint interface {
	lifecycle.Plugin
	// Connect runs one exchange until it returns.
	Connect(ctx context.Context, open *Open, conn Conn) error
}
