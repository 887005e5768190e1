// Package flow runs an API's policy chains: the request phase as one unary
// OnRequest call per policy, the publish and subscribe phases as batches on
// one long-lived OnMessages stream per policy plugin process.
//
// A phase with no policy costs nothing: the engine returns before touching a
// plugin. Every transport failure becomes a *pluginv1.Failure through
// TransportFailure, so the HTTP status a client sees for a broken plugin is
// decided in one place.
package flow

import (
	"context"
	"sync"

	"google.golang.org/protobuf/types/known/structpb"

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
// each, applying the attributes it sets to c before the next one runs. It
// returns the first interrupt, or the failure of a plugin that could not be
// reached. ctx bounds every call.
func (e *Engine) OnRequest(ctx context.Context, policies []*PolicyInstance, c *pluginv1.Context) *pluginv1.Failure {
	for _, p := range policies {
		if p == nil || p.Plugin == nil {
			return internalFailure("a request-phase policy has no plugin")
		}
		clients, err := p.Plugin.Clients()
		if err != nil {
			return Unavailable(p.Plugin.Name())
		}
		resp, err := clients.Policy.OnRequest(ctx, &pluginv1.OnRequest_Request{InstanceId: p.InstanceID, Context: c})
		if err != nil {
			return TransportFailure(p.Plugin.Name(), err)
		}
		ApplyAttributes(c, resp.GetSetAttributes())
		if f := resp.GetInterrupt(); f != nil {
			return normalize(f)
		}
	}
	return nil
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
func (e *Engine) OnMessages(ctx context.Context, phase string, policies []*PolicyInstance, c *pluginv1.Context, msgs []*pluginv1.Message) ([]*pluginv1.Message, *pluginv1.Failure) {
	for _, p := range policies {
		if len(msgs) == 0 {
			return msgs, nil
		}
		if p == nil || p.Plugin == nil {
			return nil, internalFailure("a " + phase + "-phase policy has no plugin")
		}
		m, f := e.mux(p.Plugin)
		if f != nil {
			return nil, f
		}
		resp, f := m.Call(ctx, &pluginv1.OnMessages_Request{
			InstanceId: p.InstanceID,
			Phase:      phase,
			Context:    c,
			Messages:   msgs,
		})
		if f != nil {
			return nil, f
		}
		if f := resp.GetInterrupt(); f != nil {
			return nil, normalize(f)
		}
		msgs = resp.GetMessages()
	}
	return msgs, nil
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
