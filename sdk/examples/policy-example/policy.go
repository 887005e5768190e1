package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// version is the plugin's own version, reported in its metadata; build with
// -ldflags "-X main.version=..." to set it.
var version = "dev"

// pluginName is the plugin's name: its binary is sluice-plugin-<pluginName>.
// typeName is what operators write in `policy "..."`.
const (
	pluginName = "policy-transform-headers"
	typeName   = "transform-headers"
)

// Interface guard: the compiler checks that Plugin is a policy.
var _ policy.Policy = (*Plugin)(nil)

// Plugin is the Transform Headers policy: it removes, filters and sets the
// headers of every message in the publish and subscribe phases. One process
// serves every configured instance, so state is kept per instance id.
type Plugin struct {
	mu        sync.RWMutex
	instances map[string]*instance

	// warn reports header values that could not be evaluated; the message
	// still passes. Tests replace it to see the warnings.
	warn func(msg string, args ...any)
}

// instance is one configured policy block and the #api root its EL sees.
type instance struct {
	*config
	api map[string]any
}

// New returns the policy with no instances.
func New() *Plugin {
	return &Plugin{
		instances: map[string]*instance{},
		// serve.Logger writes hclog JSON to stderr, which the core re-emits
		// under the plugin's name; stdout belongs to the handshake.
		warn: func(msg string, args ...any) { serve.Logger().Warn(msg, args...) },
	}
}

// Metadata describes the plugin. The core reads it once per process start;
// Phases keeps the policy out of the request phase at load time, with a
// diagnostic naming the phases it supports.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindPolicy,
		Name:    pluginName,
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Description: "Removes, filters and sets message headers in the publish and subscribe phases.",
			Schema:      configSchema,
			Phases:      []string{policy.PhasePublish, policy.PhaseSubscribe},
		}},
	}
}

// Validate checks one configuration block without keeping anything; the
// core calls it at load time and for `sluice validate`.
func (p *Plugin) Validate(_ context.Context, req *lifecycle.ValidateRequest, resp *lifecycle.ValidateResponse) {
	if req.Type != typeName {
		resp.Diagnostics.Errorf(nil, "unknown type %q: this plugin provides %q", req.Type, typeName)
		return
	}
	_, resp.Diagnostics = decodeConfig(req.ConfigJSON)
}

// Configure creates or replaces an instance. The core calls it again with
// the same id after a plugin restart, so it must not depend on earlier calls.
func (p *Plugin) Configure(_ context.Context, req *lifecycle.ConfigureRequest, resp *lifecycle.ConfigureResponse) {
	if req.Type != typeName {
		resp.Diagnostics.Errorf(nil, "unknown type %q: this plugin provides %q", req.Type, typeName)
		return
	}
	cfg, diags := decodeConfig(req.ConfigJSON)
	resp.Diagnostics = diags
	if cfg == nil {
		return
	}
	p.mu.Lock()
	p.instances[req.InstanceID] = &instance{config: cfg, api: map[string]any{"id": req.APIID}}
	p.mu.Unlock()
}

// Unconfigure removes an instance.
func (p *Plugin) Unconfigure(_ context.Context, instanceID string) {
	p.mu.Lock()
	delete(p.instances, instanceID)
	p.mu.Unlock()
}

// OnRequest is never called by a core that honours Metadata's Phases. It
// answers with an explicit failure rather than silently doing nothing, so a
// misrouted call shows up in the client's response and the logs.
func (p *Plugin) OnRequest(_ context.Context, _ *policy.RequestPhase, _ *policy.RequestResult) error {
	return &gateway.Failure{
		Status:  500,
		Key:     "FAILURE_POLICY_PHASE_UNSUPPORTED",
		Message: "transform-headers runs in the publish and subscribe phases only",
	}
}

// OnMessages transforms the headers of every data message of the batch, in
// place, and passes the whole batch on in order. Error messages (m.Error set)
// are passed on untouched: they report a failure and carry no headers worth
// changing. Tags are left alone, so acknowledgements still reach the
// endpoint.
func (p *Plugin) OnMessages(_ context.Context, in *policy.MessagesPhase) ([]*gateway.Message, error) {
	p.mu.RLock()
	inst := p.instances[in.InstanceID]
	p.mu.RUnlock()
	if inst == nil {
		// Not a *gateway.Failure: the SDK logs it and the client sees a
		// generic 500, since it is a gateway fault, not the client's.
		return nil, fmt.Errorf("transform-headers: instance %q is not configured", in.InstanceID)
	}
	env := el.Env{API: inst.api}
	if in.Context != nil {
		env.Request = in.Context.Request
		env.Attributes = in.Context.Attributes
	}
	for _, m := range in.Messages {
		if m == nil || m.Error != nil {
			continue
		}
		env.Message = m
		p.transform(inst.config, m, env, in.Phase)
	}
	return in.Messages, nil
}

// transform applies one instance's configuration to one message: removals,
// then the whitelist, then the added headers, so an added header is never
// filtered out by the whitelist.
func (p *Plugin) transform(cfg *config, m *gateway.Message, env el.Env, phase string) {
	for name := range m.Headers {
		if matchesAny(name, cfg.remove) || (len(cfg.whitelist) > 0 && !matchesAny(name, cfg.whitelist)) {
			delete(m.Headers, name)
		}
	}
	for _, h := range cfg.add {
		v, ok, err := evalValue(h.value, env)
		if err != nil {
			p.warn("transform-headers: header not set", "header", h.name, "phase", phase, "error", err.Error())
			continue
		}
		if !ok {
			continue
		}
		for name := range m.Headers {
			if strings.EqualFold(name, h.name) {
				delete(m.Headers, name)
			}
		}
		if m.Headers == nil {
			m.Headers = gateway.Headers{}
		}
		m.Headers[h.name] = []string{v}
	}
}

// evalValue evaluates a header value. ok is false when an expression that
// is the whole value yields null (a missing header or attribute), which
// leaves the header unset instead of setting it empty.
func evalValue(t *el.Template, env el.Env) (value string, ok bool, err error) {
	if t.IsLiteral() {
		return t.Source(), true, nil
	}
	v, err := t.Eval(env)
	switch x := v.(type) {
	case nil:
		return "", false, err
	case string:
		return x, true, nil
	}
	// A list, number or boolean: let el format it as it formats every
	// string-typed value (lists joined with ",").
	s, err := t.EvalString(env)
	return s, err == nil, err
}

// matchesAny reports whether name is in names, ignoring case as HTTP does.
func matchesAny(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
