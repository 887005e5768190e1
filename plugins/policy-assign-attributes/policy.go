package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/logthrottle"
	"github.com/sluice-gw/sluice/sdk/policy"
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

// Interface guards: a policy, whose lifecycle calls come from its registry.
var (
	_ policy.Policy    = (*Plugin)(nil)
	_ lifecycle.Plugin = (*Plugin)(nil)
)

// Plugin is the Assign Attributes policy: it sets context attributes in the
// request (and response) phase and message attributes in the publish and
// subscribe phases, from literals or EL.
type Plugin struct {
	*instances.Registry[*instanceConfig]

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
		Registry: newRegistry(),
		// One line per message and attribute every interval.
		warn: logthrottle.Warn(30*time.Second, logthrottle.ByMessageAndArg("attribute")),
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
			// The body is read only by templates that name request.content.
			Capabilities: []string{lifecycle.CapabilityBodyOnlyInEL},
		}},
	}
}

// newRegistry holds the configured instances. Each one compiles its
// templates once, for every later call, and keeps what EL sees as #api.
func newRegistry() *instances.Registry[*instanceConfig] {
	return instances.New(instances.Options[*instanceConfig]{
		Types: []string{typeName, aliasName},
		Decode: func(b instances.Block) (*instanceConfig, lifecycle.Diagnostics) {
			cfg, diags := decodeConfig(b.ConfigJSON)
			if cfg == nil {
				return nil, diags
			}
			return &instanceConfig{config: cfg, api: map[string]any{"id": b.APIID}}, diags
		},
	})
}

func (p *Plugin) instance(id string) (*instanceConfig, error) {
	c, err := p.Lookup(id)
	if err != nil {
		return nil, fmt.Errorf("assign-attributes: %w", err)
	}
	return c, nil
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
