package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// metric reads one sample of the gateway's admin /metrics: name with the
// given labels (`plugin="endpoint-kafka"`, or "" for none). ok is false when
// the sample is absent.
func (g *Gateway) metric(t testing.TB, name, labels string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if labels != "" && !strings.Contains(rest, labels) {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			return v, true
		}
	}
	return 0, false
}

// goroutines is the gateway core's go_goroutines.
func (g *Gateway) goroutines(t testing.TB) int {
	t.Helper()
	v, ok := g.metric(t, "go_goroutines", "")
	if !ok {
		t.Fatal("no go_goroutines on /metrics")
	}
	return int(v)
}

// goroutineSlack is how many goroutines above the baseline still count as
// settled: idle fasthttp workers and HTTP/2-free client pools come and go on
// their own timers, so an exact match would be flaky; a leak of one
// goroutine per request in a test that made dozens is well above it.
const goroutineSlack = 8

// settleGoroutines waits until the core is back to at most baseline+slack
// goroutines and fails the test if it never gets there: a request that
// left something running keeps the count up.
func (g *Gateway) settleGoroutines(t testing.TB, baseline int) {
	t.Helper()
	// The test's own kept-alive connections hold a goroutine each in the
	// gateway until its idle timeout (120 s); they are not leaks.
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	n := g.goroutines(t)
	for n > baseline+goroutineSlack {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines did not settle: %d now, %d before (slack %d)", n, baseline, goroutineSlack)
		}
		time.Sleep(250 * time.Millisecond)
		n = g.goroutines(t)
	}
}

// errorLines returns the lines the gateway logged at ERROR level.
func (g *Gateway) errorLines() []string {
	var out []string
	for _, l := range strings.Split(g.Logs(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}

// noErrorLogs fails the test when the gateway logged anything at ERROR:
// hostile clients are the clients' problem, and an operator paged for them
// would learn to ignore the errors that matter.
func (g *Gateway) noErrorLogs(t testing.TB) {
	t.Helper()
	if lines := g.errorLines(); len(lines) > 0 {
		t.Fatalf("logged at ERROR:\n%s", strings.Join(lines, "\n"))
	}
}

// pluginPid returns the pid of the gateway's plugin process whose command
// line contains name.
func (g *Gateway) pluginPid(t *testing.T, name string) int {
	t.Helper()
	for pid, cmd := range childPids(t, g.cmd.Process.Pid) {
		if strings.Contains(cmd, name) && alive(pid) {
			return pid
		}
	}
	t.Fatalf("no plugin process %s among %v", name, childPids(t, g.cmd.Process.Pid))
	return 0
}

// rssBytes is the resident set size of a process.
func rssBytes(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// treeRSS is the RSS of the gateway and all its plugin processes together.
func (g *Gateway) treeRSS(t *testing.T) int64 {
	t.Helper()
	total := rssBytes(t, g.cmd.Process.Pid)
	for pid := range childPids(t, g.cmd.Process.Pid) {
		if alive(pid) {
			total += rssBytes(t, pid)
		}
	}
	return total
}

// killPlugin SIGKILLs the plugin process named name and returns its pid.
func (g *Gateway) killPlugin(t *testing.T, name string) int {
	t.Helper()
	pid := g.pluginPid(t, name)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitPluginRestarted waits until the supervisor reports the plugin up again
// after restarts reached want, and returns how long that took from since.
func (g *Gateway) waitPluginRestarted(t *testing.T, plugin string, want float64, since time.Time) time.Duration {
	t.Helper()
	label := `plugin="` + plugin + `"`
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _ := g.metric(t, "sluice_plugin_restarts_total", label)
		up, _ := g.metric(t, "sluice_plugin_up", label)
		if r >= want && up == 1 {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin %s not back up: restarts %v, up %v", plugin, r, up)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain reads r to its end and returns how many bytes it read.
func drain(r io.Reader) int64 {
	n, _ := io.Copy(io.Discard, r)
	return n
}

// produceSteadily produces total records to topic "faults", ten at a time
// with pause between batches, so that records keep arriving while a test
// makes trouble; record builds the i-th one. The channel gets the first
// error, or nil once every record is produced.
func produceSteadily(ctx context.Context, t *testing.T, g *Gateway, total int, pause time.Duration, record func(i int) *kgo.Record) <-chan error {
	t.Helper()
	prod := g.Kgo(t, kgo.DefaultProduceTopic("faults"))
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 10 {
			recs := make([]*kgo.Record, 0, 10)
			for j := i; j < min(i+10, total); j++ {
				recs = append(recs, record(j))
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(pause)
		}
		produced <- nil
	}()
	return produced
}

// waitEveryValue waits (60 s at most) until the readers together hold every
// one of the total values fmt.Sprintf(format, i) names, and returns how many
// times each was seen. Each of readers adds what one reader got to the
// count; all are called on every round, and onRound (when not nil) after a
// round that is still short.
func waitEveryValue(t *testing.T, total int, format string, readers []func(seen map[string]int), onRound func()) map[string]int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen := map[string]int{}
		for _, add := range readers {
			add(seen)
		}
		if len(seen) >= total {
			return seen
		}
		if onRound != nil {
			onRound()
		}
		if time.Now().After(deadline) {
			var missing []string
			for i := 0; i < total && len(missing) < 10; i++ {
				if v := fmt.Sprintf(format, i); seen[v] == 0 {
					missing = append(missing, v)
				}
			}
			t.Fatalf("%d of %d records reached a reader; missing e.g. %v", len(seen), total, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
