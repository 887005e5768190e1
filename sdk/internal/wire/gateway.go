package wire

import (
	"fmt"
	"slices"

	"github.com/sluice-gw/sluice/sdk/gateway"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// headerChunk is how many wire headers an encoder allocates at once.
const headerChunk = 64

// encoder carries scratch space and backing arrays across the messages of one
// batch, so a batch costs a few allocations instead of a few per message.
type encoder struct {
	values slab
	names  []string
	hdrs   []pluginv1.Header
	ptrs   []*pluginv1.Header
}

// headers converts h to its wire list, sorted by name so the encoding is
// deterministic. Each header's values keep their order and are aliased.
func (e *encoder) headers(h map[string][]string) []*pluginv1.Header {
	n := len(h)
	if n == 0 {
		return nil
	}
	e.names = e.names[:0]
	for k := range h {
		e.names = append(e.names, k)
	}
	if n > 1 {
		slices.Sort(e.names)
	}
	if cap(e.hdrs)-len(e.hdrs) < n {
		e.hdrs = make([]pluginv1.Header, 0, max(n, headerChunk))
		e.ptrs = make([]*pluginv1.Header, 0, max(n, headerChunk))
	}
	start := len(e.ptrs)
	for _, k := range e.names {
		i := len(e.hdrs)
		e.hdrs = e.hdrs[:i+1]
		w := &e.hdrs[i]
		w.Name = k
		w.Values = h[k]
		e.ptrs = append(e.ptrs, w)
	}
	// The full slice expression stops a caller's append from writing into
	// the next message's headers.
	return e.ptrs[start:len(e.ptrs):len(e.ptrs)]
}

// HeadersToWire converts headers (or query parameters) to the wire list,
// sorted by name. Values are aliased, in order.
func HeadersToWire(h map[string][]string) []*pluginv1.Header {
	var e encoder
	return e.headers(h)
}

// HeadersFromWire converts a wire header list back to a map. Values are
// aliased; a name listed twice gets the values of both entries, in order.
// An empty list is nil.
func HeadersFromWire(hs []*pluginv1.Header) gateway.Headers {
	if len(hs) == 0 {
		return nil
	}
	out := make(gateway.Headers, len(hs))
	for _, w := range hs {
		if prev, ok := out[w.GetName()]; ok {
			out[w.GetName()] = append(prev[:len(prev):len(prev)], w.GetValues()...)
			continue
		}
		out[w.GetName()] = w.GetValues()
	}
	return out
}

// paramsFromWire is HeadersFromWire for a plain map type.
func paramsFromWire(hs []*pluginv1.Header) map[string][]string {
	return map[string][]string(HeadersFromWire(hs))
}

// FailureToWire converts a failure; nil is nil.
func FailureToWire(f *gateway.Failure) *pluginv1.Failure {
	if f == nil {
		return nil
	}
	return &pluginv1.Failure{
		Status:       int32(f.Status),
		Key:          f.Key,
		Message:      f.Message,
		Retriable:    f.Retriable,
		RequestLevel: f.RequestLevel,
	}
}

// FailureFromWire converts a failure; nil is nil.
func FailureFromWire(f *pluginv1.Failure) *gateway.Failure {
	if f == nil {
		return nil
	}
	return &gateway.Failure{
		Status:       int(f.GetStatus()),
		Key:          f.GetKey(),
		Message:      f.GetMessage(),
		Retriable:    f.GetRetriable(),
		RequestLevel: f.GetRequestLevel(),
	}
}

// MessagesToWire converts a batch. Nil messages are skipped. Content and
// header values are aliased.
func MessagesToWire(msgs []*gateway.Message) ([]*pluginv1.Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	var e encoder
	backing := make([]pluginv1.Message, len(msgs))
	out := make([]*pluginv1.Message, 0, len(msgs))
	for i, m := range msgs {
		if m == nil {
			continue
		}
		w := &backing[i]
		if err := e.message(w, m); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// MessageToWire converts one message.
func MessageToWire(m *gateway.Message) (*pluginv1.Message, error) {
	if m == nil {
		return nil, nil
	}
	var e encoder
	w := &pluginv1.Message{}
	if err := e.message(w, m); err != nil {
		return nil, err
	}
	return w, nil
}

func (e *encoder) message(w *pluginv1.Message, m *gateway.Message) error {
	w.Id = m.ID
	w.Content = m.Content
	w.Headers = e.headers(m.Headers)
	w.Tag = m.Tag
	w.Error = FailureToWire(m.Error)
	var err error
	if w.Metadata, err = e.values.mapToWire(m.Metadata); err != nil {
		return fmt.Errorf("metadata %w", err)
	}
	if w.Attributes, err = e.values.mapToWire(m.Attributes); err != nil {
		return fmt.Errorf("attribute %w", err)
	}
	return nil
}

// MessagesFromWire converts a batch. Nil entries are skipped. Content and
// header values are aliased. An empty batch is nil.
func MessagesFromWire(ws []*pluginv1.Message) []*gateway.Message {
	if len(ws) == 0 {
		return nil
	}
	backing := make([]gateway.Message, len(ws))
	out := make([]*gateway.Message, 0, len(ws))
	for i, w := range ws {
		if w == nil {
			continue
		}
		m := &backing[i]
		messageFromWire(m, w)
		out = append(out, m)
	}
	return out
}

// MessageFromWire converts one message; nil is nil.
func MessageFromWire(w *pluginv1.Message) *gateway.Message {
	if w == nil {
		return nil
	}
	m := &gateway.Message{}
	messageFromWire(m, w)
	return m
}

func messageFromWire(m *gateway.Message, w *pluginv1.Message) {
	m.ID = w.GetId()
	m.Content = w.GetContent()
	m.Headers = HeadersFromWire(w.GetHeaders())
	m.Metadata = MapFromWire(w.GetMetadata())
	m.Attributes = MapFromWire(w.GetAttributes())
	m.Error = FailureFromWire(w.GetError())
	m.Tag = w.GetTag()
}

// RequestToWire converts a request snapshot; nil is nil.
func RequestToWire(r *gateway.Request) *pluginv1.Request {
	if r == nil {
		return nil
	}
	var e encoder
	return &pluginv1.Request{
		Id:               r.ID,
		TransactionId:    r.TransactionID,
		ClientIdentifier: r.ClientIdentifier,
		Method:           r.Method,
		Path:             r.Path,
		ContextPath:      r.ContextPath,
		PathInfo:         r.PathInfo,
		Headers:          e.headers(r.Headers),
		Params:           e.headers(r.Params),
		PathParams:       r.PathParams,
		RemoteAddress:    r.RemoteAddress,
		Body:             r.Body,
		Websocket:        r.WebSocket,
	}
}

// RequestFromWire converts a request snapshot; nil is nil.
func RequestFromWire(w *pluginv1.Request) *gateway.Request {
	if w == nil {
		return nil
	}
	pp := w.GetPathParams()
	if len(pp) == 0 {
		pp = nil
	}
	return &gateway.Request{
		ID:               w.GetId(),
		TransactionID:    w.GetTransactionId(),
		ClientIdentifier: w.GetClientIdentifier(),
		Method:           w.GetMethod(),
		Path:             w.GetPath(),
		ContextPath:      w.GetContextPath(),
		PathInfo:         w.GetPathInfo(),
		Headers:          HeadersFromWire(w.GetHeaders()),
		Params:           paramsFromWire(w.GetParams()),
		PathParams:       pp,
		RemoteAddress:    w.GetRemoteAddress(),
		Body:             w.GetBody(),
		WebSocket:        w.GetWebsocket(),
	}
}

// ContextToWire converts a context; nil is nil.
func ContextToWire(c *gateway.Context) (*pluginv1.Context, error) {
	if c == nil {
		return nil, nil
	}
	attrs, err := MapToWire(c.Attributes)
	if err != nil {
		return nil, fmt.Errorf("context attribute %w", err)
	}
	return &pluginv1.Context{ApiId: c.APIID, Request: RequestToWire(c.Request), Attributes: attrs}, nil
}

// ContextFromWire converts a context. A missing context decodes to an empty
// one rather than nil, so plugin code can always read c.Request and
// c.Attributes through their nil-safe accessors.
func ContextFromWire(w *pluginv1.Context) *gateway.Context {
	if w == nil {
		return &gateway.Context{}
	}
	return &gateway.Context{
		APIID:      w.GetApiId(),
		Request:    RequestFromWire(w.GetRequest()),
		Attributes: MapFromWire(w.GetAttributes()),
	}
}
