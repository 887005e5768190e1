//go:build tools

// The browser tests drive a headless Chromium, a tool besides Go, so they
// belong to `make test-all` (built with -tags tools); `make test` leaves them
// out. A missing browser fails the test with the command that installs it.

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// browserAPIs are two APIs on their own topics, so the EventSource and the
// WebSocket tests cannot see each other's records.
const browserAPIs = `
api "browser-sse" {
  context_path = "/sse"
  plan "keyless" {}
  entrypoint "sse" {
    qos                      = "at-least-once"
    heartbeat_interval_in_ms = 2000
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["browser-sse"]
      auto_offset_reset = "earliest"
    }
  }
}
api "browser-ws" {
  context_path = "/ws"
  plan "keyless" {}
  entrypoint "websocket" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["browser-ws"]
    }
    consumer {
      enabled           = true
      topics            = ["browser-ws"]
      auto_offset_reset = "earliest"
    }
  }
}
`

var browserTopics = map[string]int{"browser-sse": 1, "browser-ws": 1}

// browserPageDir holds the pages the browser loads.
const browserPageDir = "testdata/browser"

// chromiumPath finds the browser: $SLUICE_CHROMIUM, else the first of the
// usual names on PATH. Without one the test fails: this file is only built
// for `make test-all`, which promises the browser tests ran.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on PATH: install it with `sudo apt-get install chromium` (./.ci/install does) or set SLUICE_CHROMIUM")
	return ""
}

// browser is one headless Chromium with one tab, driven over the DevTools
// protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser launches Chromium with the flags this kind of machine needs
// (no sandbox as root, no background traffic to Google's hosts, a fresh
// profile) and opens a blank tab.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	// What Chromium and chromedp print is kept, not logged through t: it is
	// shown only when the test fails, and chromedp may still write after the
	// test has returned.
	logs := &syncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(logs),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	logf := func(format string, args ...any) { fmt.Fprintf(logs, format+"\n", args...) }
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser logs:\n%s", logs.String())
		}
	})
	// The first action starts the browser, and the browser lives as long
	// as ctx: no timeout on this one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx}
}

// do runs actions with a deadline, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// cdpCall sends one DevTools command to the tab, failing the test on error.
func cdpCall[P, R any](b *browser, cmd cdp.Command[P, R], params P) R {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	r, err := chromedp.Call(ctx, cmd, params)
	if err != nil {
		b.t.Fatalf("%s: %v", cmd.Method, err)
	}
	return r
}

// evalJS evaluates a JavaScript expression in the page and decodes its value.
func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitInPage evaluates expr (a JSON-serialisable value) until done accepts it.
// It polls from Go, not with a timer in the page, because the SSE test
// pauses the page's virtual time.
func waitInPage[T any](b *browser, what, expr string, timeout time.Duration, done func(T) bool) T {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := evalJS[T](b, expr)
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			raw, _ := json.Marshal(v)
			b.t.Fatalf("%s: not seen within %s; %s = %s", what, timeout, expr, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servePageAt makes the browser load a file of browserPageDir when it asks
// for url: Chromium's request interception answers instead of the network,
// so the page has url's origin. The EventSource test needs this to open its
// stream same-origin, because the gateway sends no CORS headers.
func (b *browser) servePageAt(url, file string) {
	b.t.Helper()
	body, err := os.ReadFile(filepath.Join(browserPageDir, file))
	if err != nil {
		b.t.Fatal(err)
	}
	paused := chromedp.Events(b.ctx, fetch.RequestPaused)
	go func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			// Only url matches the pattern, but a request left paused would
			// hang the page, so anything else goes on to the network.
			if e.Request.URL != url {
				_, _ = chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
				continue
			}
			_, _ = chromedp.Call(b.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID:       e.RequestID,
				ResponseCode:    200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html; charset=utf-8"}},
				Body:            body,
			})
		}
	}()
	cdpCall(b, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: url}}})
}

// browserRequestLog records, in order, the raw headers of every request
// whose URL contains a string, as Chromium's network stack put them on the
// wire (Network.requestWillBeSentExtraInfo: Last-Event-ID is added there, not
// by the page).
type browserRequestLog struct {
	mu    sync.Mutex
	order []network.RequestID
	raw   map[network.RequestID]network.Headers
}

// all returns the headers of the matching requests in the order they were
// made; a request whose headers were not reported yet has nil.
func (l *browserRequestLog) all() []network.Headers {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]network.Headers, len(l.order))
	for i, id := range l.order {
		out[i] = l.raw[id]
	}
	return out
}

// logRequests starts recording the requests whose URL contains urlPart.
func (b *browser) logRequests(urlPart string) *browserRequestLog {
	b.t.Helper()
	l := &browserRequestLog{raw: map[network.RequestID]network.Headers{}}
	err := chromedp.Listen(b.ctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if strings.Contains(e.Request.URL, urlPart) {
				l.order = append(l.order, e.RequestID)
			}
		case *network.EventRequestWillBeSentExtraInfo:
			l.raw[e.RequestID] = e.Headers
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	cdpCall(b, network.Enable, network.EnableParams{})
	return l
}

// headerValue returns a request header's value whatever its case.
func headerValue(h network.Headers, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, ok := v.(string)
			return s, ok
		}
	}
	return "", false
}

// restartGateway stops g and starts sluice again with the same file, so it
// listens on the same addresses and the embedded broker reopens its data
// directory with the records (and committed offsets) it held; an external
// broker keeps them anyway.
func restartGateway(t *testing.T, g *Gateway) *Gateway {
	t.Helper()
	g.Stop()
	n := &Gateway{t: t, Dir: g.Dir, Listen: g.Listen, Admin: g.Admin, Kafka: g.Kafka, logs: &syncBuffer{}, waitErr: make(chan error, 1), ConfigHCL: g.ConfigHCL}
	n.cmd = exec.Command(filepath.Join(binDir(t), "sluice"), "run", filepath.Join(g.Dir, "gateway.hcl"))
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.waitErr <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("restarted gateway logs:\n%s", n.logs.String())
		}
	})
	n.WaitReady(60 * time.Second)
	return n
}

// produceValues writes records with a client that is closed at once, so none is
// left behind across the gateway (and embedded broker) restart.
func produceValues(t *testing.T, g *Gateway, topic string, values ...string) {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(g.Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range values {
		if err := c.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// deleteGroups deletes consumer groups, waiting for members that are still
// leaving (a real broker may hold a stopped gateway's member for a moment).
func deleteGroups(t *testing.T, adm *kadm.Client, groups []string) {
	t.Helper()
	if len(groups) == 0 {
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := adm.DeleteGroups(ctx, groups...)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			return
		}
		if !errors.Is(err, kerr.NonEmptyGroup) || time.Now().After(deadline) {
			t.Fatalf("delete groups %v: %v", groups, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sseEntry is one event the page's EventSource fired.
type sseEntry struct {
	Type       string  `json:"type"`
	ID         string  `json:"id"`
	Data       *string `json:"data"`
	Origin     string  `json:"origin"`
	ReadyState int     `json:"readyState"`
}

type sseMessage struct{ ID, Data string }

func sseMessages(log []sseEntry) []sseMessage {
	var out []sseMessage
	for _, e := range log {
		if e.Type == "message" && e.Data != nil {
			out = append(out, sseMessage{e.ID, *e.Data})
		}
	}
	return out
}

// A browser's EventSource against the SSE entrypoint: ids and multi-line data
// as the browser parses them, then a gateway restart, after which the browser
// reconnects by itself with Last-Event-ID and gets only what it had not seen.
func TestBrowserEventSourceReceivesAndResumesAcrossARestart(t *testing.T) {
	b := startBrowser(t)
	g := StartGateway(t, browserAPIs, browserTopics)
	id := func(o int) string { return b64(fmt.Sprintf("browser-sse@0#%d", o)) }
	// The gateway splits content on LF, CRLF and CR into data: lines
	// (docs/differences.md #1); the browser joins them with LF, so a CRLF comes back as LF.
	before := []struct{ value, want string }{
		{"plain", "plain"},
		{"line one\nline two\n\nline four", "line one\nline two\n\nline four"},
		{"crlf one\r\ncrlf two\rcr three\n", "crlf one\ncrlf two\ncr three\n"},
		{"héllo ✓", "héllo ✓"},
	}
	for _, r := range before {
		produceValues(t, g, "browser-sse", r.value)
	}

	origin := "http://" + g.Listen
	b.servePageAt(origin+"/__e2e__/sse.html", "sse.html")
	reqs := b.logRequests(origin + "/sse")
	b.do("load the page", chromedp.Navigate(origin+"/__e2e__/sse.html"))
	// A unique client identifier (a query parameter, since EventSource cannot
	// set headers) gives the stream its own consumer group.
	client := uniqueID("browser-sse")
	evalJS[chromedp.Void](b, fmt.Sprintf("startSSE(%q)", "/sse?X-Gravitee-Client-Identifier="+client))

	const logExpr = "sseLog"
	log := waitInPage(b, "the seeded messages", logExpr, 20*time.Second, func(l []sseEntry) bool { return len(sseMessages(l)) >= len(before) })
	var want []sseMessage
	for i, r := range before {
		want = append(want, sseMessage{id(i), r.want})
	}
	if got := sseMessages(log); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages before the restart:\n got %q\nwant %q", got, want)
	}
	for _, e := range log {
		if e.Type == "message" && e.Origin != origin {
			t.Errorf("message origin %q, want %q", e.Origin, origin)
		}
		if e.Type == "error" {
			t.Fatalf("error event before the restart: %+v", e)
		}
	}
	if log[0].Type != "open" {
		t.Errorf("first event %q, want open", log[0].Type)
	}
	withAdmin(t, g, func(adm *kadm.Client) {
		if groups := groupsWithPrefix(t, adm, client); len(groups) == 0 {
			t.Fatalf("no consumer group named after client identifier %q", client)
		}
	})

	// The gateway's retry: hint is random up to 30 s; pausing the page's
	// virtual time holds the browser's reconnect until the gateway is back,
	// and resuming it fires the reconnect at once instead of after that delay.
	cdpCall(b, emulation.SetVirtualTimePolicy, emulation.SetVirtualTimePolicyParams{Policy: emulation.VirtualTimePolicyPause})
	g = restartGateway(t, g)
	log = waitInPage(b, "the end of the stream", logExpr, 10*time.Second, func(l []sseEntry) bool {
		return len(l) > 0 && l[len(l)-1].Type == "error"
	})
	// The stream must end the way the SSE spec lets a browser reconnect: no
	// HTTP error, no `event: error` from the gateway, one goaway event
	// (docs/behaviour.md 5.1: the gateway is stopping), then the end of the body.
	lastMessage := 0
	for i, e := range log {
		if e.Type == "message" {
			lastMessage = i
		}
	}
	between := log[lastMessage+1 : len(log)-1]
	if len(between) != 1 || between[0].Type != "goaway" || between[0].Data == nil || *between[0].Data != "Stopping, please reconnect" {
		t.Errorf("between the last message and the end of the stream: %+v, want one goaway event with data %q", between, "Stopping, please reconnect")
	}
	if end := log[len(log)-1]; end.Data != nil || end.ReadyState != 0 {
		t.Fatalf("the stream ended with %+v, want a lost connection with readyState 0 (CONNECTING): the browser gave up", end)
	}

	// The resumed stream must come from Last-Event-ID alone: the group's
	// committed offsets go, so a gateway ignoring the header would replay
	// everything from the earliest offset.
	withAdmin(t, g, func(adm *kadm.Client) { deleteGroups(t, adm, groupsWithPrefix(t, adm, client)) })
	after := []string{"after restart 1", "after\nrestart 2"}
	produceValues(t, g, "browser-sse", after...)
	cdpCall(b, emulation.SetVirtualTimePolicy, emulation.SetVirtualTimePolicyParams{Policy: emulation.VirtualTimePolicyAdvance})

	total := len(before) + len(after)
	log = waitInPage(b, "the messages after the restart", logExpr, 20*time.Second, func(l []sseEntry) bool { return len(sseMessages(l)) >= total })
	for i, v := range after {
		want = append(want, sseMessage{id(len(before) + i), v})
	}
	if got := sseMessages(log); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages across the restart (nothing repeated, nothing lost):\n got %q\nwant %q", got, want)
	}
	for _, e := range log {
		if e.Type == "error" && e.Data != nil {
			t.Errorf("the gateway sent an error event: %q", *e.Data)
		}
	}
	sent := reqs.all()
	if len(sent) < 2 {
		t.Fatalf("%d stream requests, want the first and a reconnect", len(sent))
	}
	for i, h := range sent {
		if h == nil {
			t.Fatalf("stream request %d: Chromium reported no raw headers", i)
		}
	}
	if v, ok := headerValue(sent[0], "Last-Event-ID"); ok {
		t.Errorf("first request carries Last-Event-ID %q", v)
	}
	lastBefore := id(len(before) - 1)
	for i, h := range sent[1:] {
		if v, _ := headerValue(h, "Last-Event-ID"); v != lastBefore {
			t.Errorf("reconnect %d: Last-Event-ID %q, want %q (headers %v)", i+1, v, lastBefore, h)
		}
	}
}

// wsEntry is one event the page's WebSocket fired.
type wsEntry struct {
	Type   string `json:"type"`
	Kind   string `json:"kind"`
	Bytes  []int  `json:"bytes"`
	Text   string `json:"text"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// A browser's WebSocket from a page on another origin: a text frame it sends
// becomes a record, and records come back as binary frames (Blobs).
func TestBrowserWebSocketPublishesAndReceivesBinaryFrames(t *testing.T) {
	b := startBrowser(t)
	g := StartGateway(t, browserAPIs, browserTopics)
	raw := []byte{0x00, 0xff, 0x80, 'k', '\n'}
	g.Produce(t, &kgo.Record{Topic: "browser-ws", Value: raw})

	// The page comes from a server of the test's, so the socket is
	// cross-origin: the gateway sees an Origin it must accept.
	pages := httptest.NewServer(http.FileServer(http.Dir(browserPageDir)))
	t.Cleanup(pages.Close)
	if strings.TrimPrefix(pages.URL, "http://") == g.Listen {
		t.Fatal("page server and gateway share an origin")
	}
	b.do("load the page", chromedp.Navigate(pages.URL+"/ws.html"))
	url := "ws://" + g.Listen + "/ws?X-Gravitee-Client-Identifier=" + uniqueID("browser-ws")
	evalJS[chromedp.Void](b, fmt.Sprintf("startWS(%q)", url))
	const logExpr = "wsLog"
	if l := waitInPage(b, "the socket opening", logExpr, 20*time.Second, func(l []wsEntry) bool { return len(l) > 0 }); l[0].Type != "open" {
		t.Fatalf("first socket event %+v, want open: the gateway refused a cross-origin upgrade?", l[0])
	}

	text := "from the browser ✓"
	evalJS[chromedp.Void](b, fmt.Sprintf("ws.send(%q)", text))
	recs := g.ReadRecords(t, "browser-ws", 2, 20*time.Second)
	if string(recs[1].Value) != text {
		t.Fatalf("record %q, want the text frame %q", recs[1].Value, text)
	}

	log := waitInPage(b, "both records as frames", logExpr, 20*time.Second, func(l []wsEntry) bool {
		n := 0
		for _, e := range l {
			if e.Type == "message" {
				n++
			}
		}
		return n >= 2 || l[len(l)-1].Type == "close"
	})
	var got [][]byte
	for _, e := range log[1:] {
		if e.Type != "message" {
			t.Fatalf("socket event %+v, want only messages", e)
		}
		if e.Kind != "blob" {
			t.Fatalf("a %s message (%q), want a binary frame (Blob)", e.Kind, e.Text)
		}
		bs := make([]byte, len(e.Bytes))
		for i, v := range e.Bytes {
			bs[i] = byte(v)
		}
		got = append(got, bs)
	}
	if want := [][]byte{raw, []byte(text)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
}
