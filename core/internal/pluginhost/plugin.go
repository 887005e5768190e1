package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Restart backoff: the first restart waits minBackoff, each failed or
// short-lived attempt doubles the wait up to maxBackoff, and a process that
// stayed up for resetBackoff starts again from minBackoff.
const (
	minBackoff   = 200 * time.Millisecond
	maxBackoff   = 10 * time.Second
	resetBackoff = 30 * time.Second
)

// Plugin is one plugin binary and the process currently running it. The
// process may be replaced by a supervisor restart at any time; callers get the
// current connection from Clients on every use and never keep it.
type Plugin struct {
	host         *Host
	name         string
	path         string
	kind         lifecycle.Kind
	pin          []byte
	startTimeout time.Duration
	log          *slog.Logger
	spawn        *spawner

	// clients is the fast path of Clients: nil while the plugin is down.
	clients atomic.Pointer[serve.Clients]

	mu        sync.Mutex
	proc      *process
	meta      *pluginv1.GetMetadata_Response
	restarts  int
	callbacks []func()

	// cfgMu orders Configure and Unconfigure with the re-configuration after
	// a restart, so no instance is missed or configured twice.
	cfgMu     sync.Mutex
	instances []*pluginv1.Configure_Request

	superCtx    context.Context
	superCancel context.CancelFunc
	superDone   chan struct{}
}

func newPlugin(h *Host, c candidate) *Plugin {
	ctx, cancel := context.WithCancel(context.Background())
	return &Plugin{
		host:         h,
		name:         c.name,
		path:         c.path,
		kind:         c.kind,
		pin:          c.pin,
		startTimeout: h.opts.StartTimeout,
		log:          h.log.With("plugin", c.name),
		spawn:        newSpawner(),
		superCtx:     ctx,
		superCancel:  cancel,
		superDone:    make(chan struct{}),
	}
}

// Name is the plugin's name, from its binary's name
// (sluice-plugin-endpoint-kafka is "endpoint-kafka").
func (p *Plugin) Name() string { return p.name }

// Path is the absolute path of the plugin's binary.
func (p *Plugin) Path() string { return p.path }

// Kind is the plugin's kind, which its binary's name and its metadata agree on.
func (p *Plugin) Kind() lifecycle.Kind { return p.kind }

// Metadata is what the running plugin reported when it last started. The
// message is shared: callers must not modify it.
func (p *Plugin) Metadata() *pluginv1.GetMetadata_Response {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.meta
}

// Clients returns the gRPC clients of the running process. While the plugin
// is down (crashed, restarting, re-configuring or closed) it returns an error
// wrapping ErrUnavailable at once, so a request fails fast instead of waiting
// for the restart.
func (p *Plugin) Clients() (*serve.Clients, error) {
	if c := p.clients.Load(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("plugin %s: %w", p.name, ErrUnavailable)
}

// Up reports whether the plugin is running and configured.
func (p *Plugin) Up() bool { return p.clients.Load() != nil }

// Restarts is how many times the supervisor brought the plugin back after its
// process ended unexpectedly.
func (p *Plugin) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Pid is the process id of the running plugin, or 0 while it is down.
func (p *Plugin) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil || p.clients.Load() == nil {
		return 0
	}
	return p.proc.pid
}

// Configure creates or replaces an instance in the plugin. An instance the
// plugin accepted (no error diagnostic) is recorded and configured again,
// in the order of first configuration, after every restart, before the
// plugin counts as up. One the plugin rejected is forgotten, because a
// rejected configuration leaves the instance unconfigured (sdk/lifecycle).
func (p *Plugin) Configure(ctx context.Context, req *pluginv1.Configure_Request) ([]*pluginv1.Diagnostic, error) {
	if req == nil || req.GetInstanceId() == "" {
		return nil, fmt.Errorf("plugin %s: configure: the request has no instance id", p.name)
	}
	p.cfgMu.Lock()
	defer p.cfgMu.Unlock()
	c, err := p.Clients()
	if err != nil {
		return nil, err
	}
	resp, err := c.Plugin.Configure(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: configure instance %s: %w", p.name, req.GetInstanceId(), err)
	}
	diags := resp.GetDiagnostics()
	at := p.instanceIndex(req.GetInstanceId())
	switch {
	case hasErrors(diags) && at >= 0:
		p.instances = append(p.instances[:at], p.instances[at+1:]...)
	case hasErrors(diags):
	case at >= 0:
		p.instances[at] = proto.Clone(req).(*pluginv1.Configure_Request)
	default:
		p.instances = append(p.instances, proto.Clone(req).(*pluginv1.Configure_Request))
	}
	return diags, nil
}

// Unconfigure removes an instance from the plugin and from the record. While
// the plugin is down there is nothing to remove in the process (a restart
// starts empty), so only the record changes and nil is returned.
func (p *Plugin) Unconfigure(ctx context.Context, instanceID string) error {
	p.cfgMu.Lock()
	defer p.cfgMu.Unlock()
	if at := p.instanceIndex(instanceID); at >= 0 {
		p.instances = append(p.instances[:at], p.instances[at+1:]...)
	}
	c := p.clients.Load()
	if c == nil {
		return nil
	}
	if _, err := c.Plugin.Unconfigure(ctx, &pluginv1.Unconfigure_Request{InstanceId: instanceID}); err != nil {
		return fmt.Errorf("plugin %s: unconfigure instance %s: %w", p.name, instanceID, err)
	}
	return nil
}

// OnRestart registers fn to run after each restart, once every instance is
// configured again and the plugin is up: the server uses it to re-open the
// long-lived streams that died with the old process. fn runs on the
// supervisor's goroutine and should not block for long.
func (p *Plugin) OnRestart(fn func()) {
	if fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.callbacks = append(p.callbacks, fn)
}

// instanceIndex finds a recorded instance; cfgMu must be held.
func (p *Plugin) instanceIndex(id string) int {
	for i, r := range p.instances {
		if r.GetInstanceId() == id {
			return i
		}
	}
	return -1
}

func hasErrors(diags []*pluginv1.Diagnostic) bool {
	for _, d := range diags {
		if d.GetSeverity() == pluginv1.Diagnostic_ERROR {
			return true
		}
	}
	return false
}

// install makes proc the running process and starts supervising it.
func (p *Plugin) install(proc *process, meta *pluginv1.GetMetadata_Response) {
	p.mu.Lock()
	p.proc = proc
	p.meta = meta
	p.mu.Unlock()
	p.clients.Store(proc.clients)
	go p.supervise(proc)
}

// supervise watches the running process and restarts it when it ends
// unexpectedly, until close stops supervision.
func (p *Plugin) supervise(proc *process) {
	defer close(p.superDone)
	backoff := minBackoff
	for {
		if !p.waitExit(proc) {
			return
		}
		uptime := time.Since(proc.upAt)
		p.clients.Store(nil)
		p.mu.Lock()
		p.proc = nil
		p.mu.Unlock()
		// Collect the dead client's goroutines; the process is gone, so no
		// drain and nothing can hang for long.
		go p.destroy(proc)

		if uptime >= resetBackoff {
			backoff = minBackoff
		}
		p.log.Error("plugin process exited unexpectedly; restarting it",
			"pid", proc.pid, "status", exitStatus(proc), "uptime", uptime.Round(time.Millisecond), "restart_in", backoff)
		for {
			if !sleepCtx(p.superCtx, backoff) {
				return
			}
			wait := backoff
			backoff = min(backoff*2, maxBackoff)
			next, err := p.restart(p.superCtx)
			if err == nil {
				proc = next
				break
			}
			if p.superCtx.Err() != nil {
				return
			}
			p.log.Error("plugin restart failed", "error", err, "waited", wait, "retry_in", backoff)
		}
	}
}

// waitExit returns true when the process has exited, false when supervision
// was stopped first.
func (p *Plugin) waitExit(proc *process) bool {
	select {
	case <-proc.exited():
		return true
	case <-p.superCtx.Done():
		return false
	}
}

// exitStatus describes how an exited process ended ("signal: killed",
// "exit status 2").
func exitStatus(proc *process) string {
	if proc.runner.waitErr == nil {
		return "exit status 0"
	}
	return proc.runner.waitErr.Error()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// restart launches a new process, configures every recorded instance again,
// marks the plugin up and runs the OnRestart callbacks.
func (p *Plugin) restart(ctx context.Context) (*process, error) {
	proc, meta, err := p.launch(ctx)
	if err != nil {
		return nil, err
	}
	if meta.GetName() != p.Metadata().GetName() {
		p.log.Warn("restarted plugin reports another name", "was", p.Metadata().GetName(), "now", meta.GetName())
	}

	p.cfgMu.Lock()
	for _, req := range p.instances {
		cctx, cancel := context.WithTimeout(ctx, p.startTimeout)
		resp, err := proc.clients.Plugin.Configure(cctx, req)
		cancel()
		if err != nil {
			p.cfgMu.Unlock()
			p.destroy(proc)
			return nil, fmt.Errorf("configure instance %s again: %w", req.GetInstanceId(), err)
		}
		if hasErrors(resp.GetDiagnostics()) {
			// The configuration was accepted before; keep it recorded so the
			// next restart tries again, and let requests to it fail.
			p.log.Error("plugin rejected an instance it accepted before the restart",
				"instance", req.GetInstanceId(), "error", diagnosticsError(resp.GetDiagnostics()))
		}
	}
	if ctx.Err() != nil {
		p.cfgMu.Unlock()
		p.destroy(proc)
		return nil, ctx.Err()
	}
	p.mu.Lock()
	p.proc = proc
	p.meta = meta
	p.restarts++
	callbacks := append([]func(){}, p.callbacks...)
	p.mu.Unlock()
	p.clients.Store(proc.clients)
	p.cfgMu.Unlock()

	for _, err := range p.host.rebuildIndex() {
		p.log.Warn("plugin type conflict", "error", err)
	}
	p.log.Info("plugin restarted", "pid", proc.pid, "restarts", p.Restarts())
	for _, fn := range callbacks {
		fn()
	}
	return proc, nil
}

// close stops supervision, then drains and stops the running process.
func (p *Plugin) close(ctx context.Context) {
	p.superCancel()
	<-p.superDone
	p.clients.Store(nil)
	p.mu.Lock()
	proc := p.proc
	p.proc = nil
	p.mu.Unlock()
	if proc != nil {
		p.stopProcess(ctx, proc, true)
	}
	p.spawn.stop()
}

// diagnosticsError joins the error diagnostics into one error for logs.
func diagnosticsError(diags []*pluginv1.Diagnostic) error {
	var errs []error
	for _, d := range diags {
		if d.GetSeverity() != pluginv1.Diagnostic_ERROR {
			continue
		}
		msg := d.GetSummary()
		if len(d.GetAttributePath()) > 0 {
			msg = fmt.Sprintf("%v: %s", d.GetAttributePath(), msg)
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}
