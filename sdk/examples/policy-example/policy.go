package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
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

// Interface guards: the compiler checks that Plugin is a policy and has the
// lifecycle calls (its Registry provides Validate, Configure, Unconfigure).
var (
	_ policy.Policy    = (*Plugin)(nil)
	_ lifecycle.Plugin = (*Plugin)(nil)
)

// Plugin is the Transform Headers policy: it removes, filters and sets the
// headers of every message in the publish and subscribe phases. One process
// serves every configured instance, so state is kept per instance id.
type Plugin struct {
	// Registry gives the plugin its Validate, Configure and Unconfigure,
	// and finds the instance a call is for.
	*instances.Registry[*instance]

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
		Registry: instances.New(instances.Options[*instance]{
			Types: []string{typeName},
			// Decode runs for Validate and Configure alike; the core calls
			// Configure again with the same id after a plugin restart, so it
			// must not depend on earlier calls.
			Decode: func(b instances.Block) (*instance, lifecycle.Diagnostics) {
				cfg, diags := decodeConfig(b.ConfigJSON)
				if cfg == nil {
					return nil, diags
				}
				return &instance{config: cfg, api: map[string]any{"id": b.APIID}}, diags
			},
		}),
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
	inst, ok := p.Get(in.InstanceID)
	if !ok {
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
