package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// version is the plugin's own version, reported in its metadata; the build
// sets it with -ldflags "-X main.version=...".
var version = "dev"

// typeName is the policy's name in the reference; aliasName is how the
// reference's own integration fixtures (and docs/hcl.md's examples) spell it.
const (
	typeName  = "policy-assign-attributes"
	aliasName = "assign-attributes"
)

var _ policy.Policy = (*Plugin)(nil)

// Plugin is the Assign Attributes policy: it sets context attributes in the
// request (and response) phase and message attributes in the publish and
// subscribe phases, from literals or EL.
type Plugin struct {
	mu        sync.RWMutex
	instances map[string]*instanceConfig

	// warn reports evaluation errors, which the reference logs and
	// swallows; tests replace it to see them.
	warn func(msg string, args ...any)
}

// instanceConfig is a configured instance with what EL sees as #api.
type instanceConfig struct {
	*config
	api map[string]any
}

// New returns the policy with no instances.
func New() *Plugin {
	return &Plugin{
		instances: map[string]*instanceConfig{},
		warn:      throttledWarn(newThrottle(30 * time.Second)),
	}
}

// throttledWarn logs through the plugin logger, at most one line per message
// and attribute every interval, saying how many were held back.
func throttledWarn(th *throttle) func(msg string, args ...any) {
	return func(msg string, args ...any) {
		key := msg
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "attribute" {
				key += "\x00" + fmt.Sprint(args[i+1])
			}
		}
		ok, suppressed := th.allow(key)
		if !ok {
			return
		}
		if suppressed > 0 {
			args = append(args, "suppressed_since_last", suppressed)
		}
		serve.Logger().Warn(msg, args...)
	}
}

// Metadata describes the policy type.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindPolicy,
		Name:    "policy-assign-attributes",
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Aliases:     []string{aliasName},
			Description: "Sets context attributes (request phase) or message attributes (publish and subscribe phases) from literals or EL.",
			Schema:      configSchema,
			Phases:      []string{policy.PhaseRequest, policy.PhaseResponse, policy.PhasePublish, policy.PhaseSubscribe},
		}},
	}
}

func knownType(t string) bool { return t == typeName || t == aliasName }

// Validate checks and compiles a configuration block.
func (p *Plugin) Validate(_ context.Context, req *lifecycle.ValidateRequest, resp *lifecycle.ValidateResponse) {
	if !knownType(req.Type) {
		resp.Diagnostics.Errorf(nil, "unknown type %q: this plugin provides %q (alias %q)", req.Type, typeName, aliasName)
		return
	}
	_, resp.Diagnostics = decodeConfig(req.ConfigJSON)
}

// Configure compiles an instance's templates once, for every later call.
func (p *Plugin) Configure(_ context.Context, req *lifecycle.ConfigureRequest, resp *lifecycle.ConfigureResponse) {
	if !knownType(req.Type) {
		resp.Diagnostics.Errorf(nil, "unknown type %q: this plugin provides %q (alias %q)", req.Type, typeName, aliasName)
		return
	}
	cfg, diags := decodeConfig(req.ConfigJSON)
	resp.Diagnostics = diags
	if cfg == nil {
		return
	}
	p.mu.Lock()
	p.instances[req.InstanceID] = &instanceConfig{config: cfg, api: map[string]any{"id": req.APIID}}
	p.mu.Unlock()
}

// Unconfigure removes an instance.
func (p *Plugin) Unconfigure(_ context.Context, instanceID string) {
	p.mu.Lock()
	delete(p.instances, instanceID)
	p.mu.Unlock()
}

func (p *Plugin) instance(id string) (*instanceConfig, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if c := p.instances[id]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("assign-attributes: instance %q is not configured", id)
}

// OnRequest evaluates the attributes in order and sets them on the context.
// Each one sees the ones before it (#context.attributes), so a later value
// can build on an earlier one. An EL error, or a null result, leaves that
// attribute unset; the error is logged, as in the reference.
func (p *Plugin) OnRequest(_ context.Context, in *policy.RequestPhase, out *policy.RequestResult) error {
	inst, err := p.instance(in.InstanceID)
	if err != nil {
		return err
	}
	env := el.Env{API: inst.api}
	if in.Context != nil {
		env.Request = in.Context.Request
		env.Attributes = in.Context.Attributes
	}
	copied := false
	for i, e := range inst.entries {
		v, err := e.value.Eval(env)
		if err != nil {
			p.warn("assign-attributes: attribute not set", "attribute", e.name, "error", err.Error())
			continue
		}
		if v == nil {
			continue
		}
		if out.SetAttributes == nil {
			out.SetAttributes = make(map[string]any, len(inst.entries))
		}
		out.SetAttributes[e.name] = v
		if i == len(inst.entries)-1 {
			break
		}
		// Later entries read this one: give them a view with it set,
		// copying the caller's map once rather than changing it.
		if !copied {
			attrs := make(map[string]any, len(env.Attributes)+len(inst.entries))
			for k, x := range env.Attributes {
				attrs[k] = x
			}
			env.Attributes = attrs
			copied = true
		}
		env.Attributes[e.name] = v
	}
	return nil
}

// OnMessages sets the attributes on each message of the batch, evaluated
// with #message bound to it; attributes are per message, not context ones.
// Messages are passed on in place and in order; none is dropped.
func (p *Plugin) OnMessages(_ context.Context, in *policy.MessagesPhase) ([]*gateway.Message, error) {
	inst, err := p.instance(in.InstanceID)
	if err != nil {
		return nil, err
	}
	env := el.Env{API: inst.api}
	if in.Context != nil {
		env.Request = in.Context.Request
		env.Attributes = in.Context.Attributes
	}
	for _, m := range in.Messages {
		if m == nil {
			continue
		}
		env.Message = m
		for _, e := range inst.entries {
			v, err := e.value.Eval(env)
			if err != nil {
				p.warn("assign-attributes: message attribute not set", "attribute", e.name, "phase", in.Phase, "error", err.Error())
				continue
			}
			if v != nil {
				m.SetAttribute(e.name, v)
			}
		}
	}
	return in.Messages, nil
}
