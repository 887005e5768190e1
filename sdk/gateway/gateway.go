// Package gateway holds the plain Go types that plugin authors work with: the
// incoming request as the core saw it, the per-request context, messages and
// failures. They are converted to and from the wire protocol by the SDK, so
// plugin code never touches generated protobuf types.
package gateway

import "strings"

// Headers maps a header name to its values, in arrival order. Lookups through
// Get and Values ignore case, as HTTP does.
type Headers map[string][]string

// Get returns the first value of the named header, ignoring case, or "".
func (h Headers) Get(name string) string {
	if v := h.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of the named header, ignoring case.
func (h Headers) Values(name string) []string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Add appends a value to the named header, keeping the first spelling seen.
func (h Headers) Add(name, value string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			h[k] = append(h[k], value)
			return
		}
	}
	h[name] = append(h[name], value)
}

// Clone returns a deep copy.
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	out := make(Headers, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Request is a snapshot of the client's HTTP request, copied by the core before
// any streaming starts, so it stays valid for the whole exchange.
type Request struct {
	// ID is the request id (X-Gravitee-Request-Id).
	ID string
	// TransactionID is the transaction id (X-Gravitee-Transaction-Id).
	TransactionID string
	// ClientIdentifier is the computed client identifier (docs/behaviour.md 2.3);
	// Kafka uses it as the consumer group.
	ClientIdentifier string
	// Method is the HTTP method in upper case.
	Method string
	// Path is the full request path, starting with the context path.
	Path string
	// ContextPath is the API's context path that matched.
	ContextPath string
	// PathInfo is Path with ContextPath removed.
	PathInfo string
	// Headers are the request headers.
	Headers Headers
	// Params are the query parameters.
	Params map[string][]string
	// PathParams are named path segments, when the API declares any.
	PathParams map[string]string
	// RemoteAddress is the TCP peer host, without port or IPv6 zone.
	RemoteAddress string
	// Body is the request body when the entrypoint reads it whole (HTTP POST).
	Body []byte
	// WebSocket is true when the request is a WebSocket upgrade.
	WebSocket bool
}

// Context is what a plugin sees of one client exchange: the request and the
// context attributes set so far by request-phase policies and the core.
type Context struct {
	// APIID is the name of the API block in gateway.hcl.
	APIID string
	// Request is the request snapshot.
	Request *Request
	// Attributes are the context attributes (gravitee.attribute.* and others).
	Attributes map[string]any
}

// Attribute returns a context attribute, or nil.
func (c *Context) Attribute(name string) any {
	if c == nil || c.Attributes == nil {
		return nil
	}
	return c.Attributes[name]
}

// Message is one unit of data on the message path.
type Message struct {
	// ID is empty unless the QoS gives messages ids (at-most-once, at-least-once).
	ID string
	// Content is the payload.
	Content []byte
	// Headers are the message headers (Kafka record headers, or copied request headers).
	Headers Headers
	// Metadata describes where the message came from: key, topic, partition,
	// offset, sourceTimestamp for Kafka records.
	Metadata map[string]any
	// Attributes are per-message attributes set by policies.
	Attributes map[string]any
	// Error, when set, makes this an error message: it reports a failure on the
	// stream instead of carrying data, and each entrypoint renders it its own way.
	Error *Failure
	// Tag identifies the message within one subscription, for acknowledgement.
	// Plugins copy it through unchanged; zero means "no ack needed".
	Tag uint64
}

// Attribute returns a message attribute, or nil.
func (m *Message) Attribute(name string) any {
	if m == nil || m.Attributes == nil {
		return nil
	}
	return m.Attributes[name]
}

// SetAttribute sets a message attribute.
func (m *Message) SetAttribute(name string, v any) {
	if m.Attributes == nil {
		m.Attributes = map[string]any{}
	}
	m.Attributes[name] = v
}

// Failure is an execution failure in the reference's shape: an HTTP status, a
// machine-readable key, and a message for humans.
type Failure struct {
	// Status is the HTTP status to use when the failure reaches the client.
	Status int
	// Key names the failure class, e.g. FAILURE_ENDPOINT_CONFIGURATION_INVALID.
	Key string
	// Message is the human-readable text.
	Message string
	// Retriable says whether retrying the same request may succeed.
	Retriable bool
	// RequestLevel failures end the whole request with Status (e.g. the 500
	// "Invalid configuration" of dynamic configuration); others are reported
	// on the message or stream they concern.
	RequestLevel bool
}

// Error makes a Failure usable as an error.
func (f *Failure) Error() string {
	if f.Key != "" {
		return f.Key + ": " + f.Message
	}
	return f.Message
}
