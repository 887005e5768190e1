package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// version is the plugin's own version, reported in its metadata; the build
// sets it with -ldflags "-X main.version=...".
var version = "dev"

// Interface guards: exchanges are drained (GET answers with what it has,
// webhooks stop after the message in hand).
var (
	_ entrypoint.Entrypoint = (*Plugin)(nil)
	_ lifecycle.Drainer     = (*Plugin)(nil)
)

// Plugin provides the plain HTTP entrypoints: http-get (poll messages),
// http-post (publish one message) and webhook (push messages to a callback).
type Plugin struct {
	*instances.Registry[*instance]

	// exchanges counts open exchanges, so Drain can end them and wait.
	exchanges instances.Drain

	// after makes the timer of a GET's duration limit; tests replace it to
	// end the wait on demand.
	after func(time.Duration) (<-chan time.Time, func())
}

// instance is one configured API instance of one of the types.
type instance struct {
	typ     string
	get     *getConfig
	post    *postConfig
	webhook *webhookConfig
}

// New returns the plugin with no instances.
func New() *Plugin {
	return &Plugin{
		Registry: instances.New(instances.Options[*instance]{
			Types:  []string{typeGet, typePost, typeWebhook},
			Decode: func(b instances.Block) (*instance, lifecycle.Diagnostics) { return decode(b.Type, b.ConfigJSON) },
		}),
		after: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTimer(d)
			return t.C, func() { t.Stop() }
		},
	}
}

// Metadata describes the three types.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindEntrypoint,
		Name:    "entrypoint-http",
		Version: version,
		Types: []lifecycle.TypeInfo{
			{
				Name:         typeGet,
				Description:  "HTTP GET: returns the next messages as JSON, XML or text, with a cursor to resume from.",
				Schema:       getSchema,
				QoS:          getQoS,
				Match:        &lifecycle.Match{Methods: []string{"GET"}, CriteriaCount: 1},
				Modes:        []string{"subscribe"},
				Capabilities: []string{"limit", "resume"},
			},
			{
				Name:        typePost,
				Description: "HTTP POST: publishes the request body as one message and answers 202 once the endpoint accepted it.",
				Schema:      postSchema,
				QoS:         postQoS,
				Match:       &lifecycle.Match{Methods: []string{"POST"}, CriteriaCount: 1},
				Modes:       []string{"publish"},
			},
			{
				Name:        typeWebhook,
				Description: "Webhook: pushes each subscribed message to a callback URL with an HTTP POST.",
				Schema:      webhookSchema,
				QoS:         webhookQoS,
				// The gateway opens one exchange per subscription itself;
				// no HTTP request should reach a webhook. The SDK requires
				// a Match for every entrypoint type, and an empty one has
				// the lowest criteria count, so any other entrypoint of the
				// API wins; connectWebhook refuses the requests that still
				// arrive (see there).
				Match: &lifecycle.Match{},
				Modes: []string{"subscribe"},
			},
		},
	}
}

// decode decodes a configuration block of any of the types.
func decode(typ string, data []byte) (*instance, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	inst := &instance{typ: typ}
	switch typ {
	case typeGet:
		inst.get, diags = decodeGet(data)
	case typePost:
		inst.post, diags = decodePost(data)
	case typeWebhook:
		inst.webhook, diags = decodeWebhook(data)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return inst, diags
}

// Drain ends every exchange early and waits for them or ctx's deadline: a
// GET answers with the messages it has, a webhook stops after the message
// it is posting, a POST finishes publishing.
func (p *Plugin) Drain(ctx context.Context) error {
	return p.exchanges.Wait(ctx)
}

// Connect runs one exchange of whichever type the instance is.
func (p *Plugin) Connect(ctx context.Context, open *entrypoint.Open, conn entrypoint.Conn) error {
	inst, ok := p.Get(open.InstanceID)
	if !ok {
		return fmt.Errorf("entrypoint-http: instance %q is not configured", open.InstanceID)
	}
	defer p.exchanges.Open()()
	req := &gateway.Request{}
	if open.Context != nil && open.Context.Request != nil {
		req = open.Context.Request
	}
	switch inst.typ {
	case typeGet:
		return p.connectGet(ctx, inst.get, req, conn)
	case typePost:
		return p.connectPost(ctx, inst.post, req, conn)
	default:
		return p.connectWebhook(ctx, inst.webhook, open, conn)
	}
}

// failureFinish renders a failure as a whole response in the gateway's
// failure format (docs/behaviour.md 5), with Connection: close for non-4xx
// statuses as the reference does.
func failureFinish(req *gateway.Request, f *gateway.Failure, defaultStatus int) entrypoint.Finish {
	status, h, body := httpfailure.Response(req.Headers.Values("Accept"), f, defaultStatus)
	return entrypoint.Finish{Status: status, Headers: h, Body: body}
}
