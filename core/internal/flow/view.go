package flow

import (
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// view is what the core's own EL (flow and step conditions) sees of one
// exchange. The SDK's wire converters are internal to the SDK module, so the
// core converts the few fields EL reads itself, lazily: a chain whose steps
// have no condition never builds a view.
type view struct {
	c   *pluginv1.Context
	req *gateway.Request
	env el.Env
	// attrsFor is the attribute map env.Attributes was built from, so a
	// request-phase step that changed the attributes is seen by the next
	// condition.
	attrsFor map[string]*structpb.Value
	// headersFor is the request header list req.Headers was built from, so
	// a step that changed the request headers is seen by the next
	// condition.
	headersFor []*pluginv1.Header
}

func newView(c *pluginv1.Context) *view {
	v := &view{c: c}
	r := c.GetRequest()
	if r != nil {
		v.req = &gateway.Request{
			ID:               r.GetId(),
			TransactionID:    r.GetTransactionId(),
			ClientIdentifier: r.GetClientIdentifier(),
			Method:           r.GetMethod(),
			Path:             r.GetPath(),
			ContextPath:      r.GetContextPath(),
			PathInfo:         r.GetPathInfo(),
			Headers:          headersFromWire(r.GetHeaders()),
			Params:           map[string][]string(headersFromWire(r.GetParams())),
			PathParams:       r.GetPathParams(),
			RemoteAddress:    r.GetRemoteAddress(),
			Body:             r.GetBody(),
			WebSocket:        r.GetWebsocket(),
		}
	}
	v.headersFor = r.GetHeaders()
	v.env = el.Env{Request: v.req, API: map[string]any{"id": c.GetApiId()}}
	v.refreshAttributes()
	return v
}

// refresh brings the view up to date with the context after a step ran: its
// attributes, and the request headers when a step replaced them.
func (v *view) refresh() {
	v.refreshAttributes()
	if v.req != nil {
		if hs := v.c.GetRequest().GetHeaders(); !sameHeaders(v.headersFor, hs) {
			v.req.Headers = headersFromWire(hs)
			v.headersFor = hs
		}
	}
}

// sameHeaders reports whether two header lists are the same list: steps
// never change one in place (ChangeHeaders makes a new one).
func sameHeaders(a, b []*pluginv1.Header) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (v *view) setPathParams(p map[string]string) {
	if v.req != nil {
		v.req.PathParams = p
	}
}

// refreshAttributes rebuilds the attributes EL sees when the context's map
// was replaced or changed size since the last build. ApplyAttributes writes
// into the same map, so its size and the values are checked too.
func (v *view) refreshAttributes() {
	attrs := v.c.GetAttributes()
	if v.env.Attributes != nil && sameAttrs(v.attrsFor, attrs) {
		return
	}
	v.env.Attributes = mapFromWire(attrs)
	v.attrsFor = make(map[string]*structpb.Value, len(attrs))
	for k, x := range attrs {
		v.attrsFor[k] = x
	}
}

func sameAttrs(a, b map[string]*structpb.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range b {
		if a[k] != x {
			return false
		}
	}
	return true
}

// test evaluates a condition with m as #message (nil outside message
// phases). Only true selects; a failed evaluation is logged and counts as
// false.
func (v *view) test(t *el.Template, m *gateway.Message, what string) bool {
	env := v.env
	env.Message = m
	out, err := t.Eval(env)
	if err != nil {
		conditionFailed(what, t, err)
		return false
	}
	return truthy(out)
}

// truthy is true for the boolean true and for the text "true" (a condition
// that mixes text and EL evaluates to a string).
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(strings.TrimSpace(x), "true")
	}
	return false
}

// conditionLog throttles condition failures: a failing message_condition
// fails for every message, and one line per step a minute says enough.
var conditionLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func conditionFailed(what string, t *el.Template, err error) {
	key := what + "\x00" + t.Source()
	now := time.Now()
	conditionLog.mu.Lock()
	if conditionLog.last == nil {
		conditionLog.last = map[string]time.Time{}
	}
	prev, seen := conditionLog.last[key]
	if seen && now.Sub(prev) < time.Minute {
		conditionLog.mu.Unlock()
		return
	}
	if len(conditionLog.last) > 1024 {
		clear(conditionLog.last)
	}
	conditionLog.last[key] = now
	conditionLog.mu.Unlock()
	slog.Warn("condition could not be evaluated; treated as false", "where", what, "condition", t.Source(), "error", err.Error())
}

// messageUse says which message fields a message condition may read, so the
// per-message conversion builds only those maps. It looks at the template's
// source: a field the source never names cannot be read.
type messageUse struct {
	headers, metadata, attributes bool
}

func messageUseOf(t *el.Template) messageUse {
	src := strings.ToLower(t.Source())
	return messageUse{
		headers:    strings.Contains(src, "header"),
		metadata:   strings.Contains(src, "metadata"),
		attributes: strings.Contains(src, "attribute"),
	}
}

// messageFromWire fills m from w, building the maps u asks for. Content and
// header values are shared with w, never copied.
func messageFromWire(m *gateway.Message, w *pluginv1.Message, u messageUse) {
	*m = gateway.Message{ID: w.GetId(), Content: w.GetContent(), Tag: w.GetTag()}
	if u.headers {
		m.Headers = headersFromWire(w.GetHeaders())
	}
	if u.metadata {
		m.Metadata = mapFromWire(w.GetMetadata())
	}
	if u.attributes {
		m.Attributes = mapFromWire(w.GetAttributes())
	}
	if f := w.GetError(); f != nil {
		m.Error = &gateway.Failure{Status: int(f.GetStatus()), Key: f.GetKey(), Message: f.GetMessage()}
	}
}

func headersFromWire(hs []*pluginv1.Header) gateway.Headers {
	if len(hs) == 0 {
		return nil
	}
	out := make(gateway.Headers, len(hs))
	for _, h := range hs {
		if prev, ok := out[h.GetName()]; ok {
			out[h.GetName()] = append(prev[:len(prev):len(prev)], h.GetValues()...)
			continue
		}
		out[h.GetName()] = h.GetValues()
	}
	return out
}

func mapFromWire(m map[string]*structpb.Value) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = valueFromWire(v, 0)
	}
	return out
}

// valueFromWire follows the SDK's rule, so a condition sees the same Go
// values as a plugin would: integral numbers within ±2^53 are int64.
func valueFromWire(v *structpb.Value, depth int) any {
	if v == nil || depth > 32 {
		return nil
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if f >= -(1<<53) && f <= 1<<53 && f == math.Trunc(f) {
			return int64(f)
		}
		return f
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_ListValue:
		vals := k.ListValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = valueFromWire(e, depth+1)
		}
		return out
	case *structpb.Value_StructValue:
		fields := k.StructValue.GetFields()
		out := make(map[string]any, len(fields))
		for name, e := range fields {
			out[name] = valueFromWire(e, depth+1)
		}
		return out
	}
	return nil
}
