// Package endpoint is the author API of endpoint plugins: the side that reaches
// a backend (Kafka) to publish and subscribe.
//
// The contract, as the core drives it:
//
//  1. The lifecycle of sdk/lifecycle (Metadata, Validate, Configure...).
//  2. Publish is called for each batch of messages a client publishes, possibly
//     concurrently for different clients; batches of one client arrive one at a
//     time, in order. It returns once every message is accepted by the backend.
//  3. Subscribe is called once per client subscription and runs until its
//     context ends. It reports its starting position with Ready, then sends
//     batches; the client side acknowledges delivered messages by tag.
package endpoint

import (
	"context"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// QoS levels, as the reference spells them.
const (
	QoSNone        = "none"
	QoSAuto        = "auto"
	QoSAtMostOnce  = "at-most-once"
	QoSAtLeastOnce = "at-least-once"
)

// PublishRequest is one batch to publish.
type PublishRequest struct {
	// InstanceID is the configured instance.
	InstanceID string
	// Context is the publishing client's context (request and attributes).
	Context *gateway.Context
	// Messages are the batch, after publish-phase policies.
	Messages []*gateway.Message
}

// SubscribeRequest starts one client subscription.
type SubscribeRequest struct {
	// InstanceID is the configured instance.
	InstanceID string
	// Context is the subscribing client's context.
	Context *gateway.Context
	// QoS is one of the QoS constants.
	QoS string
	// LastID is the last message id the client saw (Last-Event-ID, cursor), or "".
	LastID string
	// Limit, when positive, is how many messages the client will take at most.
	Limit int64
}

// Subscription is the channel back to the client side of a subscription.
type Subscription interface {
	// Ready reports the position before anything is delivered, as a message
	// id (the client resumes from it when nothing is delivered).
	Ready(cursor string) error
	// Send delivers a batch. It blocks while the client side is slow, which is
	// how backpressure reaches the backend. Give each message a Tag that
	// increases within the subscription.
	Send(messages []*gateway.Message) error
	// Acks yields the highest tag the client side has delivered so far. It is
	// closed when the client side goes away.
	Acks() <-chan uint64
}

// Endpoint is implemented by endpoint plugins.
type Endpoint interface {
	lifecycle.Plugin
	// Publish sends one batch. A *gateway.Failure error reaches the client as
	// is (RequestLevel failures end the request); other errors become 500s.
	Publish(ctx context.Context, req *PublishRequest) error
	// Subscribe runs one subscription until ctx ends. A *gateway.Failure
	// returned before anything was sent ends the request with that failure;
	// failures on the way should be sent as error messages instead.
	Subscribe(ctx context.Context, req *SubscribeRequest, sub Subscription) error
}
