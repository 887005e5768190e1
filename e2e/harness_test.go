// Package e2e runs the real sluice binary with its plugin subprocesses against
// the embedded broker (or, with SLUICE_KAFKA_BOOTSTRAP set, a real Apache
// Kafka) and checks what clients and an independent Kafka client (franz-go) see.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// binDir is where `make build` put sluice and its plugins.
func binDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SLUICE_BIN_DIR")
	if dir == "" {
		dir = "../bin"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "sluice")); err != nil {
		t.Fatalf("no sluice binary in %s: run `make build` first (%v)", abs, err)
	}
	return abs
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Gateway is one running sluice process.
type Gateway struct {
	t         testing.TB
	cmd       *exec.Cmd
	Dir       string
	Listen    string
	Admin     string
	Kafka     string
	logs      *syncBuffer
	waitErr   chan error
	stopOnce  sync.Once
	ConfigHCL string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// GatewayConfig parametrises the HCL written for a test gateway.
type GatewayConfig struct {
	Listen, Admin, PluginDir, Kafka, DataDir string
	// PluginDirs, when set, is written as plugin_dirs instead of plugin_dir.
	PluginDirs []string
	// Embedded starts dev_kafka; false uses an external broker at Kafka.
	Embedded bool
	// Topics are created with their partition counts.
	Topics map[string]int
	// APIs is raw HCL for the api blocks; {{.Kafka}} expands to the bootstrap address.
	APIs string
	// GatewayExtra is raw HCL added inside the gateway block (e.g. a log block).
	GatewayExtra string
}

const gatewayTemplate = `
gateway {
  listen       = "{{.Listen}}"
  admin_listen = "{{.Admin}}"
{{if .PluginDirs}}  plugin_dirs  = [{{range .PluginDirs}}"{{.}}", {{end}}]{{else}}  plugin_dir   = "{{.PluginDir}}"{{end}}
{{.GatewayExtra}}
}
{{if .Embedded}}
dev_kafka {
  listen   = "{{.Kafka}}"
  data_dir = "{{.DataDir}}"
  topics   = { {{range $k, $v := .Topics}}"{{$k}}" = {{$v}}, {{end}} }
}
{{end}}
{{.APIs}}
`

// StartGateway writes the config, starts sluice and waits for /ready.
func StartGateway(t testing.TB, apis string, topics map[string]int) *Gateway {
	t.Helper()
	return StartGatewayWith(t, apis, topics, "")
}

// StartGatewayWith is StartGateway with gatewayExtra added inside the
// gateway block.
func StartGatewayWith(t testing.TB, apis string, topics map[string]int, gatewayExtra string) *Gateway {
	t.Helper()
	return StartGatewayIn(t, filepath.Join(binDir(t), "plugins"), apis, topics, gatewayExtra)
}

// StartGatewayIn is StartGatewayWith with another plugin directory.
func StartGatewayIn(t testing.TB, pluginDir, apis string, topics map[string]int, gatewayExtra string) *Gateway {
	t.Helper()
	return startGateway(t, pluginDir, apis, topics, gatewayExtra, nil)
}

// startGateway is StartGatewayIn searching extraPluginDirs after pluginDir
// (plugin_dirs), when there are any.
func startGateway(t testing.TB, pluginDir, apis string, topics map[string]int, gatewayExtra string, extraPluginDirs []string) *Gateway {
	t.Helper()
	g := launchGateway(t, pluginDir, apis, topics, gatewayExtra, extraPluginDirs)
	g.WaitReady(60 * time.Second)
	return g
}

// StartGatewayUnready is StartGateway for a gateway that cannot become
// ready (its broker is down): it waits only until the admin listener
// answers /ready, whatever the answer.
func StartGatewayUnready(t testing.TB, apis string, topics map[string]int) *Gateway {
	t.Helper()
	g := launchGateway(t, filepath.Join(binDir(t), "plugins"), apis, topics, "", nil)
	g.WaitReadyStatus(60*time.Second, 0, "")
	return g
}

// launchGateway writes the config and starts sluice, without waiting.
func launchGateway(t testing.TB, pluginDir, apis string, topics map[string]int, gatewayExtra string, extraPluginDirs []string) *Gateway {
	t.Helper()
	bin := binDir(t)
	dir := t.TempDir()
	cfg := GatewayConfig{
		Listen:    freeAddr(t),
		Admin:     freeAddr(t),
		PluginDir: pluginDir,
		DataDir:   filepath.Join(dir, "kafka"),
		Topics:    topics,

		GatewayExtra: gatewayExtra,
	}
	if len(extraPluginDirs) > 0 {
		cfg.PluginDirs = append([]string{cfg.PluginDir}, extraPluginDirs...)
	}
	if ext := os.Getenv("SLUICE_KAFKA_BOOTSTRAP"); ext != "" {
		cfg.Kafka = ext
		createTopics(t, ext, topics)
	} else {
		cfg.Kafka = freeAddr(t)
		cfg.Embedded = true
	}
	apiText := new(strings.Builder)
	if err := template.Must(template.New("apis").Funcs(template.FuncMap{"env": os.Getenv}).Parse(apis)).Execute(apiText, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.APIs = apiText.String()
	text := new(strings.Builder)
	if err := template.Must(template.New("gw").Parse(gatewayTemplate)).Execute(text, cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{t: t, Dir: dir, Listen: cfg.Listen, Admin: cfg.Admin, Kafka: cfg.Kafka, logs: &syncBuffer{}, waitErr: make(chan error, 1), ConfigHCL: text.String()}
	g.cmd = exec.Command(filepath.Join(bin, "sluice"), "run", path)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.waitErr <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", g.logs.String())
		}
	})
	return g
}

// WaitReady polls the admin /ready endpoint.
func (g *Gateway) WaitReady(timeout time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-g.waitErr:
			// Put it back for Stop, which the cleanup runs.
			g.waitErr <- err
			g.t.Fatalf("gateway exited before ready: %v\n%s", err, g.logs.String())
		default:
		}
		resp, err := http.Get("http://" + g.Admin + "/ready")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("gateway not ready after %s (last: %s)\n%s", timeout, last, g.logs.String())
}

// WaitReadyStatus polls the admin /ready endpoint until it answers status
// (any status when 0) with a body containing want, and returns the body.
func (g *Gateway) WaitReadyStatus(timeout time.Duration, status int, want string) string {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + g.Admin + "/ready")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if (status == 0 || resp.StatusCode == status) && strings.Contains(string(body), want) {
				return string(body)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("/ready did not answer %d with %q within %s (last: %s)", status, want, timeout, last)
	return ""
}

// Stop sends SIGTERM and waits for the process to exit.
func (g *Gateway) Stop() {
	g.stopOnce.Do(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.waitErr:
		case <-time.After(20 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.waitErr
			g.t.Errorf("gateway did not stop within 20s of SIGTERM")
		}
	})
}

// Logs returns what the gateway printed so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// URL returns the gateway URL of a path.
func (g *Gateway) URL(path string) string { return "http://" + g.Listen + path }

// Kgo returns an independent Kafka client on the test's broker.
func (g *Gateway) Kgo(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(g.Kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func createTopics(t testing.TB, bootstrap string, topics map[string]int) {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	adm := kadm.NewClient(c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, parts := range topics {
		_, _ = adm.DeleteTopics(ctx, name)
		var err error
		for i := 0; i < 50; i++ {
			var resp kadm.CreateTopicResponse
			resp, err = adm.CreateTopic(ctx, int32(parts), 1, nil, name)
			if err == nil {
				err = resp.Err
			}
			if err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
}

// ReadRecords consumes n records of topic from the start with an independent client.
func (g *Gateway) ReadRecords(t testing.TB, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	c := g.Kgo(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s before timeout", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// Produce writes records with an independent client.
func (g *Gateway) Produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	c := g.Kgo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func newSSEReader(resp *http.Response) *SSEReader {
	return &SSEReader{r: bufio.NewReader(resp.Body)}
}

// SSEReader reads a text/event-stream response chunk by chunk (an event ends
// with a blank line).
type SSEReader struct {
	r *bufio.Reader
}

// NextEvent returns the next raw event text including its terminating blank line.
func (s *SSEReader) NextEvent() (string, error) {
	var b strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
	}
}

// withAdmin runs fn with an admin client that is closed when fn returns.
func withAdmin(t *testing.T, g *Gateway, fn func(adm *kadm.Client)) {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(g.Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fn(kadm.NewClient(c))
}

// groupsWithPrefix lists the consumer groups whose name starts with prefix.
func groupsWithPrefix(t *testing.T, adm *kadm.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	var out []string
	for _, name := range listed.Groups() {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}
