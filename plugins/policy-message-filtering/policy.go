package main

import (
	"context"
	"fmt"
	"strings"
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

// typeName is the policy's name in the reference; aliasName is the short
// form operators write.
const (
	typeName  = "policy-message-filtering"
	aliasName = "message-filtering"
)

var _ policy.Policy = (*Plugin)(nil)

// Plugin is the Message Filtering policy: it passes on only the messages
// whose filter is true.
type Plugin struct {
	mu        sync.RWMutex
	instances map[string]*instanceConfig

	// warn reports evaluation errors; tests replace it to see them.
	warn func(msg string, args ...any)
}

type instanceConfig struct {
	*config
	api map[string]any
}

// New returns the policy with no instances.
func New() *Plugin {
	th := newThrottle(30 * time.Second)
	return &Plugin{
		instances: map[string]*instanceConfig{},
		warn: func(msg string, args ...any) {
			ok, suppressed := th.allow(msg + "\x00" + fmt.Sprint(args...))
			if !ok {
				return
			}
			if suppressed > 0 {
				args = append(args, "suppressed_since_last", suppressed)
			}
			serve.Logger().Warn(msg, args...)
		},
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

// Configure compiles an instance's filter once, for every later message.
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
	return nil, fmt.Errorf("message-filtering: instance %q is not configured", id)
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
