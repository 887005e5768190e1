// Package policy is the author API of policy plugins: what runs between
// entrypoint and endpoint.
//
// The contract, as the core drives it:
//
//  1. The lifecycle of sdk/lifecycle; Metadata lists the phases a type supports.
//  2. OnRequest runs once per request in the request phase (before the
//     entrypoint is opened) and, for types that declare it, in the response
//     phase (once the endpoint is connected, before the response headers are
//     written), in flow order. It may set context attributes, change the
//     request headers (request phase) or the response headers (response
//     phase), or interrupt the request.
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
	// Phase is PhaseRequest or PhaseResponse. Cores before protocol v1.3
	// run the request phase only; the SDK reports PhaseRequest for them.
	Phase string
	// Context is the request's context so far.
	Context *gateway.Context
	// ResponseStatus is the HTTP status about to be written (response phase
	// only; 0 in the request phase).
	ResponseStatus int
	// ResponseHeaders are the response headers so far: the entrypoint's and
	// the gateway's own (response phase only; nil in the request phase).
	ResponseHeaders gateway.Headers
}

// RequestResult is the output of OnRequest.
type RequestResult struct {
	// SetAttributes are context attributes to set; a nil value removes one.
	SetAttributes map[string]any
	// Interrupt, when set, stops the request with this failure. In the
	// response phase the failure is answered instead of the response.
	Interrupt *gateway.Failure
	// SetHeaders are headers to set: each replaces every value of its name,
	// whatever its spelling. They apply to the request headers in the
	// request phase (so the entrypoint and the endpoint see them) and to the
	// response headers in the response phase. Cores before protocol v1.3
	// ignore them.
	SetHeaders gateway.Headers
	// RemoveHeaders are header names to remove, ignoring case, applied
	// before SetHeaders, to the same headers.
	RemoveHeaders []string
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
	// OnRequest runs in the request and response phases; in.Phase says
	// which.
	OnRequest(ctx context.Context, in *RequestPhase, out *RequestResult) error
	// OnMessages runs in the publish or subscribe phase and returns the
	// messages to pass on. A *gateway.Failure error interrupts the batch.
	OnMessages(ctx context.Context, in *MessagesPhase) ([]*gateway.Message, error)
}
