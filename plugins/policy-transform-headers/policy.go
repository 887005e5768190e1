package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
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
// request headers in the request phase, the response headers in the
// response phase and the headers of each message in the publish and
// subscribe phases.
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

// Metadata describes the policy type. The request and response phases need
// plugin protocol v1.3, whose OnRequest answer carries header changes; the
// gateway's own core speaks it.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindPolicy,
		Name:    typeName,
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Aliases:     []string{aliasName},
			Description: "Sets, appends and removes request, response or message headers, with values from literals or EL.",
			Schema:      configSchema,
			Phases:      []string{policy.PhaseRequest, policy.PhaseResponse, policy.PhasePublish, policy.PhaseSubscribe},
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

// OnRequest transforms the request headers (request phase) or the response
// headers (response phase) in the same order as OnMessages, with values
// evaluated against the request and context as they came, and answers the
// difference as header changes: the core applies them to the request before
// the entrypoint and the endpoint see it, or to the response before its
// headers are written. Nothing is interrupted.
func (p *Plugin) OnRequest(_ context.Context, in *policy.RequestPhase, out *policy.RequestResult) error {
	inst, err := p.instance(in.InstanceID)
	if err != nil {
		return err
	}
	env := el.Env{API: inst.api}
	var before gateway.Headers
	if in.Context != nil {
		env.Request = in.Context.Request
		env.Attributes = in.Context.Attributes
		if in.Context.Request != nil {
			before = in.Context.Request.Headers
		}
	}
	if in.Phase == policy.PhaseResponse {
		before = in.ResponseHeaders
	}
	after := p.transform(inst, env, in.Phase, before.Clone())
	out.SetHeaders, out.RemoveHeaders = diff(before, after)
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
		m.Headers = p.transform(inst, env, in.Phase, m.Headers)
	}
	return in.Messages, nil
}

// transform applies the instance to h, in the reference's order: add_header
// sets (replacing earlier values), append_header adds a value, then
// whitelist_headers removes every header it does not list, then
// remove_headers removes the ones it lists. Every value is evaluated first,
// against env as it came, so the order of add_header blocks does not change
// what they read. It changes h in place and returns it (a new map when h was
// nil and something was set).
func (p *Plugin) transform(inst *instanceConfig, env el.Env, phase string, h gateway.Headers) gateway.Headers {
	type change struct {
		name, value string
		add         bool
	}
	var changes []change
	for _, list := range []struct {
		hs  []header
		add bool
	}{{inst.set, false}, {inst.appendTo, true}} {
		for _, hd := range list.hs {
			v, err := hd.value.Eval(env)
			if err != nil {
				p.warn("transform-headers: header not changed", "header", hd.name, "phase", phase, "error", err.Error())
				continue
			}
			if v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				s, err = hd.value.EvalString(env)
				if err != nil {
					continue
				}
			}
			changes = append(changes, change{hd.name, s, list.add})
		}
	}
	if len(changes) > 0 && h == nil {
		h = gateway.Headers{}
	}
	for _, c := range changes {
		if c.add {
			h.Add(c.name, c.value)
			continue
		}
		deleteFold(h, c.name)
		h[c.name] = []string{c.value}
	}
	if len(inst.whitelist) > 0 {
		for k := range h {
			if !containsFold(inst.whitelist, k) {
				delete(h, k)
			}
		}
	}
	for _, name := range inst.remove {
		deleteFold(h, name)
	}
	return h
}

// diff expresses the change from before to after as the protocol's header
// changes: the names after no longer has (any spelling) are removed, and
// the names whose values changed are set with all their values. Names are
// sorted, so the answer does not depend on map order.
func diff(before, after gateway.Headers) (gateway.Headers, []string) {
	var set gateway.Headers
	var remove []string
	for name := range before {
		if after.Values(name) == nil {
			remove = append(remove, name)
		}
	}
	for name, values := range after {
		if slices.Equal(before.Values(name), values) {
			continue
		}
		if set == nil {
			set = gateway.Headers{}
		}
		set[name] = values
	}
	sort.Strings(remove)
	return set, remove
}

// deleteFold removes every spelling of name.
func deleteFold(h gateway.Headers, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}
