package main

import (
	"context"
	"fmt"
	"strings"
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

// typeName is the policy's name in the reference; aliasName is the short
// form operators write.
const (
	typeName  = "policy-transform-headers"
	aliasName = "transform-headers"
)

// Interface guards: a policy, whose lifecycle calls come from its registry.
var (
	_ policy.Policy    = (*Plugin)(nil)
	_ lifecycle.Plugin = (*Plugin)(nil)
)

// Plugin is the Transform Headers policy for message APIs: it changes the
// headers of each message in the publish and subscribe phases.
type Plugin struct {
	*instances.Registry[*instanceConfig]

	// warn reports evaluation errors, which the reference logs and
	// swallows; tests replace it to see them.
	warn func(msg string, args ...any)
}

type instanceConfig struct {
	*config
	api map[string]any
}

// New returns the policy with no instances.
func New() *Plugin {
	return &Plugin{
		Registry: newRegistry(),
		warn:     logthrottle.Warn(30*time.Second, logthrottle.ByMessageAndArgs),
	}
}

// Metadata describes the policy type. It runs in the message phases only:
// plugin protocol v1 gives request-phase policies no way to change the
// request's headers, so declaring the request phase would promise what the
// gateway cannot do.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindPolicy,
		Name:    typeName,
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Aliases:     []string{aliasName},
			Description: "Sets, appends and removes message headers (publish and subscribe phases), with values from literals or EL.",
			Schema:      configSchema,
			Phases:      []string{policy.PhasePublish, policy.PhaseSubscribe},
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
		return nil, fmt.Errorf("transform-headers: %w", err)
	}
	return c, nil
}

// OnRequest is never called: the type declares no request phase.
func (p *Plugin) OnRequest(context.Context, *policy.RequestPhase, *policy.RequestResult) error {
	return nil
}

// OnMessages transforms each message's headers, in the reference's order:
// add_header sets (replacing earlier values), append_header adds a value,
// then whitelist_headers removes every header it does not list, then
// remove_headers removes the ones it lists. Values are evaluated with
// #message bound to the message; an evaluation error is logged and its
// header left alone, a null value sets nothing. Messages are passed on in
// place and in order; none is dropped.
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
		// Every value is evaluated against the message as it came, so the
		// order of add_header blocks does not change what they read.
		type change struct {
			name, value string
			add         bool
		}
		var changes []change
		for _, list := range []struct {
			hs  []header
			add bool
		}{{inst.set, false}, {inst.appendTo, true}} {
			for _, h := range list.hs {
				v, err := h.value.Eval(env)
				if err != nil {
					p.warn("transform-headers: header not changed", "header", h.name, "phase", in.Phase, "error", err.Error())
					continue
				}
				if v == nil {
					continue
				}
				s, ok := v.(string)
				if !ok {
					s, err = h.value.EvalString(env)
					if err != nil {
						continue
					}
				}
				changes = append(changes, change{h.name, s, list.add})
			}
		}
		if len(changes) > 0 && m.Headers == nil {
			m.Headers = gateway.Headers{}
		}
		for _, c := range changes {
			if c.add {
				m.Headers.Add(c.name, c.value)
				continue
			}
			deleteFold(m.Headers, c.name)
			m.Headers[c.name] = []string{c.value}
		}
		if len(inst.whitelist) > 0 {
			for k := range m.Headers {
				if !containsFold(inst.whitelist, k) {
					delete(m.Headers, k)
				}
			}
		}
		for _, name := range inst.remove {
			deleteFold(m.Headers, name)
		}
	}
	return in.Messages, nil
}

// deleteFold removes every spelling of name.
func deleteFold(h gateway.Headers, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}
