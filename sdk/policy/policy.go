// Package policy is the author API of policy plugins: what runs between
// entrypoint and endpoint.
//
// The contract, as the core drives it:
//
//  1. The lifecycle of sdk/lifecycle; Metadata lists the phases a type supports.
//  2. OnRequest runs once per request in the request phase, in flow order. It
//     may set context attributes or interrupt the request.
//  3. OnMessages runs per batch in the publish and subscribe phases. It returns
//     the messages to pass on, or a failure that interrupts the batch.
package policy

import (
	"context"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// Phases a policy can run in.
const (
	PhaseRequest   = "request"
	PhaseResponse  = "response"
	PhasePublish   = "publish"
	PhaseSubscribe = "subscribe"
)

// RequestPhase is the input of OnRequest.
type RequestPhase struct {
	// InstanceID is the configured instance.
	InstanceID string
	// Context is the request's context so far.
	Context *gateway.Context
}

// RequestResult is the output of OnRequest.
type RequestResult struct {
	// SetAttributes are context attributes to set; a nil value removes one.
	SetAttributes map[string]any
	// Interrupt, when set, stops the request with this failure.
	Interrupt *gateway.Failure
}

// MessagesPhase is the input of OnMessages.
type MessagesPhase struct {
	// InstanceID is the configured instance.
	InstanceID string
	// Phase is PhasePublish or PhaseSubscribe.
	Phase string
	// Context is the exchange's context.
	Context *gateway.Context
	// Messages is the batch; the policy may change them in place.
	Messages []*gateway.Message
}

// Policy is implemented by policy plugins.
type Policy interface {
	lifecycle.Plugin
	// OnRequest runs in the request phase.
	OnRequest(ctx context.Context, in *RequestPhase, out *RequestResult) error
	// OnMessages runs in the publish or subscribe phase and returns the
	// messages to pass on. A *gateway.Failure error interrupts the batch.
	OnMessages(ctx context.Context, in *MessagesPhase) ([]*gateway.Message, error)
}
