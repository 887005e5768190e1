package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// faultAPI serves every entrypoint on one Kafka endpoint, with a
// subscribe-phase policy so that a stream crosses all three plugin kinds
// (entrypoint, endpoint, policy).
const faultAPI = `
api "faults" {
  context_path = "/faults"
  plan "keyless" {}
  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 100
    messages_limit_duration_ms = 1000
  }
  entrypoint "sse" {
    qos                      = "at-least-once"
    heartbeat_interval_in_ms = 2000
  }
  entrypoint "websocket" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["faults"]
    }
    consumer {
      enabled           = true
      topics            = ["faults"]
      auto_offset_reset = "earliest"
    }
  }
  flow "tag" {
    subscribe {
      policy "assign-attributes" {
        attribute {
          name  = "seen"
          value = "yes"
        }
      }
    }
  }
}
`

// sseEvent is one SSE event as a client sees it.
type sseClientEvent struct {
	id, event, data string
}

// parseClientEvent reads the fields of one raw event.
func parseClientEvent(raw string) sseClientEvent {
	var ev sseClientEvent
	var data []string
	for _, line := range strings.Split(strings.TrimSuffix(raw, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
	ev.data = strings.Join(data, "\n")
	return ev
}

// resumingSSE is an at-least-once client that reconnects with Last-Event-ID
// whenever its stream ends (error event, closed connection, refused
// request), as a browser's EventSource does, and records every data event.
type resumingSSE struct {
	g        *Gateway
	path     string
	clientID string

	mu       sync.Mutex
	values   []string
	lastID   string
	opens    int
	errors   []string
	progress chan struct{}
}

// run streams until ctx ends.
func (c *resumingSSE) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.once(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *resumingSSE) once(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.g.URL(c.path), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Gravitee-Client-Identifier", c.clientID)
	c.mu.Lock()
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	c.opens++
	c.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		c.mu.Lock()
		c.errors = append(c.errors, fmt.Sprintf("open: %d", resp.StatusCode))
		c.mu.Unlock()
		return
	}
	r := &SSEReader{r: bufio.NewReader(resp.Body)}
	for {
		raw, err := r.NextEvent()
		if err != nil {
			return
		}
		ev := parseClientEvent(raw)
		switch ev.event {
		case "message":
			c.mu.Lock()
			c.values = append(c.values, ev.data)
			c.lastID = ev.id
			c.mu.Unlock()
			select {
			case c.progress <- struct{}{}:
			default:
			}
		case "error":
			c.mu.Lock()
			c.errors = append(c.errors, ev.data)
			c.mu.Unlock()
			return
		}
	}
}

// addValues counts the values c got into seen.
func (c *resumingSSE) addValues(seen map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.values {
		seen[v]++
	}
}

func (c *resumingSSE) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.values)
}

// TestPluginKilledMidStreamLosesNothing kills each kind of plugin with
// SIGKILL while an at-least-once SSE client is reading a topic that is being
// written to, and checks that the supervisor brings it back and that the
// client, resuming with Last-Event-ID, ends up with every record exactly
// once and in order. One partition: Last-Event-ID names one position, so
// with more partitions the others resume from the group's commits, where
// at-least-once allows repeats.
func TestPluginKilledMidStreamLosesNothing(t *testing.T) {
	for _, plugin := range []string{"endpoint-kafka", "entrypoint-sse", "policy-assign-attributes"} {
		t.Run(plugin, func(t *testing.T) {
			g := StartGateway(t, faultAPI, map[string]int{"faults": 1})
			const total = 600
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			// Records keep arriving before, during and after the kill.
			produced := produceSteadily(ctx, t, g, total, 40*time.Millisecond, func(i int) *kgo.Record {
				return &kgo.Record{Value: []byte(fmt.Sprintf("m-%04d", i))}
			})

			c := &resumingSSE{g: g, path: "/faults", clientID: uniqueID("kill"), progress: make(chan struct{}, 1)}
			done := make(chan struct{})
			go func() { c.run(ctx); close(done) }()

			waitCount(t, c, 100)
			restartsBefore, _ := g.metric(t, "sluice_plugin_restarts_total", `plugin="`+plugin+`"`)
			killedAt := time.Now()
			g.killPlugin(t, "sluice-plugin-"+plugin)
			took := g.waitPluginRestarted(t, plugin, restartsBefore+1, killedAt)
			t.Logf("%s restarted and re-configured %v after SIGKILL", plugin, took.Round(time.Millisecond))

			if err := <-produced; err != nil {
				t.Fatalf("produce: %v", err)
			}
			waitCount(t, c, total)
			// Anything more that arrives would be a duplicate: give it the
			// chance to show up before cancelling, bounded by a heartbeat.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) && c.count() == total {
				time.Sleep(100 * time.Millisecond)
			}
			cancel()
			<-done

			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.values) != total {
				t.Fatalf("client saw %d events for %d records (duplicates)", len(c.values), total)
			}
			for i, v := range c.values {
				if want := fmt.Sprintf("m-%04d", i); v != want {
					t.Fatalf("event %d is %q, want %q (lost, repeated or reordered)", i, v, want)
				}
			}
			t.Logf("%d records, 0 lost, 0 duplicates, %d connections, stream errors seen: %q", total, c.opens, c.errors)
		})
	}
}

// waitCount waits until the client has seen n events; a stall is a failure.
func waitCount(t *testing.T, c *resumingSSE, n int) {
	t.Helper()
	stall := time.NewTimer(30 * time.Second)
	defer stall.Stop()
	last := c.count()
	for last < n {
		select {
		case <-c.progress:
			if now := c.count(); now > last {
				last = now
				stall.Reset(30 * time.Second)
			}
		case <-stall.C:
			t.Fatalf("client stuck at %d of %d events; errors %q", c.count(), n, c.errors)
		case <-time.After(100 * time.Millisecond):
			last = c.count()
		}
	}
}

// floodWrapper stands in for a plugin binary: it starts a background writer
// flooding stderr (200k log lines in the plugin log format, then one 4 MB
// line without a newline, then a last log line) and execs the real plugin,
// which inherits the same stderr.
const floodWrapper = `#!/bin/sh
if [ "$1" != "describe" ]; then
  ( yes '{"@level":"info","@message":"flood: a plugin that logs far too much, as fast as it can"}' | head -n 200000
    head -c 4000000 /dev/zero | tr '\0' x
    echo
    echo '{"@level":"info","@message":"flood done"}' ) >&2 &
fi
exec %s "$@"
`

// TestPluginFloodingStderrDoesNotStallTheGateway runs the assign-attributes
// policy, which every published message crosses, behind a wrapper that
// floods stderr with 30 MB of lines and a 4 MB line: the plugin must still
// handshake and stay up (no restart), every POST made meanwhile must be
// accepted and become a record, and the core must not keep the flood in
// memory.
func TestPluginFloodingStderrDoesNotStallTheGateway(t *testing.T) {
	real := binDir(t)
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(real, "sluice"), filepath.Join(dir, "sluice")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(real, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, dst := filepath.Join(real, "plugins", e.Name()), filepath.Join(dir, "plugins", e.Name())
		if e.Name() == "sluice-plugin-policy-assign-attributes" {
			if err := os.WriteFile(dst, []byte(fmt.Sprintf(floodWrapper, src)), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Symlink(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SLUICE_BIN_DIR", dir)
	api := strings.Replace(faultAPI, `flow "tag" {
    subscribe {`, `flow "tag" {
    publish {`, 1)
	g := StartGateway(t, api, map[string]int{"faults": 1})
	before := rssBytes(t, g.cmd.Process.Pid)

	const posts = 300
	accepted := 0
	for i := 0; i < posts; i++ {
		resp, body := post(t, g, "/faults", fmt.Sprintf("p-%03d", i), nil)
		if resp.StatusCode != 202 {
			t.Fatalf("POST %d during the flood: %d %s", i, resp.StatusCode, body)
		}
		accepted++
	}
	recs := g.ReadRecords(t, "faults", posts, 30*time.Second)
	for i, r := range recs {
		if want := fmt.Sprintf("p-%03d", i); string(r.Value) != want {
			t.Fatalf("record %d is %q, want %q", i, r.Value, want)
		}
	}
	// The flood is over once its last line shows up in the gateway's log: a
	// core that stopped reading the pipe would leave the writer (and the
	// plugin's own logging) blocked forever.
	deadline := time.Now().Add(120 * time.Second)
	for !strings.Contains(g.Logs(), "flood done") {
		if time.Now().After(deadline) {
			t.Fatal("the flood never reached the gateway's log")
		}
		time.Sleep(200 * time.Millisecond)
	}
	label := `plugin="policy-assign-attributes"`
	if r, _ := g.metric(t, "sluice_plugin_restarts_total", label); r != 0 {
		t.Fatalf("the flooding plugin was restarted %v times", r)
	}
	if up, _ := g.metric(t, "sluice_plugin_up", label); up != 1 {
		t.Fatalf("the flooding plugin is not up")
	}
	after := rssBytes(t, g.cmd.Process.Pid)
	t.Logf("%d POSTs accepted during the flood; core RSS %d MiB before, %d MiB after %d MiB of stderr",
		accepted, before>>20, after>>20, (200000*90+4000000)>>20)
	if after-before > 24<<20 {
		t.Fatalf("core RSS grew by %d MiB during the flood", (after-before)>>20)
	}
}

// TestStoppedPluginCallsHaveDeadlines freezes a plugin with SIGSTOP (a
// plugin that stops answering without dying, so no crash is noticed) and
// checks that a request needing it still ends, with a 5xx in the failure
// format rather than a hang, that the gateway stays healthy and serves
// requests that do not need it, and that the plugin serves again once it
// resumes.
//
// The deadline is limits { plugin_call_timeout_ms }, 2 s here.
func TestStoppedPluginCallsHaveDeadlines(t *testing.T) {
	for _, tc := range []struct {
		plugin string
		api    string
	}{
		// The publish-phase policy every POST crosses.
		{"policy-assign-attributes", strings.Replace(faultAPI, `flow "tag" {
    subscribe {`, `flow "tag" {
    publish {`, 1)},
		// The endpoint every POST ends in.
		{"endpoint-kafka", faultAPI},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			// Every call on a request's behalf has a deadline
			// (limits { plugin_call_timeout_ms }, 30 s by default).
			g := StartGatewayWith(t, tc.api, map[string]int{"faults": 1}, "  limits {\n    plugin_call_timeout_ms = 2000\n  }\n")
			if resp, body := post(t, g, "/faults", "before", nil); resp.StatusCode != 202 {
				t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
			}
			pid := g.pluginPid(t, "sluice-plugin-"+tc.plugin)
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(pid, syscall.SIGCONT)

			client := &http.Client{Timeout: 90 * time.Second}
			req, _ := http.NewRequest(http.MethodPost, g.URL("/faults"), strings.NewReader("while-stopped"))
			req.Header.Set("Accept", "application/json")
			begin := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST to a stopped %s: no answer after %v: %v", tc.plugin, time.Since(begin).Round(time.Second), err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("POST with %s stopped: %d %s after %v", tc.plugin, resp.StatusCode, body, time.Since(begin).Round(100*time.Millisecond))
			if resp.StatusCode < 500 || !strings.Contains(string(body), "http_status_code") {
				t.Fatalf("POST to a stopped %s: %d %s, want a 5xx in the failure format", tc.plugin, resp.StatusCode, body)
			}
			if h, err := http.Get("http://" + g.Admin + "/health"); err != nil || h.StatusCode != 200 {
				t.Fatalf("gateway unhealthy while a plugin is stopped: %v %v", h, err)
			}
			_ = syscall.Kill(pid, syscall.SIGCONT)
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, body := post(t, g, "/faults", "after", nil)
				if resp.StatusCode == 202 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("POST after SIGCONT: %d %s", resp.StatusCode, body)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

// TestStoppedSubscribePolicyEndsTheStreamWithAnError freezes the policy an
// SSE stream's messages cross (SIGSTOP): the stream does not hang silently.
// Once the call's deadline has passed, the client gets an error event naming
// the deadline and the stream ends (the batch was not processed, so it is
// not skipped); after SIGCONT, a client resuming from the last event it got,
// as an EventSource does, receives the held record and what followed, once.
func TestStoppedSubscribePolicyEndsTheStreamWithAnError(t *testing.T) {
	g := StartGatewayWith(t, faultAPI, map[string]int{"faults": 1}, "  limits {\n    plugin_call_timeout_ms = 2000\n  }\n")
	seed(t, g, "faults", "first")
	r, closeSSE := openSSEPath(t, g, "/faults", "stopped-policy", "")
	defer closeSSE()
	first := nextValueEvent(t, r)
	if first.data != "first" {
		t.Fatalf("first event %+v", first)
	}
	pid := g.pluginPid(t, "sluice-plugin-policy-assign-attributes")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	begin := time.Now()
	seed(t, g, "faults", "second")

	ended := make(chan []string, 1)
	go func() {
		var events []string
		for {
			ev, err := r.NextEvent()
			if err != nil {
				ended <- events
				return
			}
			if ev != ":\n\n" {
				events = append(events, ev)
			}
		}
	}()
	var events []string
	select {
	case events = <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream neither delivered nor ended within 30 s of the policy stopping: it hangs")
	}
	t.Logf("stream ended %v after the policy stopped, with %q", time.Since(begin).Round(100*time.Millisecond), events)
	if len(events) != 1 || parseClientEvent(events[0]).event != "error" || !strings.Contains(events[0], "did not respond in time") {
		t.Fatalf("events before the end: %q, want one error event naming the deadline", events)
	}

	_ = syscall.Kill(pid, syscall.SIGCONT)
	seed(t, g, "faults", "third")
	r2, close2 := openSSEPath(t, g, "/faults", "stopped-policy", first.id)
	defer close2()
	for _, want := range []string{"second", "third"} {
		if ev := nextValueEvent(t, r2); ev.data != want {
			t.Fatalf("resumed after %s: %+v, want %s", first.id, ev, want)
		}
	}
}

// nextValueEvent returns the next event with data, skipping heartbeats and
// the retry event.
func nextValueEvent(t *testing.T, r *SSEReader) sseClientEvent {
	t.Helper()
	for {
		if ev := parseClientEvent(nextDataEvent(t, r)); ev.data != "" {
			return ev
		}
	}
}
