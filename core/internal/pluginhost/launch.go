package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/metrics"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// Time limits of the stop sequence. Close's ctx bounds the drain; these bound
// what follows it, whatever the ctx says, so a stuck plugin cannot hold the
// core up forever (go-plugin's Kill alone can hang, pitfall 12).
const (
	// defaultDrain is the drain deadline when Close's ctx has none.
	defaultDrain = 10 * time.Second
	// killGrace bounds go-plugin's Kill, which itself waits 2 s for a
	// graceful exit before it kills.
	killGrace = 4 * time.Second
	// reapWait bounds the wait for a SIGKILLed process to be reaped.
	reapWait = 3 * time.Second
)

// logBufferSize is the longest plugin log line go-plugin parses as one line;
// longer lines are split and lose their level (pitfall 11).
const logBufferSize = 256 << 10

// passEnv are the host variables a plugin gets. Everything else stays out
// (go-plugin's SkipHostEnv), so secrets of the core do not leak into plugins.
// TMPDIR, TZ and the CA bundle variables are passed too: without them a
// plugin's sockets, timestamps and TLS roots could differ from the core's.
var passEnv = map[string]bool{
	"PATH":          true,
	"HOME":          true,
	"TMPDIR":        true,
	"TZ":            true,
	"SSL_CERT_FILE": true,
	"SSL_CERT_DIR":  true,
}

// passEnvPrefixes are passed whole: the core's own settings, Kafka client
// settings and AWS credentials (MSK IAM authentication runs in the plugin).
var passEnvPrefixes = []string{"SLUICE_", "KAFKA_", "AWS_", "KRB5"}

// pluginEnv filters the host environment down to what plugins may see.
func pluginEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == serve.Handshake.MagicCookieKey {
			// go-plugin sets the cookie itself.
			continue
		}
		keep := passEnv[k]
		for _, p := range passEnvPrefixes {
			if strings.HasPrefix(k, p) {
				keep = true
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

// parsePin decodes a sha256 pin written as 64 hex digits.
func parsePin(pin string) ([]byte, error) {
	pin = strings.TrimSpace(pin)
	b, err := hex.DecodeString(pin)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("sha256 pin %q is not 64 hex digits; compute it with `sha256sum <binary>`", pin)
	}
	return b, nil
}

// verifyPin checks the binary against its pin right before the fork, so a
// mismatch says which file, which digest and how to fix it, and the
// check-then-exec gap is as narrow as go-plugin's SecureConfig would make it.
func verifyPin(path string, pin []byte) error {
	if pin == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify sha256 pin: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("verify sha256 pin: %w", err)
	}
	got := h.Sum(nil)
	if !bytes.Equal(got, pin) {
		return fmt.Errorf("%w: %s has sha256 %x but the pin is %x; install the intended binary or update the plugin's sha256 pin",
			ErrChecksumMismatch, path, got, pin)
	}
	return nil
}

// spawner runs plugin starts on one goroutine locked to its OS thread.
//
// Linux delivers Pdeathsig when the thread that forked the child exits, not
// when the process does. An ordinary goroutine forks from whatever thread it
// happens to run on, and the runtime destroys a thread when a goroutine
// locked to it exits, so a plugin forked that way could be SIGKILLed while
// the core is healthy. The spawner's goroutine never unlocks its thread and
// stays alive for as long as a process it forked may run; it ends only after
// the plugin's processes are stopped, and the thread ends with it.
type spawner struct {
	jobs chan func()
}

func newSpawner() *spawner {
	s := &spawner{jobs: make(chan func())}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	// Never unlocked: when the loop returns, the runtime ends the thread
	// instead of reusing it.
	runtime.LockOSThread()
	for job := range s.jobs {
		job()
	}
}

// run runs fn on the spawner's thread and waits for it.
func (s *spawner) run(fn func()) {
	done := make(chan struct{})
	s.jobs <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// stop ends the spawner; run must not be called afterwards.
func (s *spawner) stop() { close(s.jobs) }

// process is one launched plugin process and its go-plugin client. A client
// cannot be started twice, so every restart makes a new process value.
type process struct {
	client  *goplugin.Client
	runner  *pluginRunner      // set by go-plugin through RunnerFunc; nil if it never got that far
	kill    context.CancelFunc // SIGKILLs the process through os/exec; also releases its context
	clients *serve.Clients
	// tunnel carries the data path when the plugin serves it; nil otherwise.
	tunnel *tunnel.Client
	pid    int
	upAt   time.Time
}

// started reports whether a process was forked at all.
func (pr *process) started() bool { return pr.runner != nil && pr.runner.pid != 0 }

// exited returns a channel closed once the process has ended and been reaped,
// or nil (never ready) when no process was forked.
func (pr *process) exited() <-chan struct{} {
	if !pr.started() {
		return nil
	}
	return pr.runner.exited
}

// hasExited reports whether the process has ended and been reaped.
func (pr *process) hasExited() bool {
	select {
	case <-pr.exited():
		return true
	default:
		return false
	}
}

// launch starts the plugin binary, dispenses its clients and reads its
// metadata. If ctx ends before the launch completes, the process is killed;
// afterwards ctx no longer matters.
//
// The process is started through go-plugin's RunnerFunc rather than its Cmd
// so that the core, not go-plugin, owns the exec.Cmd: only the fork runs on
// the spawner's locked thread (the handshake wait does not hold it), the
// exit is an event instead of a polled flag, stdin is not shared with the
// core, and the plugin's stderr passes through logSanitizer before
// go-plugin parses it. go-plugin's SecureConfig cannot check a RunnerFunc
// binary, so the runner checks the pin itself at the same point: right
// before the fork.
func (p *Plugin) launch(ctx context.Context) (*process, *pluginv1.GetMetadata_Response, error) {
	execCtx, kill := context.WithCancel(context.Background())
	abort := context.AfterFunc(ctx, kill)
	proc := &process{kill: kill}

	proc.client = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: serve.Handshake,
		Plugins:         serve.ClientPluginSet,
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			r, err := p.newRunner(execCtx, spec)
			proc.runner = r
			return r, err
		},
		StartTimeout:        p.startTimeout,
		AllowedProtocols:    []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:            true,
		SkipHostEnv:         true,
		Logger:              newHCLogAdapter(p.log, filepath.Base(p.path)),
		PluginLogBufferSize: logBufferSize,
		SyncStdout:          stdioWriter(p.log, "stdout"),
		SyncStderr:          stdioWriter(p.log, "stderr"),
		GRPCDialOptions:     p.dialOptions(),
	})

	if _, err := proc.client.Start(); err != nil {
		abort()
		p.destroy(proc)
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("start: %w", ctx.Err())
		}
		return nil, nil, fmt.Errorf("start: %w", err)
	}
	proc.pid = proc.runner.pid

	meta, err := p.handshake(ctx, proc)
	if err == nil && !abort() {
		err = ctx.Err()
	}
	if err != nil {
		abort()
		p.destroy(proc)
		return nil, nil, err
	}
	proc.upAt = time.Now()
	return proc, meta, nil
}

// pluginRunner is the runner.Runner go-plugin drives: a local process forked
// on the plugin's spawner thread with Pdeathsig.
type pluginRunner struct {
	p      *Plugin
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
	// pid is set by Start, on the spawner thread; spawner.run orders it
	// before any read.
	pid      int
	waitOnce sync.Once
	waitErr  error
	exited   chan struct{}
}

var _ runner.Runner = (*pluginRunner)(nil)

// newRunner prepares the command. spec carries what go-plugin wants in the
// environment (cookie, ports, AutoMTLS certificate, socket directory); it
// goes last so it wins over anything from the host.
func (p *Plugin) newRunner(execCtx context.Context, spec *exec.Cmd) (*pluginRunner, error) {
	// exec.CommandContext: cancelling execCtx SIGKILLs the process from
	// within os/exec, which is safe at any moment, even while it starts.
	cmd := exec.CommandContext(execCtx, p.path)
	cmd.Env = pluginEnv(os.Environ())
	if dir := p.host.opts.MetricsDir; dir != "" {
		// The core names the file after the plugin, so /metrics can label
		// what it reads with the plugin it came from; the plugin does not
		// get to say which plugin it is. It comes after the host's
		// variables so a stray one in the core's environment cannot win.
		cmd.Env = append(cmd.Env, metrics.FileEnv+"="+filepath.Join(dir, p.name+".prom"))
	}
	cmd.Env = append(cmd.Env, spec.Env...)
	// Pdeathsig: the kernel kills the plugin when the core dies, however it
	// dies. Setpgid puts the plugin in its own process group, so a signal sent
	// to the core's group (Ctrl-C in a terminal, `timeout`, a process
	// manager) reaches only the core, which then drains and stops its plugins
	// in order instead of watching them die mid-request.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &pluginRunner{
		p:      p,
		cmd:    cmd,
		stdout: stdout,
		stderr: newLogSanitizer(stderr),
		exited: make(chan struct{}),
	}, nil
}

// Start checks the pin and forks, on the spawner's locked thread.
func (r *pluginRunner) Start(context.Context) error {
	var err error
	r.p.spawn.run(func() {
		if err = verifyPin(r.p.path, r.p.pin); err != nil {
			return
		}
		if err = r.cmd.Start(); err == nil {
			r.pid = r.cmd.Process.Pid
		}
	})
	if err == nil {
		r.p.log.Debug("plugin process forked", "pid", r.pid, "path", r.p.path)
	}
	return err
}

// Diagnose explains the usual reason for a failed handshake.
func (r *pluginRunner) Diagnose(context.Context) string {
	return "Is it a Sluice plugin? A plugin serves with sdk/serve and must not write to stdout before the handshake " +
		"(logs go to stderr)."
}

// Stdout carries the handshake line.
func (r *pluginRunner) Stdout() io.ReadCloser { return r.stdout }

// Stderr carries the plugin's log lines, sanitised.
func (r *pluginRunner) Stderr() io.ReadCloser { return r.stderr }

// Name is the binary's path; go-plugin names the stderr logger after its
// base name.
func (r *pluginRunner) Name() string { return r.p.path }

// ID is the pid ("0" before the fork, so go-plugin's Kill still cleans up
// after a failed start).
func (r *pluginRunner) ID() string { return strconv.Itoa(r.pid) }

// Wait waits for the process (go-plugin calls it once the pipes are
// drained) and then signals the exit to the supervisor.
func (r *pluginRunner) Wait(context.Context) error {
	r.waitOnce.Do(func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	})
	<-r.exited
	return r.waitErr
}

// Kill sends SIGKILL; os.Process tracks its own state, so it cannot signal a
// recycled pid once the process has been reaped.
func (r *pluginRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// PluginToHost is the identity: the plugin runs on this host.
func (r *pluginRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin is the identity: the plugin runs on this host.
func (r *pluginRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// handshake dispenses the clients and reads and checks the metadata.
func (p *Plugin) handshake(ctx context.Context, proc *process) (*pluginv1.GetMetadata_Response, error) {
	rpc, err := proc.client.Client()
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	raw, err := rpc.Dispense(serve.PluginSetName)
	if err != nil {
		return nil, fmt.Errorf("dispense: %w", err)
	}
	clients, ok := raw.(*serve.Clients)
	if !ok {
		return nil, fmt.Errorf("dispense: got %T, want *serve.Clients", raw)
	}
	proc.clients = clients

	mctx, cancel := context.WithTimeout(ctx, p.startTimeout)
	defer cancel()
	meta, err := clients.Plugin.GetMetadata(mctx, &pluginv1.GetMetadata_Request{})
	if err != nil {
		return nil, fmt.Errorf("get metadata: %w", err)
	}
	if got := kindFromProto(meta.GetKind()); got != p.kind {
		return nil, fmt.Errorf("the binary's name says kind %q but the plugin reports kind %q; rename it sluice-plugin-%s-<name>",
			p.kind, got, got)
	}
	// A plugin built with an sdk older than the tunnel is still served, one
	// HTTP/2 stream per call.
	clients.Features = meta.GetFeatures()
	if slices.Contains(meta.GetFeatures(), tunnel.Feature) {
		proc.tunnel = clients.UseTunnel()
	}
	return meta, nil
}

// destroy stops a process that never came up or is already gone: no drain.
func (p *Plugin) destroy(proc *process) {
	p.stopProcess(context.Background(), proc, false)
}

// stopProcess ends a process: Drain (bounded by ctx's deadline, or
// defaultDrain), then go-plugin's Kill bounded by killGrace, then SIGKILL, and
// waits until the process is reaped so none is left behind.
func (p *Plugin) stopProcess(ctx context.Context, proc *process, drain bool) {
	// Releases the exec context in every case.
	defer proc.kill()
	if proc.tunnel != nil {
		defer proc.tunnel.Close()
	}
	if drain && proc.clients != nil && !proc.hasExited() {
		p.drain(ctx, proc)
	}

	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// go-plugin's Kill closes the connection (the plugin shuts down
		// gracefully), waits up to 2 s, then kills; it also removes its
		// temporary directory.
		proc.client.Kill()
	}()
	select {
	case <-killed:
	case <-time.After(killGrace):
		p.log.Warn("plugin did not stop in time; sending SIGKILL", "pid", proc.pid, "grace", killGrace)
	}

	// A process that never started (exec failed, pin refused) has nothing to
	// kill and will never be seen exiting.
	if !proc.started() || proc.hasExited() {
		return
	}
	proc.kill()
	if err := proc.runner.Kill(context.Background()); err != nil {
		p.log.Warn("SIGKILL failed", "pid", proc.pid, "error", err)
	}
	select {
	case <-proc.exited():
	case <-time.After(reapWait):
		p.log.Error("plugin process was sent SIGKILL but has not been reaped", "pid", proc.pid)
	}
}

// drain asks the plugin to finish in-flight work before the deadline.
func (p *Plugin) drain(ctx context.Context, proc *process) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultDrain)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	ms := time.Until(deadline).Milliseconds()
	if ms <= 0 {
		return
	}
	if _, err := proc.clients.Plugin.Drain(ctx, &pluginv1.Drain_Request{DeadlineMs: ms}); err != nil {
		p.log.Warn("plugin drain failed", "error", err)
	}
}

// kindFromProto maps the wire kind to the author-facing one ("" when unknown).
func kindFromProto(k pluginv1.Kind) lifecycle.Kind {
	switch k {
	case pluginv1.Kind_ENDPOINT:
		return lifecycle.KindEndpoint
	case pluginv1.Kind_ENTRYPOINT:
		return lifecycle.KindEntrypoint
	case pluginv1.Kind_POLICY:
		return lifecycle.KindPolicy
	}
	return ""
}

// dialOptions are the SDK's dial options plus, when the host observes RPCs,
// an interceptor that times each unary call.
func (p *Plugin) dialOptions() []grpc.DialOption {
	opts := serve.GRPCDialOptions()
	observe := p.host.opts.ObserveRPC
	if observe == nil {
		return opts
	}
	return append(opts, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, callOpts...)
		observe(p.name, path.Base(method), time.Since(start))
		return err
	}))
}
