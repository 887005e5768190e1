package pluginhost

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// testPluginName is the plugin built from testdata/testplugin.
const testPluginName = "policy-test"

// pluginDir holds the built test plugin; TestMain fills it.
var pluginDir string

// childEnv makes the test binary act as a host process for
// TestPluginDiesWithHost: it starts the plugins of the directory named by the
// variable, prints the plugin's pid and waits to be killed.
const childEnv = "PLUGINHOST_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChildHost(dir)
		return
	}
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, BinaryPrefix+testPluginName), "./testdata/testplugin")
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test plugin:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runChildHost(dir string) {
	h := New(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := h.Start(context.Background()); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(h.Plugins()[0].Pid())
	select {}
}

// recorder keeps every log record, for assertions on re-emitted plugin lines.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler { return &withAttrs{r, attrs} }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

// find returns the attributes of the first record with msg, including those
// added by With, and whether there was one.
func (r *recorder) find(msg string) (slog.Level, map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		return rec.Level, attrs, true
	}
	return 0, nil, false
}

type withAttrs struct {
	r     *recorder
	attrs []slog.Attr
}

func (w *withAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (w *withAttrs) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(w.attrs...)
	return w.r.Handle(ctx, rec)
}
func (w *withAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &withAttrs{w.r, append(append([]slog.Attr(nil), w.attrs...), attrs...)}
}
func (w *withAttrs) WithGroup(string) slog.Handler { return w }

// onRequest asks the test plugin what it knows, as string attributes.
func onRequest(t *testing.T, p *Plugin, instance string) map[string]string {
	t.Helper()
	c, err := p.Clients()
	if err != nil {
		t.Fatalf("Clients: %v", err)
	}
	resp, err := c.Policy.OnRequest(context.Background(), &pluginv1.OnRequest_Request{
		InstanceId: instance,
		Context:    &pluginv1.Context{ApiId: "api"},
	})
	if err != nil {
		t.Fatalf("OnRequest: %v", err)
	}
	out := map[string]string{}
	for k, v := range resp.GetSetAttributes() {
		if k == "test.pid" {
			out[k] = strconv.FormatFloat(v.GetNumberValue(), 'f', -1, 64)
		} else {
			out[k] = v.GetStringValue()
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes. Only a bound:
// no test depends on how fast anything happens.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs (absent, or a zombie left to
// an init that does not reap).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestLifecycleRestartAndClose(t *testing.T) {
	drainDir := t.TempDir()
	t.Setenv("SLUICE_TEST_MARKER", "passed")
	t.Setenv("AWS_TEST_MARKER", "aws")
	t.Setenv("PLUGINHOST_TEST_PRIVATE", "leaked")
	t.Setenv("SLUICE_TEST_DRAIN_DIR", drainDir)

	rec := &recorder{}
	h := New(Options{Dir: pluginDir, Logger: slog.New(rec)})
	closed := false
	defer func() {
		if !closed {
			h.Close(context.Background())
		}
	}()
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := h.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}

	plugins := h.Plugins()
	if len(plugins) != 1 {
		t.Fatalf("Plugins: got %d, want 1", len(plugins))
	}
	p := plugins[0]
	if p.Name() != testPluginName || p.Kind() != lifecycle.KindPolicy || !p.Up() {
		t.Fatalf("plugin: name %q kind %q up %v", p.Name(), p.Kind(), p.Up())
	}
	if want := filepath.Join(pluginDir, BinaryPrefix+testPluginName); p.Path() != want {
		t.Errorf("Path: got %q, want %q", p.Path(), want)
	}
	meta := p.Metadata()
	if meta.GetKind() != pluginv1.Kind_POLICY || meta.GetName() != testPluginName || meta.GetVersion() != "0.0.1" {
		t.Errorf("Metadata: %v", meta)
	}

	for _, typ := range []string{"test", "test-alias"} {
		lp, ti, ok := h.Lookup(lifecycle.KindPolicy, typ)
		if !ok || lp != p || ti.GetName() != "test" {
			t.Errorf("Lookup(%q): %v %v %v", typ, lp, ti, ok)
		}
	}
	if _, _, ok := h.Lookup(lifecycle.KindEndpoint, "test"); ok {
		t.Error("Lookup found a policy type under the endpoint kind")
	}
	if ti, ok := h.TypeInfo(lifecycle.KindPolicy, "test-alias"); !ok || ti.GetDescription() != "Reports what the plugin host did." {
		t.Errorf("TypeInfo: %v %v", ti, ok)
	}
	if got := h.KnownTypes(lifecycle.KindPolicy); len(got) != 1 || got[0] != "test" {
		t.Errorf("KnownTypes: %v", got)
	}

	ctx := context.Background()
	diags, err := h.Validate(ctx, lifecycle.KindPolicy, "test-alias", []byte(`{"bad":true}`))
	if err != nil || len(diags) != 1 || diags[0].GetSeverity() != pluginv1.Diagnostic_ERROR ||
		diags[0].GetSummary() != "bad is set" || strings.Join(diags[0].GetAttributePath(), ".") != "bad" {
		t.Errorf("Validate bad: %v %v", diags, err)
	}
	if diags, err := h.Validate(ctx, lifecycle.KindPolicy, "test", []byte(`{}`)); err != nil || len(diags) != 0 {
		t.Errorf("Validate good: %v %v", diags, err)
	}
	_, err = h.Validate(ctx, lifecycle.KindPolicy, "nope", nil)
	if !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "known policy types: test") {
		t.Errorf("Validate unknown type: %v", err)
	}

	restarted := make(chan struct{}, 4)
	p.OnRestart(func() { restarted <- struct{}{} })

	for _, id := range []string{"b", "a", "c"} {
		if diags, err := p.Configure(ctx, &pluginv1.Configure_Request{InstanceId: id, Type: "test", ConfigJson: []byte(`{}`)}); err != nil || len(diags) != 0 {
			t.Fatalf("Configure %s: %v %v", id, diags, err)
		}
	}
	diags, err = p.Configure(ctx, &pluginv1.Configure_Request{InstanceId: "rejected", Type: "test", ConfigJson: []byte(`{"bad":true}`)})
	if err != nil || len(diags) != 1 {
		t.Fatalf("Configure rejected: %v %v", diags, err)
	}
	if err := p.Unconfigure(ctx, "c"); err != nil {
		t.Fatalf("Unconfigure: %v", err)
	}
	if _, err := p.Configure(ctx, &pluginv1.Configure_Request{}); err == nil {
		t.Error("Configure without an instance id succeeded")
	}

	before := onRequest(t, p, "a")
	want := map[string]string{
		"test.instances":   "a,b",
		"test.env.marker":  "passed",
		"test.env.aws":     "aws",
		"test.env.private": "",
	}
	for k, v := range want {
		if before[k] != v {
			t.Errorf("before restart: %s = %q, want %q", k, before[k], v)
		}
	}
	pid, _ := strconv.Atoi(before["test.pid"])
	if pid == 0 || pid != p.Pid() {
		t.Fatalf("pid: plugin says %q, host says %d", before["test.pid"], p.Pid())
	}

	// The plugin's own stderr line comes back through slog under its name.
	level, attrs, ok := rec.find("instance configured")
	if !ok {
		t.Error("the plugin's log line was not re-emitted")
	} else if level != slog.LevelInfo || attrs["plugin"] != testPluginName || attrs["instance"] != "b" {
		t.Errorf("re-emitted plugin line: level %v attrs %v", level, attrs)
	} else if _, ok := attrs["timestamp"]; ok {
		t.Errorf("re-emitted plugin line kept go-plugin's timestamp: %v", attrs)
	}
	// Stray stdout after the handshake arrives asynchronously over gRPC.
	waitFor(t, "the plugin's stdout line", func() bool {
		_, attrs, ok := rec.find("stray stdout b")
		return ok && attrs["stream"] == "stdout" && attrs["plugin"] == testPluginName
	})
	// The malformed line was repaired instead of crashing the core.
	level, attrs, ok = rec.find(`{"instance":"b"}`)
	if !ok || level != slog.LevelWarn || attrs["plugin"] != testPluginName {
		t.Errorf("repaired plugin line: found %v level %v attrs %v", ok, level, attrs)
	}

	// A crash: the supervisor restarts the plugin and configures a and b again.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-restarted:
	case <-time.After(20 * time.Second):
		t.Fatal("the plugin was not restarted")
	}
	if !p.Up() || p.Restarts() != 1 {
		t.Fatalf("after restart: up %v restarts %d", p.Up(), p.Restarts())
	}
	after := onRequest(t, p, "a")
	if after["test.instances"] != "a,b" {
		t.Errorf("after restart: instances %q, want a,b", after["test.instances"])
	}
	newPid, _ := strconv.Atoi(after["test.pid"])
	if newPid == pid || newPid != p.Pid() {
		t.Errorf("after restart: pid %d (old %d, host says %d)", newPid, pid, p.Pid())
	}
	waitFor(t, "the killed process to be reaped", func() bool { return processGone(pid) })
	if _, _, ok := rec.find("plugin process exited unexpectedly; restarting it"); !ok {
		t.Error("the crash was not logged")
	}

	h.Close(ctx)
	closed = true
	if !processGone(newPid) {
		t.Errorf("process %d still runs after Close", newPid)
	}
	if _, err := os.Stat(filepath.Join(drainDir, fmt.Sprintf("drained-%d", newPid))); err != nil {
		t.Errorf("Close did not drain the plugin: %v", err)
	}
	if _, err := p.Clients(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), testPluginName) {
		t.Errorf("Clients after Close: %v", err)
	}
	if p.Up() || p.Pid() != 0 {
		t.Error("plugin still up after Close")
	}
	select {
	case <-restarted:
		t.Error("Close triggered a restart")
	default:
	}
	h.Close(ctx) // idempotent
	if err := h.Start(ctx); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestPins(t *testing.T) {
	bin, err := os.ReadFile(filepath.Join(pluginDir, BinaryPrefix+testPluginName))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	good := hex.EncodeToString(sum[:])
	wrong := strings.Repeat("0", 64)

	tests := map[string]struct {
		pins    map[string]string
		started bool
		errs    []string
		is      error
	}{
		"matching pin": {
			pins:    map[string]string{testPluginName: strings.ToUpper(good)},
			started: true,
		},
		"wrong pin": {
			pins: map[string]string{testPluginName: wrong},
			errs: []string{"plugin policy-test", "has sha256 " + good, "the pin is " + wrong},
			is:   ErrChecksumMismatch,
		},
		"malformed pin": {
			pins: map[string]string{testPluginName: "abc"},
			errs: []string{`plugin policy-test: sha256 pin "abc" is not 64 hex digits`},
		},
		"pin without binary": {
			pins:    map[string]string{"endpoint-missing": good},
			started: true,
			errs:    []string{"plugin endpoint-missing: a sha256 pin is set but", "has no sluice-plugin-endpoint-missing binary"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := New(Options{Dir: pluginDir, Pins: tc.pins, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer h.Close(context.Background())
			err := h.Start(context.Background())
			if len(tc.errs) == 0 && err != nil {
				t.Fatalf("Start: %v", err)
			}
			for _, s := range tc.errs {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("Start error %v does not contain %q", err, s)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Start error %v is not %v", err, tc.is)
			}
			if got := len(h.Plugins()) == 1; got != tc.started {
				t.Errorf("started: got %v, want %v", got, tc.started)
			}
		})
	}
}

func TestBrokenBinariesDoNotBlockOthers(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(pluginDir, BinaryPrefix+testPluginName), filepath.Join(dir, BinaryPrefix+testPluginName)); err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		content string
		mode    os.FileMode
	}{
		BinaryPrefix + "policy-chatty":  {"#!/bin/sh\necho hello\n", 0o755},
		BinaryPrefix + "policy-exits":   {"#!/bin/sh\necho oops >&2\nexit 3\n", 0o755},
		BinaryPrefix + "policy-hangs":   {"#!/bin/sh\nexec sleep 600\n", 0o755},
		BinaryPrefix + "policy-noexec":  {"#!/bin/sh\n", 0o644},
		BinaryPrefix + "widget-thing":   {"#!/bin/sh\n", 0o755},
		BinaryPrefix + "endpoint-wrong": {"", 0o755}, // replaced by a symlink below
		"README.md":                     {"not a plugin\n", 0o644},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// A real plugin whose name claims the wrong kind.
	wrong := filepath.Join(dir, BinaryPrefix+"endpoint-wrong")
	os.Remove(wrong)
	if err := os.Symlink(filepath.Join(pluginDir, BinaryPrefix+testPluginName), wrong); err != nil {
		t.Fatal(err)
	}

	h := New(Options{Dir: dir, StartTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer h.Close(context.Background())
	err := h.Start(context.Background())
	if err == nil {
		t.Fatal("Start reported no error")
	}
	for _, s := range []string{
		"plugin policy-chatty (" + filepath.Join(dir, BinaryPrefix+"policy-chatty") + "): start: Unrecognized remote plugin message: hello",
		"plugin policy-exits (",
		"plugin policy-hangs (",
		"plugin policy-noexec (" + filepath.Join(dir, BinaryPrefix+"policy-noexec") + "): not executable; run chmod +x on it",
		"plugin widget-thing (" + filepath.Join(dir, BinaryPrefix+"widget-thing") + "): the name must be sluice-plugin-<kind>-<name> with kind endpoint, entrypoint or policy",
		`plugin endpoint-wrong (` + wrong + `): the binary's name says kind "endpoint" but the plugin reports kind "policy"`,
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Start error does not contain %q:\n%v", s, err)
		}
	}
	if strings.Contains(err.Error(), "README") {
		t.Errorf("a file without the prefix was reported: %v", err)
	}
	plugins := h.Plugins()
	if len(plugins) != 1 || plugins[0].Name() != testPluginName || !plugins[0].Up() {
		t.Fatalf("Plugins: %v", plugins)
	}
	if got := onRequest(t, plugins[0], "x")["test.instances"]; got != "" {
		t.Errorf("instances: %q", got)
	}
}

func TestStartErrors(t *testing.T) {
	tests := map[string]struct {
		dir  string
		want string
	}{
		"no dir":      {"", "plugin directory: not set"},
		"missing dir": {filepath.Join(pluginDir, "missing"), "plugin directory: open " + filepath.Join(pluginDir, "missing")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := New(Options{Dir: tc.dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer h.Close(context.Background())
			err := h.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := New(Options{Dir: pluginDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer h.Close(context.Background())
	err := h.Start(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start: got %v, want context.Canceled", err)
	}
	if len(h.Plugins()) != 0 {
		t.Errorf("plugins started despite a cancelled context")
	}
}

// TestPluginDiesWithHost kills a host process with SIGKILL, which runs no
// cleanup at all, and checks that its plugin does not outlive it.
func TestPluginDiesWithHost(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A SIGKILLed host cannot remove go-plugin's socket directory; keep it
	// in the test's own temporary directory.
	cmd.Env = append(os.Environ(), childEnv+"="+pluginDir, "TMPDIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's output: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		t.Fatalf("child host said %q", line)
	}
	if processGone(pid) {
		t.Fatalf("plugin %d is not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "the orphaned plugin to die", func() bool { return processGone(pid) })
}
