package relay

import (
	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// EntrypointInstance is one configured entrypoint of an API. It is the
// relay's because the exchange runs on it; the server reads Match to choose
// it.
type EntrypointInstance struct {
	// Type is the entrypoint type (e.g. "sse").
	Type string
	// InstanceID addresses the configured instance in the plugin.
	InstanceID string
	// Plugin is the process serving the type.
	Plugin flow.PluginRef
	// Match is the type's match criteria from its metadata. An entrypoint
	// without one is never chosen for an HTTP request (e.g. webhook).
	Match *pluginv1.Match
	// InboundCredit is set when the type grants credit for client frames
	// (capability "inbound-credit"): the core then reads a WebSocket only as
	// far as the entrypoint has granted.
	InboundCredit bool
}

// EndpointInstance is a configured endpoint of an API.
type EndpointInstance struct {
	// Type is the endpoint type (e.g. "kafka").
	Type string
	// Name is the endpoint block's name (e.g. "default").
	Name string
	// InstanceID addresses the configured instance in the plugin.
	InstanceID string
	// Plugin is the process serving the type.
	Plugin flow.PluginRef
	// QoS are the levels the endpoint type serves; a subscription asking for
	// another level fails. Empty means any.
	QoS []string
	// OmitBody leaves the request body out of the contexts the instance
	// receives: set when it does not read it (lifecycle.ReadsRequestBody).
	OmitBody bool
}

// Request is what an exchange needs of a routed request: everything the
// server decided before any plugin saw it.
type Request struct {
	// API is the API's name, the api_id plugins see and the metrics' label.
	API string
	// Entrypoint is the entrypoint that runs the exchange.
	Entrypoint *EntrypointInstance
	// Endpoint is the API's endpoint; nil when the API cannot publish or
	// subscribe.
	Endpoint *EndpointInstance
	// Targets are the API's endpoints by name, the named targets an
	// entrypoint may publish to (a webhook's dead-letter endpoint).
	// Optional.
	Targets map[string]*EndpointInstance
	// Context is the request's context, fixed from here on: it is encoded
	// once, for the Open and every publish and subscribe request.
	Context *pluginv1.Context
	// Accept are the request's Accept values, for the failures the core
	// renders itself.
	Accept []string
	// Flows are the steps of the flows selected for the request.
	Flows *flow.Selection
	// Subscription, when set, is the push subscription (as JSON) a headless
	// exchange runs; the Open carries it.
	Subscription []byte
}
