package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kgo"
)

// demoAPI is the API most tests use: every entrypoint, one Kafka endpoint, and
// a publish flow keying records by the X-Key header.
const demoAPI = `
api "demo" {
  context_path = "/demo"
  plan "keyless" {}
  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 2
    messages_limit_duration_ms = 3000
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
      topics  = ["test-topic"]
    }
    consumer {
      enabled           = true
      topics            = ["test-topic"]
      auto_offset_reset = "earliest"
    }
  }
  flow "keys" {
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "{#request.headers['X-Key'][0]}"
        }
      }
    }
  }
}
`

func uniqueID(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func post(t *testing.T, g *Gateway, path, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL(path), strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func seed(t *testing.T, g *Gateway, topic string, values ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("key"), Value: []byte(v)})
	}
	g.Produce(t, recs...)
}

func TestPostBecomesExactlyOneRecord(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
	resp, body := post(t, g, "/demo", `{"field":"value"}`, map[string]string{
		"X-Test-Header": "header-value", "X-Key": "the-key", "Content-Type": "application/json",
	})
	if resp.StatusCode != http.StatusAccepted || body != "" {
		t.Fatalf("POST: got %d %q, want 202 with an empty body", resp.StatusCode, body)
	}
	recs := g.ReadRecords(t, "test-topic", 1, 20*time.Second)
	// Nothing more arrives: one POST is one record.
	c := g.Kgo(t, kgo.ConsumeTopics("test-topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n := 0
	for ctx.Err() == nil {
		c.PollFetches(ctx).EachRecord(func(*kgo.Record) { n++ })
	}
	if n != 1 {
		t.Fatalf("topic holds %d records after one POST, want 1", n)
	}
	r := recs[0]
	if string(r.Value) != `{"field":"value"}` {
		t.Errorf("record value %q, want the exact body", r.Value)
	}
	if string(r.Key) != "the-key" {
		t.Errorf("record key %q, want the X-Key header set by assign-attributes", r.Key)
	}
	found := false
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, "X-Test-Header") && string(h.Value) == "header-value" {
			found = true
		}
	}
	if !found {
		t.Errorf("record headers %v lack X-Test-Header=header-value", r.Headers)
	}
}

func TestRecordsWithOneKeyLandOnOnePartition(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 3})
	for i := 0; i < 12; i++ {
		key := []string{"alpha", "beta", "gamma"}[i%3]
		resp, body := post(t, g, "/demo", fmt.Sprintf("%s-%d", key, i), map[string]string{"X-Key": key})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", i, resp.StatusCode, body)
		}
	}
	recs := g.ReadRecords(t, "test-topic", 12, 20*time.Second)
	partOf := map[string]int32{}
	for _, r := range recs {
		k := string(r.Key)
		if p, ok := partOf[k]; ok && p != r.Partition {
			t.Fatalf("key %q on partitions %d and %d", k, p, r.Partition)
		}
		partOf[k] = r.Partition
	}
	if len(partOf) != 3 {
		t.Fatalf("keys seen: %v", partOf)
	}
}

var retryLine = regexp.MustCompile(`^retry: (\d+)\n\n$`)

func openSSE(t *testing.T, g *Gateway, clientID, lastID string) (*SSEReader, func()) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL("/demo"), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Gravitee-Client-Identifier", clientID)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return &SSEReader{r: bufio.NewReader(resp.Body)}, func() { resp.Body.Close() }
}

// nextDataEvent skips heartbeats (":\n\n") and returns the next event.
func nextDataEvent(t *testing.T, r *SSEReader) string {
	t.Helper()
	for {
		ev, err := r.NextEvent()
		if err != nil {
			t.Fatalf("SSE read: %v (partial %q)", err, ev)
		}
		if ev != ":\n\n" {
			return ev
		}
	}
}

func TestSSEDeliversRetryThenEventsWithIdsAndResumes(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
	seed(t, g, "test-topic", "message1", "message2", "message3")
	client := uniqueID("sse")

	r, closeFn := openSSE(t, g, client, "")
	first, err := r.NextEvent()
	if err != nil || !retryLine.MatchString(first) {
		t.Fatalf("first chunk %q (%v), want retry: N", first, err)
	}
	n, _ := strconv.Atoi(retryLine.FindStringSubmatch(first)[1])
	if n < 1000 || n >= 30000 {
		t.Errorf("retry %d outside [1000, 30000)", n)
	}
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf("id: %s\nevent: message\ndata: message%d\n\n", b64(fmt.Sprintf("test-topic@0#%d", i)), i+1)
		if got := nextDataEvent(t, r); got != want {
			t.Fatalf("event %d:\n got %q\nwant %q", i, got, want)
		}
	}
	closeFn()

	// Resuming after the first event's id delivers the second and third again,
	// whatever the group has committed since.
	r2, close2 := openSSE(t, g, uniqueID("sse-resume"), b64("test-topic@0#0"))
	defer close2()
	if ev, _ := r2.NextEvent(); !retryLine.MatchString(ev) {
		t.Fatalf("first chunk %q", ev)
	}
	for i := 1; i < 3; i++ {
		want := fmt.Sprintf("id: %s\nevent: message\ndata: message%d\n\n", b64(fmt.Sprintf("test-topic@0#%d", i)), i+1)
		if got := nextDataEvent(t, r2); got != want {
			t.Fatalf("resumed event %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

func get(t *testing.T, g *Gateway, path, clientID string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL(path), nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Gravitee-Client-Identifier", clientID)
	return do(t, req)
}

func TestHTTPGetPagesWithNextCursor(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
	seed(t, g, "test-topic", "message1", "message2", "message3")
	client := uniqueID("get")
	id := func(o int) string { return b64(fmt.Sprintf("test-topic@0#%d", o)) }

	// docs/behaviour.md section 7, vector 2.
	steps := []struct {
		name, query, want string
	}{
		{"first page", "", `{"items":[{"id":"dGVzdC10b3BpY0AwIzA=","content":"message1"},{"id":"dGVzdC10b3BpY0AwIzE=","content":"message2"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzE="}}`},
		{"second page", "", `{"items":[{"id":"dGVzdC10b3BpY0AwIzI=","content":"message3"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzI="}}`},
		{"drained", "", `{"items":[],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzI="}}`},
	}
	for _, s := range steps {
		resp, body := get(t, g, "/demo"+s.query, client)
		if resp.StatusCode != 200 || body != s.want {
			t.Fatalf("%s: %d\n got %s\nwant %s", s.name, resp.StatusCode, body, s.want)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", s.name, ct)
		}
	}
	// A cursor resumes after its offset, for a fresh client too.
	resp, body := get(t, g, "/demo?cursor="+id(0), uniqueID("get-cursor"))
	want := `{"items":[{"id":"dGVzdC10b3BpY0AwIzE=","content":"message2"},{"id":"dGVzdC10b3BpY0AwIzI=","content":"message3"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzI="}}`
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("cursor: %d\n got %s\nwant %s", resp.StatusCode, body, want)
	}
	// limit=1 echoes the raw value as a JSON string.
	resp, body = get(t, g, "/demo?limit=1&cursor="+id(0), uniqueID("get-limit"))
	want = `{"items":[{"id":"dGVzdC10b3BpY0AwIzE=","content":"message2"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzE=","limit":"1"}}`
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("limit: %d\n got %s\nwant %s", resp.StatusCode, body, want)
	}
}

func TestWebSocketRoundTrip(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
	hdr := http.Header{"X-Gravitee-Client-Identifier": {uniqueID("ws")}}
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+g.Listen+"/demo", hdr)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte("text-frame")); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 0xff}); err != nil {
		t.Fatal(err)
	}
	want := []string{"text-frame", string([]byte{0, 1, 2, 0xff})}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i, w := range want {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if typ != websocket.BinaryMessage || string(data) != w {
			t.Fatalf("frame %d: type %d %q, want a binary frame %q", i, typ, data, w)
		}
	}
	recs := g.ReadRecords(t, "test-topic", 2, 10*time.Second)
	for i, r := range recs {
		if string(r.Value) != want[i] {
			t.Errorf("record %d = %q, want %q", i, r.Value, want[i])
		}
	}
}

func TestUnmatchedRequestsGet404InTheReferenceFormat(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
	cases := []struct {
		name, method, path, accept, wantType, wantBody string
	}{
		{"unknown path, text", "GET", "/nowhere", "", "text/plain", "No context-path matches the request URI."},
		{"unknown path, json", "GET", "/nowhere", "application/json", "application/json", `{"message":"No context-path matches the request URI.","http_status_code":404}`},
		{"no entrypoint, text", "PUT", "/demo", "text/plain", "text/plain", "No entrypoint matches the incoming request"},
		{"no entrypoint, json", "DELETE", "/demo", "*/*", "application/json", `{"message":"No entrypoint matches the incoming request","http_status_code":404}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, g.URL(c.path), nil)
			if c.accept != "" {
				req.Header.Set("Accept", c.accept)
			}
			resp, body := do(t, req)
			if resp.StatusCode != 404 || body != c.wantBody || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.wantType) {
				t.Fatalf("got %d %q %q, want 404 %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, c.wantType, c.wantBody)
			}
		})
	}
}

func TestValidateNamesEveryErrorWithItsLine(t *testing.T) {
	bin := binDir(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.hcl")
	hcl := `gateway {
  plugin_dir = "` + filepath.Join(bin, "plugins") + `"
}
api "bad" {
  context_path = "/bad"
  entrypoint "sse" {}
  endpoint "kafka" "default" {
    bootstrap_server = "127.0.0.1:9092"
    consumer {
      enabled           = true
      topics            = ["t"]
      auto_offset_reset = "bogus"
    }
  }
}
`
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "sluice"), "validate", path).CombinedOutput()
	if err == nil {
		t.Fatalf("validate exited 0 on a bad file:\n%s", out)
	}
	text := string(out)
	for _, want := range []string{"bad.hcl:8", "bootstrap_server", "bad.hcl:12", "bogus"} {
		if !strings.Contains(text, want) {
			t.Errorf("validate output lacks %q:\n%s", want, text)
		}
	}
}

// childPids lists the direct children of pid.
func childPids(t *testing.T, pid int) map[int]string {
	t.Helper()
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[1] == strconv.Itoa(pid) {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out[p] = strings.ReplaceAll(string(cmd), "\x00", " ")
		}
	}
	return out
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func TestKafkaPluginKilledIsSurvived(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
	var kafkaPid int
	for pid, cmd := range childPids(t, g.cmd.Process.Pid) {
		if strings.Contains(cmd, "sluice-plugin-endpoint-kafka") {
			kafkaPid = pid
		}
	}
	if kafkaPid == 0 {
		t.Fatalf("no kafka plugin process among %v", childPids(t, g.cmd.Process.Pid))
	}
	if err := syscall.Kill(kafkaPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body := post(t, g, "/demo", "after-kill", nil)
		if resp.StatusCode == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST still failing 15s after the kill: %d %s", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	recs := g.ReadRecords(t, "test-topic", 1, 10*time.Second)
	if string(recs[0].Value) != "after-kill" {
		t.Fatalf("record %q", recs[0].Value)
	}
}

func TestStoppingTheGatewayLeavesNoPluginBehind(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1})
			kids := childPids(t, g.cmd.Process.Pid)
			if len(kids) < 5 {
				t.Fatalf("expected 5 plugin processes, found %v", kids)
			}
			_ = g.cmd.Process.Signal(sig)
			deadline := time.Now().Add(15 * time.Second)
			for pid, cmd := range kids {
				for alive(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("plugin %d (%s) still running after the gateway got %s", pid, cmd, sig)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
}
