package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// receiver is a webhook callback the test runs. answer decides each
// attempt's status from the body and how many times that body was seen.
type receiver struct {
	srv    *httptest.Server
	answer func(body string, attempt int) int

	mu       sync.Mutex
	attempts map[string]int
	ok       []string      // bodies answered 2xx, in arrival order
	headers  []http.Header // their headers
}

func newReceiver(t *testing.T, answer func(body string, attempt int) int) *receiver {
	r := &receiver{answer: answer, attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		body := string(b)
		r.mu.Lock()
		r.attempts[body]++
		status := 200
		if r.answer != nil {
			status = r.answer(body, r.attempts[body])
		}
		if req.Method != http.MethodPost {
			status = 405
		}
		if status/100 == 2 {
			r.ok = append(r.ok, body)
			r.headers = append(r.headers, req.Header.Clone())
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// delivered returns the bodies answered 2xx so far.
func (r *receiver) delivered() ([]string, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ok...), append([]http.Header(nil), r.headers...)
}

func (r *receiver) attemptsOf(body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[body]
}

// waitDelivered waits until n bodies were answered 2xx.
func (r *receiver) waitDelivered(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, _ := r.delivered()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered before the deadline: %q", len(got), n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookAPI is an API with one push subscription per entry of subs (HCL
// subscription bodies by id), a dead-letter endpoint and an http-post
// entrypoint to publish with.
func hookAPI(qos string, subs map[string]string) string {
	var b strings.Builder
	for id, body := range subs {
		fmt.Fprintf(&b, "    subscription %q {\n%s\n    }\n", id, body)
	}
	return `
api "hooks" {
  context_path = "/hooks"
  plan "keyless" {}
  plan "push" {
` + b.String() + `  }
  entrypoint "http-post" {}
  entrypoint "webhook" {
    qos = "` + qos + `"
    http {
      read_timeout               = 5000
      max_concurrent_connections = 4
    }
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["hooks"]
    }
    consumer {
      enabled           = true
      topics            = ["hooks"]
      auto_offset_reset = "earliest"
    }
  }
  endpoint "kafka" "dead" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["hooks-dlq"]
    }
  }
}
`
}

func produceN(t *testing.T, g *Gateway, prefix string, from, to int, headers ...kgo.RecordHeader) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i <= to; i++ {
		recs = append(recs, &kgo.Record{Topic: "hooks", Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s%d", prefix, i)), Headers: headers})
	}
	g.Produce(t, recs...)
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// pushStatus reads a subscription's state from /apis.
func pushStatus(t *testing.T, g *Gateway, id string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/apis")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		APIs []struct {
			Push []map[string]any `json:"push_subscriptions"`
		} `json:"apis"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, a := range doc.APIs {
		for _, s := range a.Push {
			if s["id"] == id {
				return s
			}
		}
	}
	return nil
}

func waitState(t *testing.T, g *Gateway, id, state string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := pushStatus(t, g, id)
		if s != nil && s["state"] == state {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription %s not %s: %v", id, state, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func metric(t *testing.T, g *Gateway, name, sub string) string {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, `subscription="`+sub+`"`) {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}

// Vector 8 (first half): ten records, ten POSTs in order, with the
// subscription's headers after the record's (the first of a name wins).
func TestWebhookDeliversInOrderWithHeaders(t *testing.T) {
	r := newReceiver(t, nil)
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"orders-hook": `
      callback_url = "` + r.srv.URL + `/in"
      header {
        name  = "X-Hook-Token"
        value = "t0k"
      }
      header {
        name  = "X-Record"
        value = "from-subscription"
      }`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	produceN(t, g, "message", 1, 10, kgo.RecordHeader{Key: "X-Record", Value: []byte("from-record")})
	got := r.waitDelivered(t, 10, 30*time.Second)
	if want := seq("message", 1, 10); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	_, hs := r.delivered()
	for i, h := range hs {
		if h.Get("X-Hook-Token") != "t0k" || h.Get("X-Record") != "from-record" || h.Get("X-Gravitee-Client-Identifier") != "orders-hook" {
			t.Fatalf("message %d headers %v", i+1, h)
		}
	}
	waitState(t, g, "orders-hook", "running", 10*time.Second)
	if v := metric(t, g, "sluice_push_delivered_total", "orders-hook"); v != "10" {
		t.Errorf("sluice_push_delivered_total = %q, want 10", v)
	}
	if v := metric(t, g, "sluice_push_callback_duration_seconds_count", "orders-hook"); v != "10" {
		t.Errorf("callback latency observations = %q, want 10", v)
	}
}

// A callback answering 503 to the first attempt of each message still gets
// every message once, in order.
func TestWebhookRetriesEach503(t *testing.T) {
	r := newReceiver(t, func(_ string, attempt int) int {
		if attempt == 1 {
			return 503
		}
		return 204
	})
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"retry-hook": `
      callback_url = "` + r.srv.URL + `/in"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "LINEAR"
        max_attempts          = 3
        initial_delay_seconds = 0
      }`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	produceN(t, g, "m", 1, 5)
	got := r.waitDelivered(t, 5, 30*time.Second)
	if want := seq("m", 1, 5); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %q, want each once in order %q", got, want)
	}
	for _, b := range got {
		if n := r.attemptsOf(b); n != 2 {
			t.Errorf("%s: %d attempts, want 2", b, n)
		}
	}
	if v := metric(t, g, "sluice_push_retried_total", "retry-hook"); v != "5" {
		t.Errorf("sluice_push_retried_total = %q, want 5", v)
	}
	if v := metric(t, g, "sluice_push_failed_total", "retry-hook"); v != "5" {
		t.Errorf("sluice_push_failed_total = %q, want 5", v)
	}
}

// A poison message goes to the dlq endpoint after max_attempts, with headers
// saying why, and the messages after it are delivered.
func TestWebhookDeadLetter(t *testing.T) {
	r := newReceiver(t, func(body string, _ int) int {
		if body == "poison" {
			return 500
		}
		return 200
	})
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"dlq-hook": `
      callback_url = "` + r.srv.URL + `/in"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "EXPONENTIAL"
        max_attempts          = 3
        initial_delay_seconds = 0
      }
      dlq { endpoint = "dead" }`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	g.Produce(t, &kgo.Record{Topic: "hooks", Value: []byte("before")}, &kgo.Record{Topic: "hooks", Key: []byte("pk"), Value: []byte("poison")},
		&kgo.Record{Topic: "hooks", Value: []byte("after1")}, &kgo.Record{Topic: "hooks", Value: []byte("after2")})
	got := r.waitDelivered(t, 3, 30*time.Second)
	if strings.Join(got, ",") != "before,after1,after2" {
		t.Fatalf("delivered %q", got)
	}
	if n := r.attemptsOf("poison"); n != 3 {
		t.Errorf("poison attempts = %d, want max_attempts 3", n)
	}
	dead := g.ReadRecords(t, "hooks-dlq", 1, 20*time.Second)
	rec := dead[0]
	h := map[string]string{}
	for _, x := range rec.Headers {
		h[x.Key] = string(x.Value)
	}
	if string(rec.Value) != "poison" || string(rec.Key) != "pk" || h["X-Sluice-Dlq-Attempts"] != "3" || h["X-Sluice-Dlq-Status"] != "500" || h["X-Sluice-Dlq-Subscription"] != "dlq-hook" {
		t.Fatalf("dead letter %q key %q headers %v", rec.Value, rec.Key, h)
	}
	if v := metric(t, g, "sluice_push_dead_lettered_total", "dlq-hook"); v != "1" {
		t.Errorf("sluice_push_dead_lettered_total = %q, want 1", v)
	}
}

// startGatewayOn starts a gateway without its own broker, on kafka.
func startGatewayOn(t *testing.T, apis, kafka string) *Gateway {
	t.Helper()
	bin := binDir(t)
	dir := t.TempDir()
	listen, admin := freeAddr(t), freeAddr(t)
	text := strings.ReplaceAll(apis, "{{.Kafka}}", kafka)
	hcl := fmt.Sprintf("gateway {\n  listen = %q\n  admin_listen = %q\n  plugin_dir = %q\n}\n%s", listen, admin, filepath.Join(bin, "plugins"), text)
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{t: t, Dir: dir, Listen: listen, Admin: admin, Kafka: kafka, logs: &syncBuffer{}, waitErr: make(chan error, 1), ConfigHCL: hcl}
	g.cmd = exec.Command(filepath.Join(bin, "sluice"), "run", path)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.waitErr <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("second gateway logs:\n%s", g.logs.String())
		}
	})
	g.WaitReady(60 * time.Second)
	return g
}

// Vector 8 (second half): the same subscription on two gateways is one
// consumer group; each record is delivered exactly once between them.
func TestWebhookTwoGatewaysShareSubscription(t *testing.T) {
	r := newReceiver(t, nil)
	apis := hookAPI("at-least-once", map[string]string{"shared-hook": `
      callback_url = "` + r.srv.URL + `/in"`})
	a := StartGateway(t, apis, map[string]int{"hooks": 4, "hooks-dlq": 1})
	b := startGatewayOn(t, apis, a.Kafka)
	waitState(t, a, "shared-hook", "running", 20*time.Second)
	waitState(t, b, "shared-hook", "running", 20*time.Second)
	// Let the group settle on both members before producing, so no
	// partition changes hands while records are in flight.
	time.Sleep(3 * time.Second)
	produceN(t, a, "r", 1, 40)
	got := r.waitDelivered(t, 40, 60*time.Second)
	time.Sleep(time.Second) // a duplicate would arrive now
	got, _ = r.delivered()
	seen := map[string]int{}
	for _, x := range got {
		seen[x]++
	}
	for _, x := range seq("r", 1, 40) {
		if seen[x] != 1 {
			t.Errorf("%s delivered %d times, want exactly once", x, seen[x])
		}
	}
	if len(got) != 40 {
		t.Errorf("%d deliveries, want 40", len(got))
	}
	da, db := metric(t, a, "sluice_push_delivered_total", "shared-hook"), metric(t, b, "sluice_push_delivered_total", "shared-hook")
	if da == "" || db == "" || da == "0" || db == "0" {
		t.Errorf("both gateways should deliver part of the records: %q and %q", da, db)
	}
}

// A reload adds a subscription (which starts from the beginning, its own
// consumer group) and removes one (which stops delivering).
func TestWebhookReloadAddsAndRemoves(t *testing.T) {
	ra, rb := newReceiver(t, nil), newReceiver(t, nil)
	subA := `
      callback_url = "` + ra.srv.URL + `/a"`
	subB := `
      callback_url = "` + rb.srv.URL + `/b"`
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"hook-a": subA}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	produceN(t, g, "x", 1, 3)
	ra.waitDelivered(t, 3, 30*time.Second)

	next := strings.Replace(g.ConfigHCL, `subscription "hook-a" {`+"\n"+subA, `subscription "hook-b" {`+"\n"+subB, 1)
	if next == g.ConfigHCL {
		t.Fatal("could not rewrite the configuration")
	}
	if err := os.WriteFile(filepath.Join(g.Dir, "gateway.hcl"), []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitState(t, g, "hook-b", "running", 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for pushStatus(t, g, "hook-a") != nil {
		if time.Now().After(deadline) {
			t.Fatal("hook-a still listed after the reload removed it")
		}
		time.Sleep(100 * time.Millisecond)
	}
	produceN(t, g, "x", 4, 6)
	got := rb.waitDelivered(t, 6, 30*time.Second)
	if want := seq("x", 1, 6); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("hook-b delivered %q, want %q", got, want)
	}
	if got, _ := ra.delivered(); len(got) != 3 {
		t.Errorf("removed hook-a delivered %q after the reload", got)
	}
}

// A callback that is down for a while, then back, loses nothing: the
// messages wait in Kafka (at-least-once commits only what got a 2xx) and
// are delivered in order once it answers again.
func TestWebhookCallbackDownThenBack(t *testing.T) {
	var mu sync.Mutex
	down := true
	r := newReceiver(t, func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return 503
		}
		return 200
	})
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"down-hook": `
      callback_url = "` + r.srv.URL + `/in"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "LINEAR"
        max_attempts          = 1000
        initial_delay_seconds = 1
        max_delay_seconds     = 1
      }`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	produceN(t, g, "d", 1, 5)
	st := waitState(t, g, "down-hook", "retrying", 20*time.Second)
	if !strings.Contains(fmt.Sprint(st["last_error"]), "503") {
		t.Errorf("last_error %v, want the callback's 503", st["last_error"])
	}
	time.Sleep(5 * time.Second)
	mu.Lock()
	down = false
	mu.Unlock()
	got := r.waitDelivered(t, 5, 30*time.Second)
	if want := seq("d", 1, 5); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	waitState(t, g, "down-hook", "running", 10*time.Second)
}

// OAuth2 client credentials: the gateway gets a token from the token
// endpoint, sends it as a bearer token, and reuses it while it is valid.
func TestWebhookOAuth2ClientCredentials(t *testing.T) {
	var mu sync.Mutex
	tokenCalls := 0
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_ = req.ParseForm()
		if req.Form.Get("grant_type") != "client_credentials" || req.Form.Get("client_id") != "gw" || req.Form.Get("client_secret") != "s3cret" || req.Form.Get("scope") != "hooks:write" {
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		tokenCalls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(tokens.Close)
	var rr *receiver
	rr = newReceiver(t, nil)
	// Only requests with the token are accepted.
	inner := rr.srv.Config.Handler
	rr.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer tok-1" {
			w.WriteHeader(401)
			return
		}
		inner.ServeHTTP(w, req)
	})
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"oauth-hook": `
      callback_url = "` + rr.srv.URL + `/in"
      auth {
        type = "oauth2"
        oauth2 {
          endpoint      = "` + tokens.URL + `/token"
          client_id     = "gw"
          client_secret = "s3cret"
          scopes        = ["hooks:write"]
        }
      }`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	produceN(t, g, "o", 1, 5)
	got := rr.waitDelivered(t, 5, 30*time.Second)
	if want := seq("o", 1, 5); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if tokenCalls != 1 {
		t.Errorf("token endpoint called %d times, want 1 (the token is cached)", tokenCalls)
	}
}

// A callback rejecting a message (4xx) with no dlq interrupts the
// subscription: /apis says stopped with the reason, and it stays stopped.
func TestWebhookInterruptStops(t *testing.T) {
	r := newReceiver(t, func(body string, _ int) int {
		if body == "bad" {
			return 400
		}
		return 200
	})
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"strict-hook": `
      callback_url = "` + r.srv.URL + `/in"`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	g.Produce(t, &kgo.Record{Topic: "hooks", Value: []byte("good")}, &kgo.Record{Topic: "hooks", Value: []byte("bad")}, &kgo.Record{Topic: "hooks", Value: []byte("later")})
	st := waitState(t, g, "strict-hook", "stopped", 30*time.Second)
	if !strings.Contains(fmt.Sprint(st["last_error"]), "Error occurred during message processing") {
		t.Errorf("last_error %v", st["last_error"])
	}
	if got, _ := r.delivered(); strings.Join(got, ",") != "good" {
		t.Errorf("delivered %q, want only the message before the rejected one", got)
	}
	if n := r.attemptsOf("bad"); n != 1 {
		t.Errorf("a 4xx is not retried: %d attempts", n)
	}
}

// A dead letter while the endpoint keeps sending batches: the publish result
// of the dead letter comes after those batches on the stream, and delivery
// goes on (the soak found the subscription stuck for good there).
func TestWebhookDeadLetterWhileRecordsArrive(t *testing.T) {
	r := newReceiver(t, func(body string, _ int) int {
		if body == "poison" {
			time.Sleep(200 * time.Millisecond) // records arrive meanwhile
			return 500
		}
		return 200
	})
	g := StartGateway(t, hookAPI("at-least-once", map[string]string{"busy-dlq-hook": `
      callback_url = "` + r.srv.URL + `/in"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "LINEAR"
        max_attempts          = 2
        initial_delay_seconds = 0
      }
      dlq { endpoint = "dead" }`}), map[string]int{"hooks": 1, "hooks-dlq": 1})
	g.Produce(t, &kgo.Record{Topic: "hooks", Value: []byte("before")}, &kgo.Record{Topic: "hooks", Value: []byte("poison")})
	for i := 1; i <= 10; i++ {
		time.Sleep(50 * time.Millisecond)
		produceN(t, g, "after", i, i)
	}
	got := r.waitDelivered(t, 11, 30*time.Second)
	if want := append([]string{"before"}, seq("after", 1, 10)...); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if dead := g.ReadRecords(t, "hooks-dlq", 1, 20*time.Second); string(dead[0].Value) != "poison" {
		t.Fatalf("dead letter %q", dead[0].Value)
	}
}
