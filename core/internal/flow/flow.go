// Package flow runs an API's policy chains: the request and response phases
// as one unary OnRequest call per policy, the publish and subscribe phases as
// batches on one long-lived OnMessages stream per policy plugin process.
//
// A phase with no policy costs nothing: the engine returns before touching a
// plugin. Every transport failure becomes a *pluginv1.Failure through
// TransportFailure, so the HTTP status a client sees for a broken plugin is
// decided in one place.
package flow

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// The phases of a flow, as HCL and the protocol name them.
const (
	PhaseRequest   = "request"
	PhaseResponse  = "response"
	PhasePublish   = "publish"
	PhaseSubscribe = "subscribe"
)

// PluginRef is the core's view of one supervised plugin process. The plugin
// host implements it; the data path only needs the current clients and a
// signal when the process was replaced, so long-lived streams can be reopened.
type PluginRef interface {
	// Name is the plugin's name, used in error messages and as the key of its
	// long-lived streams.
	Name() string
	// Clients returns the gRPC clients of the running process, or an error
	// while the plugin is down (the data path answers 503 then).
	Clients() (*serve.Clients, error)
	// Up reports whether the process is running and configured.
	Up() bool
	// OnRestart registers f to be called after the process was restarted and
	// its instances re-configured.
	OnRestart(f func())
}

// PolicyInstance is one configured policy in a flow phase.
type PolicyInstance struct {
	// Type is the policy type (e.g. "policy-assign-attributes").
	Type string
	// InstanceID addresses the configured instance in the plugin.
	InstanceID string
	// Plugin is the process serving the type.
	Plugin PluginRef
	// Condition is the step's condition meta-argument (request and response
	// phases): the step runs for a request only when it is true. Optional. Default:
	// always.
	Condition *el.Template
	// MessageCondition is the step's message_condition meta-argument
	// (publish and subscribe phases): only the messages for which it is
	// true go to the plugin; the others pass on untouched. Optional.
	// Default: every message.
	MessageCondition *el.Template
	// OmitBody leaves the request body out of the contexts the step
	// receives: set when it does not read it (lifecycle.ReadsRequestBody).
	OmitBody bool

	useOnce sync.Once
	use     messageUse
}

// messageUse is computed once per step, not per batch.
func (p *PolicyInstance) messageUse() messageUse {
	p.useOnce.Do(func() { p.use = messageUseOf(p.MessageCondition) })
	return p.use
}

type messagesMux = Mux[*pluginv1.OnMessages_Request, *pluginv1.OnMessages_Response]

// Engine runs policy chains. It owns one OnMessages stream per policy plugin,
// shared by every API, request and batch. It is safe for concurrent use.
type Engine struct {
	mu     sync.Mutex
	muxes  map[string]*messagesMux
	closed bool
}

// NewEngine returns an engine with no stream open yet; streams open on the
// first batch a plugin has to handle.
func NewEngine() *Engine {
	return &Engine{muxes: map[string]*messagesMux{}}
}

// OnRequest runs the request phase: each policy in order, one unary call
// each, applying the attributes it sets to c before the next one runs, and
// its header changes to c's request headers, so the next policy, the
// entrypoint and the endpoint see the request as changed. A step whose
// condition is not true is skipped without calling its plugin; the condition
// sees the attributes and headers the steps before it set. It returns the
// first interrupt, or the failure of a plugin that could not be reached. ctx
// bounds every call.
func (e *Engine) OnRequest(ctx context.Context, policies []*PolicyInstance, c *pluginv1.Context) *pluginv1.Failure {
	return e.perRequest(ctx, PhaseRequest, policies, c, nil)
}

// Response is the response the response phase runs on: the status and the
// headers about to be written.
type Response struct {
	// Status is the HTTP status; 0 is 200.
	Status int32
	// Headers are the response headers so far, in order; the phase's
	// header changes are applied here.
	Headers []*pluginv1.Header
}

// OnResponse runs the response phase on r: each policy in order, one unary
// call each, after the endpoint connected and before the response headers
// are written. Header changes apply to r.Headers, attributes to c, before
// the next policy runs; conditions are as in OnRequest. It returns the first
// interrupt, which the caller answers instead of r. An empty chain returns
// without any call.
//
// c must be the caller's own: the core passes a copy of the exchange's
// context, whose publish and subscribe phases may be reading it meanwhile.
func (e *Engine) OnResponse(ctx context.Context, policies []*PolicyInstance, c *pluginv1.Context, r *Response) *pluginv1.Failure {
	return e.perRequest(ctx, PhaseResponse, policies, c, r)
}

// perRequest runs a per-request phase; r is nil in the request phase.
func (e *Engine) perRequest(ctx context.Context, phase string, policies []*PolicyInstance, c *pluginv1.Context, r *Response) *pluginv1.Failure {
	var v *view
	for _, p := range policies {
		if p == nil || p.Plugin == nil {
			return internalFailure("a " + phase + "-phase policy has no plugin")
		}
		if p.Condition != nil {
			if v == nil {
				v = newView(c)
			} else {
				v.refresh()
			}
			if !v.test(p.Condition, nil, phase+" policy "+p.Type) {
				continue
			}
		}
		clients, err := p.Plugin.Clients()
		if err != nil {
			return Unavailable(p.Plugin.Name())
		}
		req := &pluginv1.OnRequest_Request{InstanceId: p.InstanceID, Context: p.context(c), Phase: phase}
		if r != nil {
			req.ResponseStatus = r.Status
			req.ResponseHeaders = r.Headers
		}
		resp, err := clients.Policy.OnRequest(ctx, req)
		if err != nil {
			return TransportFailure(p.Plugin.Name(), err)
		}
		ApplyAttributes(c, resp.GetSetAttributes())
		if f := resp.GetInterrupt(); f != nil {
			return normalize(f)
		}
		if len(resp.GetSetHeaders()) == 0 && len(resp.GetRemoveHeaders()) == 0 {
			continue
		}
		if r != nil {
			r.Headers = ChangeHeaders(r.Headers, resp.GetRemoveHeaders(), resp.GetSetHeaders())
		} else if req := c.GetRequest(); req != nil {
			req.Headers = ChangeHeaders(req.Headers, resp.GetRemoveHeaders(), resp.GetSetHeaders())
		}
	}
	return nil
}

// ChangeHeaders returns hs with the names in remove taken out, then each
// entry of set replacing every value of its name; names match ignoring
// case, as HTTP's do. A set entry with no values only removes. hs is not
// changed: it may be shared with an encoded context or the caller.
func ChangeHeaders(hs []*pluginv1.Header, remove []string, set []*pluginv1.Header) []*pluginv1.Header {
	out := make([]*pluginv1.Header, 0, len(hs)+len(set))
	for _, h := range hs {
		if h == nil || namedIn(h.GetName(), remove) || setsName(set, h.GetName()) {
			continue
		}
		out = append(out, h)
	}
	for _, h := range set {
		if h == nil || h.GetName() == "" || len(h.GetValues()) == 0 {
			continue
		}
		out = append(out, &pluginv1.Header{Name: h.GetName(), Values: h.GetValues()})
	}
	return out
}

func namedIn(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func setsName(set []*pluginv1.Header, name string) bool {
	for _, h := range set {
		if h != nil && strings.EqualFold(h.GetName(), name) {
			return true
		}
	}
	return false
}

// ApplyAttributes sets attrs on c; a nil or null value removes the attribute,
// as the protocol says.
func ApplyAttributes(c *pluginv1.Context, attrs map[string]*structpb.Value) {
	if len(attrs) == 0 || c == nil {
		return
	}
	if c.Attributes == nil {
		c.Attributes = make(map[string]*structpb.Value, len(attrs))
	}
	for k, v := range attrs {
		if v == nil {
			delete(c.Attributes, k)
			continue
		}
		if _, null := v.GetKind().(*structpb.Value_NullValue); null {
			delete(c.Attributes, k)
			continue
		}
		c.Attributes[k] = v
	}
}

// OnMessages runs a publish or subscribe phase over one batch: each policy in
// order gets the messages the previous one passed on. It returns the messages
// to pass on, or the first interrupt. An empty chain returns msgs unchanged
// without any call.
//
// A step with a message_condition sees only the messages for which it is
// true; the others keep their place in the batch, untouched, and a batch in
// which no message passes skips the step's plugin altogether.
//
// In the subscribe phase, when steps dropped the last messages of the batch,
// the last message passed on takes the highest delivery tag of the batch:
// tags are cumulative (writing a message acknowledges every tag up to its
// own), so writing it also acknowledges the dropped ones, and the consumer's
// committed position moves past them instead of replaying them to the next
// subscriber of the group.
func (e *Engine) OnMessages(ctx context.Context, phase string, policies []*PolicyInstance, c *pluginv1.Context, msgs []*pluginv1.Message) ([]*pluginv1.Message, *pluginv1.Failure) {
	var maxTag uint64
	if phase == PhaseSubscribe {
		maxTag = highestTag(msgs)
	}
	var v *view
	for _, p := range policies {
		if len(msgs) == 0 {
			return msgs, nil
		}
		if p == nil || p.Plugin == nil {
			return nil, internalFailure("a " + phase + "-phase policy has no plugin")
		}
		if p.MessageCondition == nil {
			out, f := e.call(ctx, phase, p, c, msgs)
			if f != nil {
				return nil, f
			}
			msgs = out
			continue
		}
		if v == nil {
			v = newView(c)
		}
		pass := v.passing(p, msgs, phase)
		switch {
		case pass == nil:
			// No message passes: no hop.
			continue
		case len(pass) == len(msgs):
			out, f := e.call(ctx, phase, p, c, msgs)
			if f != nil {
				return nil, f
			}
			msgs = out
		default:
			out, f := e.callSome(ctx, phase, p, c, msgs, pass)
			if f != nil {
				return nil, f
			}
			msgs = out
		}
	}
	if maxTag != 0 {
		carryTag(msgs, maxTag)
	}
	return msgs, nil
}

// call sends one batch through one step.
func (e *Engine) call(ctx context.Context, phase string, p *PolicyInstance, c *pluginv1.Context, msgs []*pluginv1.Message) ([]*pluginv1.Message, *pluginv1.Failure) {
	m, f := e.mux(p.Plugin)
	if f != nil {
		return nil, f
	}
	resp, f := m.Call(ctx, &pluginv1.OnMessages_Request{
		InstanceId: p.InstanceID,
		Phase:      phase,
		Context:    p.context(c),
		Messages:   msgs,
	})
	if f != nil {
		return nil, f
	}
	if f := resp.GetInterrupt(); f != nil {
		return nil, normalize(f)
	}
	return resp.GetMessages(), nil
}

// callSome sends the messages at the indexes pass (ascending) through one
// step and puts what it returns back in their place. The plugin copies
// delivery tags through, so each message is stamped with its position
// (plus one) for the call: an answer with a known stamp takes the place of
// its input, one the plugin made up follows the answer before it, and the
// original tags are restored.
func (e *Engine) callSome(ctx context.Context, phase string, p *PolicyInstance, c *pluginv1.Context, msgs []*pluginv1.Message, pass []int) ([]*pluginv1.Message, *pluginv1.Failure) {
	sub := make([]*pluginv1.Message, len(pass))
	tags := make([]uint64, len(pass))
	for i, idx := range pass {
		sub[i] = msgs[idx]
		tags[i] = msgs[idx].GetTag()
		msgs[idx].Tag = uint64(idx) + 1
	}
	out, f := e.call(ctx, phase, p, c, sub)
	// Messages still held by the caller (on failure) get their own tags back.
	for i, idx := range pass {
		msgs[idx].Tag = tags[i]
	}
	if f != nil {
		return nil, f
	}
	// byPos[idx] are the answers for the input at idx, in plugin order.
	byPos := make(map[int][]*pluginv1.Message, len(pass))
	passIdx := make(map[int]int, len(pass)) // position -> index in pass
	for i, idx := range pass {
		passIdx[idx] = i
	}
	last := pass[0]
	for _, m := range out {
		if m == nil {
			continue
		}
		pos := int(m.GetTag()) - 1
		if i, ok := passIdx[pos]; ok {
			m.Tag = tags[i]
			last = pos
		} else {
			m.Tag = 0
		}
		byPos[last] = append(byPos[last], m)
	}
	merged := make([]*pluginv1.Message, 0, len(msgs)-len(pass)+len(out))
	for idx, m := range msgs {
		if _, passed := passIdx[idx]; passed {
			merged = append(merged, byPos[idx]...)
			continue
		}
		merged = append(merged, m)
	}
	return merged, nil
}

// passing returns the indexes of the messages for which p's
// message_condition is true, nil when none is. One gateway.Message is reused
// for every message of the batch: EL results are only tested, never kept.
func (v *view) passing(p *PolicyInstance, msgs []*pluginv1.Message, phase string) []int {
	use := p.messageUse()
	var m gateway.Message
	var pass []int
	what := phase + " policy " + p.Type
	for i, w := range msgs {
		if w == nil {
			continue
		}
		messageFromWire(&m, w, use)
		if v.test(p.MessageCondition, &m, what) {
			if pass == nil {
				pass = make([]int, 0, len(msgs)-i)
			}
			pass = append(pass, i)
		}
	}
	return pass
}

func highestTag(msgs []*pluginv1.Message) uint64 {
	var max uint64
	for _, m := range msgs {
		if t := m.GetTag(); t > max {
			max = t
		}
	}
	return max
}

// carryTag gives the last tagged message of msgs the tag max when its own is
// lower, so writing it acknowledges the dropped messages after it.
func carryTag(msgs []*pluginv1.Message, max uint64) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := msgs[i]; m != nil && m.GetTag() != 0 {
			if m.GetTag() < max {
				m.Tag = max
			}
			return
		}
	}
}

func (e *Engine) mux(p PluginRef) (*messagesMux, *pluginv1.Failure) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, Unavailable(p.Name())
	}
	m := e.muxes[p.Name()]
	if m == nil {
		m = NewMux(p, MuxSpec[*pluginv1.OnMessages_Request, *pluginv1.OnMessages_Response]{
			Open: func(ctx context.Context, c *serve.Clients) (Stream[*pluginv1.OnMessages_Request, *pluginv1.OnMessages_Response], error) {
				return c.Policy.OnMessages(ctx)
			},
			SetID: func(r *pluginv1.OnMessages_Request, id uint64) { r.BatchId = id },
			ID:    func(r *pluginv1.OnMessages_Response) uint64 { return r.GetBatchId() },
		})
		e.muxes[p.Name()] = m
	}
	return m, nil
}

// Close closes every stream and fails the batches in flight; later calls
// answer 503.
func (e *Engine) Close() {
	e.mu.Lock()
	muxes := e.muxes
	e.muxes = map[string]*messagesMux{}
	e.closed = true
	e.mu.Unlock()
	for _, m := range muxes {
		m.Close()
	}
}

// context is c as the step receives it: without the request body when the
// instance does not read it.
func (p *PolicyInstance) context(c *pluginv1.Context) *pluginv1.Context {
	if !p.OmitBody {
		return c
	}
	return WithoutBody(c)
}

// WithoutBody returns c without the request body: a shallow copy when c has
// one, c itself otherwise.
func WithoutBody(c *pluginv1.Context) *pluginv1.Context {
	r := c.GetRequest()
	if len(r.GetBody()) == 0 {
		return c
	}
	rc := &pluginv1.Request{
		Id: r.GetId(), TransactionId: r.GetTransactionId(), ClientIdentifier: r.GetClientIdentifier(),
		Method: r.GetMethod(), Path: r.GetPath(), ContextPath: r.GetContextPath(), PathInfo: r.GetPathInfo(),
		Headers: r.GetHeaders(), Params: r.GetParams(), PathParams: r.GetPathParams(),
		RemoteAddress: r.GetRemoteAddress(), Websocket: r.GetWebsocket(),
	}
	return &pluginv1.Context{ApiId: c.GetApiId(), Request: rc, Attributes: c.GetAttributes()}
}
