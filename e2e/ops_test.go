package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// demoAPIs returns the api blocks of the repository's own gateway.hcl, with
// the demo broker's address replaced by the test's, so the operations tests
// run what `make run` runs.
func demoAPIs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../gateway.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\napi \"demo\"")
	if i < 0 {
		t.Fatal(`gateway.hcl has no api "demo"`)
	}
	return strings.ReplaceAll(s[i:], `"127.0.0.1:9092"`, `"{{.Kafka}}"`)
}

const jsonAccessLog = `
  log {
    format     = "json"
    access_log = true
  }
`

// logRecords parses the gateway's JSON log, one record a line.
func logRecords(t *testing.T, g *Gateway) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(g.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, sc.Text())
		}
		out = append(out, rec)
	}
	return out
}

// waitRecord polls the log until a record satisfies match.
func waitRecord(t *testing.T, g *Gateway, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, rec := range logRecords(t, g) {
			if match(rec) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log record %s:\n%s", what, g.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, g *Gateway) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// series finds the series of a family whose labels include want.
func series(f *dto.MetricFamily, want map[string]string) *dto.Metric {
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// The demo of gateway.hcl, logging JSON with the access log on: each request
// has one access line with its fields, the demo's own flow logs no warning
// for a POST without X-Key, plugin lines carry the plugin's name, and
// /metrics holds the latency histograms, the refusals and the consumer lag.
func TestOperationsLogsAndMetrics(t *testing.T) {
	g := StartGatewayWith(t, demoAPIs(t), map[string]int{"demo": 3}, jsonAccessLog)

	body := `{"hello":"ops"}`
	resp, rb := post(t, g, "/demo", body, nil) // no X-Key: the normal case
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, rb)
	}
	postID := resp.Header.Get("X-Gravitee-Request-Id")
	if resp, _ := post(t, g, "/demo", "keyed", map[string]string{"X-Key": "k1"}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with X-Key: %d", resp.StatusCode)
	}
	resp, rb = get(t, g, "/demo?limit=10", "ops-poller")
	if resp.StatusCode != http.StatusOK || !strings.Contains(rb, "hello") {
		t.Fatalf("GET: %d %s", resp.StatusCode, rb)
	}
	if resp, _ := post(t, g, "/demo-keyed", "no key", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without an API key: %d, want 401", resp.StatusCode)
	}

	access := waitRecord(t, g, "access line of the POST", func(r map[string]any) bool {
		return r["msg"] == "access" && r["request_id"] == postID
	})
	want := map[string]any{
		"level": "INFO", "api": "demo", "entrypoint": "http-post", "plan": "keyless", "method": "POST", "path": "/demo",
		"status": float64(202), "bytes_in": float64(len(body)), "bytes_out": float64(0), "messages": float64(1),
	}
	for k, v := range want {
		if access[k] != v {
			t.Errorf("access line %s = %v, want %v\n%v", k, access[k], v, access)
		}
	}
	for _, k := range []string{"client", "duration_ms", "messages", "time"} {
		if _, ok := access[k]; !ok {
			t.Errorf("access line has no %s: %v", k, access)
		}
	}
	if c, _ := access["client"].(string); c == "" {
		t.Errorf("access line has an empty client identifier: %v", access)
	}
	waitRecord(t, g, "access line of the GET", func(r map[string]any) bool {
		return r["msg"] == "access" && r["entrypoint"] == "http-get" && r["status"] == float64(200)
	})
	waitRecord(t, g, "access line of the refused POST, with no plan", func(r map[string]any) bool {
		return r["msg"] == "access" && r["api"] == "demo-keyed" && r["status"] == float64(401) && r["plan"] == ""
	})
	waitRecord(t, g, "with the plugin's name", func(r map[string]any) bool {
		return r["plugin"] == "endpoint-kafka" && r["msg"] == "plugin started"
	})
	for _, r := range logRecords(t, g) {
		if r["level"] == "WARN" || r["level"] == "ERROR" {
			t.Errorf("the demo's own traffic logged %s: %v", r["level"], r)
		}
	}

	fams := scrape(t, g)
	for _, tc := range []struct {
		family string
		labels map[string]string
	}{
		{"sluice_request_duration_seconds", map[string]string{"api": "demo", "entrypoint": "http-post"}},
		{"sluice_request_duration_seconds", map[string]string{"api": "demo", "entrypoint": "http-get"}},
		{"sluice_plugin_rpc_duration_seconds", map[string]string{"plugin": "endpoint-kafka", "method": "Configure"}},
		{"sluice_requests_refused_total", map[string]string{"api": "demo-keyed", "reason": "plan"}},
		{"sluice_plugin_restarts_total", map[string]string{"plugin": "endpoint-kafka"}},
	} {
		m := series(fams[tc.family], tc.labels)
		if m == nil {
			t.Errorf("/metrics has no %s%v", tc.family, tc.labels)
			continue
		}
		if h := m.GetHistogram(); h != nil && h.GetSampleCount() == 0 {
			t.Errorf("%s%v observed nothing", tc.family, tc.labels)
		}
	}
	if f := fams["sluice_request_duration_seconds"]; f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("sluice_request_duration_seconds is a %s, want a histogram", f.GetType())
	}

	// The Kafka plugin's metrics reach /metrics through its metrics file,
	// rewritten while they change: wait for the GET's commit to show.
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, g)
		// Labelled by the core with the plugin the file belongs to.
		produce := series(fams["sluice_kafka_produce_duration_seconds"], map[string]string{"topic": "demo", "plugin": "endpoint-kafka"})
		fetch := series(fams["sluice_kafka_fetch_latency_seconds"], map[string]string{"topic": "demo"})
		var lag *dto.Metric
		if f := fams["sluice_kafka_consumer_lag"]; f != nil {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "group" && strings.HasPrefix(l.GetValue(), "ops-poller") {
						lag = m
					}
				}
			}
		}
		if produce != nil && produce.GetHistogram().GetSampleCount() >= 2 && fetch != nil && lag != nil {
			if v := lag.GetGauge().GetValue(); v != 0 {
				t.Errorf("consumer lag %v after the GET consumed everything, want 0", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Kafka produce, fetch and lag metrics for the demo topic and the poller's group in /metrics")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Every plugin exports through sdk/metrics, not only Kafka: the SSE
	// entrypoint's gauge is there, labelled with its plugin.
	if series(fams["sluice_sse_streams_open"], map[string]string{"plugin": "entrypoint-sse"}) == nil {
		t.Errorf("/metrics has no sluice_sse_streams_open{plugin=\"entrypoint-sse\"}")
	}

	// The Grafana dashboard in docs/ is built on exactly these names.
	dash, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`sluice_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) == 0 {
		t.Fatal("the dashboard queries no sluice metric")
	}
	for _, name := range names {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if fams[family] == nil {
			t.Errorf("docs/grafana-dashboard.json queries %s, which /metrics does not serve", name)
		}
	}
}

// A reload with errors is logged as one record per diagnostic, with the
// place it names, and then one record saying the reload was rejected.
func TestRejectedReloadLogsOneRecordPerDiagnostic(t *testing.T) {
	g := StartGatewayWith(t, demoAPI, map[string]int{"test-topic": 1}, jsonAccessLog)
	path := filepath.Join(g.Dir, "gateway.hcl")
	broken := strings.Replace(g.ConfigHCL, `context_path = "/demo"`, `context_path = "/demo"
  bogus_one = 1
  bogus_two = 2`, 1)
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRecord(t, g, "rejecting the reload", func(r map[string]any) bool {
		return r["level"] == "ERROR" && strings.HasPrefix(fmt.Sprint(r["msg"]), "reload rejected")
	})
	var diags []map[string]any
	for _, r := range logRecords(t, g) {
		if r["msg"] == "configuration diagnostic" {
			diags = append(diags, r)
		}
	}
	if len(diags) != 2 {
		t.Fatalf("%d diagnostic records, want one for each bad attribute:\n%s", len(diags), g.Logs())
	}
	for i, name := range []string{"bogus_one", "bogus_two"} {
		d := diags[i]
		if !strings.Contains(fmt.Sprint(d["summary"], " ", d["detail"]), name) {
			t.Errorf("diagnostic %d does not name %s: %v", i, name, d)
		}
		if d["level"] != "ERROR" || d["file"] != path || d["line"] == nil || d["column"] == nil {
			t.Errorf("diagnostic %d lacks its level, file, line or column: %v", i, d)
		}
	}
}

// `make test` needs only Go: the Makefile builds with a PATH holding Go,
// make and the shell utilities, and the targets that need more (kcat,
// Chromium, Java) refuse with the command that installs them.
func TestMakefileNeedsOnlyGo(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bare := t.TempDir()
	link := func(name, target string) {
		if err := os.Symlink(target, filepath.Join(bare, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("go", goBin)
	for _, tool := range []string{"make", "sh", "bash", "mkdir", "rm", "env", "cat", "grep", "basename", "dirname", "uname"} {
		if p, err := exec.LookPath(tool); err == nil {
			link(tool, p)
		}
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("make", args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "PATH="+bare, "SLUICE_CHROMIUM=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The build goes to a folder of the test's, not bin/, which other
	// tests are running from.
	if out, err := run("BIN="+filepath.Join(t.TempDir(), "bin"), "build"); err != nil {
		t.Fatalf("make build with only Go on PATH: %v\n%s", err, out)
	}
	for target, want := range map[string]string{
		"test-tools": "apt-get install kcat",
		"test-kafka": "apt-get install openjdk-17-jre-headless",
	} {
		// -o build: the build was just checked; this is about the refusal.
		out, err := run("-o", "build", target)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("make %s with only Go on PATH: err %v, want a refusal naming %q\n%s", target, err, want, out)
		}
	}
}
