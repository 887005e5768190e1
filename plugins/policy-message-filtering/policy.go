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
	typeName  = "policy-message-filtering"
	aliasName = "message-filtering"
)

// Interface guards: a policy, whose lifecycle calls come from its registry.
var (
	_ policy.Policy    = (*Plugin)(nil)
	_ lifecycle.Plugin = (*Plugin)(nil)
)

// Plugin is the Message Filtering policy: it passes on only the messages
// whose filter is true.
type Plugin struct {
	*instances.Registry[*instanceConfig]

	// warn reports evaluation errors; tests replace it to see them.
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

// Metadata describes the policy type.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindPolicy,
		Name:    typeName,
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Aliases:     []string{aliasName},
			Description: "Drops the messages for which an EL filter is not true (publish and subscribe phases).",
			Schema:      configSchema,
			Phases:      []string{policy.PhasePublish, policy.PhaseSubscribe},
			// The body is read only by a filter that names request.content.
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
		return nil, fmt.Errorf("message-filtering: %w", err)
	}
	return c, nil
}

// OnRequest is never called: the type declares no request phase.
func (p *Plugin) OnRequest(context.Context, *policy.RequestPhase, *policy.RequestResult) error {
	return nil
}

// OnMessages returns the messages whose filter is true, in order. A filter
// that fails to evaluate, or gives anything but true, drops the message and
// logs why: a filter is there to keep messages out, so doubt keeps them
// out. Error messages (failures reported on the stream) always pass, so a
// client still learns that its stream failed.
//
// A dropped subscribe message is still acknowledged: the gateway moves the
// highest delivery tag of the batch onto the last message it delivers, so
// the consumer's position advances past what was filtered out.
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
	out := in.Messages[:0]
	for _, m := range in.Messages {
		if m == nil {
			continue
		}
		if m.Error != nil {
			out = append(out, m)
			continue
		}
		env.Message = m
		v, err := inst.filter.Eval(env)
		if err != nil {
			p.warn("message-filtering: filter failed, message dropped", "phase", in.Phase, "error", err.Error())
			continue
		}
		if keep(v) {
			out = append(out, m)
		}
	}
	return out, nil
}

// keep is true for the boolean true and for the text "true" (a filter that
// mixes text and EL evaluates to a string).
func keep(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(strings.TrimSpace(x), "true")
	}
	return false
}
