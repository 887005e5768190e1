package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
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
	mu        sync.RWMutex
	instances map[string]*instance

	drainOnce sync.Once
	draining  chan struct{}
	exchanges tracker

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
		instances: map[string]*instance{},
		draining:  make(chan struct{}),
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
	default:
		diags.Errorf(nil, "unknown type %q: this plugin provides %s, %s and %s", typ, typeGet, typePost, typeWebhook)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return inst, diags
}

// Validate checks a configuration block.
func (p *Plugin) Validate(_ context.Context, req *lifecycle.ValidateRequest, resp *lifecycle.ValidateResponse) {
	_, resp.Diagnostics = decode(req.Type, req.ConfigJSON)
}

// Configure creates or replaces an instance.
func (p *Plugin) Configure(_ context.Context, req *lifecycle.ConfigureRequest, resp *lifecycle.ConfigureResponse) {
	inst, diags := decode(req.Type, req.ConfigJSON)
	resp.Diagnostics = diags
	if inst == nil {
		return
	}
	if inst.webhook != nil {
		client, err := inst.webhook.newClient()
		if err != nil {
			resp.Diagnostics.Errorf(nil, "webhook client: %v", err)
			return
		}
		inst.webhook.client = client
	}
	p.mu.Lock()
	old := p.instances[req.InstanceID]
	p.instances[req.InstanceID] = inst
	p.mu.Unlock()
	old.close()
}

// Unconfigure removes an instance; exchanges already running keep their
// configuration until they end.
func (p *Plugin) Unconfigure(_ context.Context, instanceID string) {
	p.mu.Lock()
	old := p.instances[instanceID]
	delete(p.instances, instanceID)
	p.mu.Unlock()
	old.close()
}

// close releases what an instance holds (idle webhook connections).
func (inst *instance) close() {
	if inst != nil && inst.webhook != nil && inst.webhook.client != nil {
		inst.webhook.client.CloseIdleConnections()
	}
}

// Drain ends every exchange early and waits for them or ctx's deadline: a
// GET answers with the messages it has, a webhook stops after the message
// it is posting, a POST finishes publishing.
func (p *Plugin) Drain(ctx context.Context) error {
	p.drainOnce.Do(func() { close(p.draining) })
	select {
	case <-p.exchanges.idle():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connect runs one exchange of whichever type the instance is.
func (p *Plugin) Connect(ctx context.Context, open *entrypoint.Open, conn entrypoint.Conn) error {
	p.mu.RLock()
	inst := p.instances[open.InstanceID]
	p.mu.RUnlock()
	if inst == nil {
		return fmt.Errorf("entrypoint-http: instance %q is not configured", open.InstanceID)
	}
	p.exchanges.add()
	defer p.exchanges.done()
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
		return p.connectWebhook(ctx, inst.webhook, open.Context, conn)
	}
}

// failureFinish renders a failure as a whole response in the gateway's
// failure format (docs/behaviour.md 5), with Connection: close for non-4xx
// statuses as the reference does.
func failureFinish(req *gateway.Request, f *gateway.Failure, defaultStatus int) entrypoint.Finish {
	status := httpfailure.Status(f, defaultStatus)
	g := gateway.Failure{Status: status}
	if f != nil {
		g = *f
		g.Status = status
	}
	ct, body := httpfailure.FailureBody(req.Headers.Values("Accept"), &g)
	h := gateway.Headers{"Content-Type": {ct}}
	if status < 400 || status >= 500 {
		h["Connection"] = []string{"close"}
	}
	return entrypoint.Finish{Status: status, Headers: h, Body: body}
}

// quiet drops errors caused by the exchange ending: the core already knows.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// tracker counts open exchanges so Drain can wait for them.
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.zero = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.zero)
	}
	t.mu.Unlock()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// idle is closed when no exchange is open.
func (t *tracker) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return closedChan
	}
	return t.zero
}
