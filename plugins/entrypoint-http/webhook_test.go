package main

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// callback is a webhook receiver that answers with the statuses it is given,
// in order, then 200.
type callback struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	headers  []http.Header
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	status := 200
	if len(c.statuses) > 0 {
		status, c.statuses = c.statuses[0], c.statuses[1:]
	}
	c.bodies = append(c.bodies, string(b))
	c.headers = append(c.headers, r.Header.Clone())
	c.mu.Unlock()
	if r.Method != http.MethodPost {
		status = 405
	}
	w.WriteHeader(status)
}

func (c *callback) received() ([]string, []http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...), append([]http.Header(nil), c.headers...)
}

func startWebhook(t *testing.T, config map[string]any, statuses ...int) (*callback, *plugintest.Exchange) {
	t.Helper()
	cb := &callback{statuses: statuses}
	srv := httptest.NewServer(cb)
	t.Cleanup(srv.Close)
	if config == nil {
		config = map[string]any{}
	}
	if _, ok := config["callback_url"]; !ok {
		config["callback_url"] = srv.URL + "/hook"
	}
	h := plugintest.Start(t, New())
	if d := h.Configure(t, "hook", "webhook", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	ex := h.Connect(t, "hook", &gateway.Context{APIID: "api", Request: &gateway.Request{ClientIdentifier: "client-1"}})
	return cb, ex
}

func deliverN(t *testing.T, ex *plugintest.Exchange, n int) {
	t.Helper()
	var msgs []*gateway.Message
	for i := 1; i <= n; i++ {
		msgs = append(msgs, &gateway.Message{Content: []byte(fmt.Sprintf("message%d", i)), Tag: uint64(i)})
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: msgs})
}

func expectAck(t *testing.T, ex *plugintest.Exchange, tag uint64) {
	t.Helper()
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if len(w.Write.Chunks) != 0 || w.Write.AckThrough != tag {
		t.Fatalf("write %+v, want an ack through %d", w.Write, tag)
	}
}

// Vector 8: ten records, ten POSTs, in order for at-least-once.
func TestWebhookDeliversEveryMessage(t *testing.T) {
	cb, ex := startWebhook(t, map[string]any{"qos": "at-least-once"})
	if s := ex.Expect(t, plugintest.ActionSubscribe, wait); s.Subscribe != (plugintest.SubscribeAction{QoS: "at-least-once"}) {
		t.Fatalf("subscribe %+v", s.Subscribe)
	}
	deliverN(t, ex, 10)
	expectAck(t, ex, 10)
	bodies, _ := cb.received()
	var want []string
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("message%d", i))
	}
	if !reflect.DeepEqual(bodies, want) {
		t.Fatalf("bodies %q", bodies)
	}
}

func TestWebhookConcurrentDeliveryForAuto(t *testing.T) {
	cb, ex := startWebhook(t, map[string]any{"http": map[string]any{"max_concurrent_connections": 4}})
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	deliverN(t, ex, 12)
	expectAck(t, ex, 12)
	if bodies, _ := cb.received(); len(bodies) != 12 {
		t.Fatalf("%d POSTs, want 12", len(bodies))
	}
}

func TestWebhookHeadersFirstOneWins(t *testing.T) {
	cb, ex := startWebhook(t, map[string]any{"header": []any{
		map[string]any{"name": "X-A", "value": "from-config"},
		map[string]any{"name": "X-B", "value": "from-config"},
		map[string]any{"name": "X-Gravitee-Client-Identifier", "value": "from-config"},
	}})
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{{
		Content: []byte("m"), Tag: 1,
		Headers: gateway.Headers{"x-a": {"from-message"}, "Bad Name": {"dropped"}, "X-C": {"line\nbreak"}},
	}}})
	expectAck(t, ex, 1)
	_, headers := cb.received()
	h := headers[0]
	if h.Get("X-A") != "from-message" || h.Get("X-B") != "from-config" || h.Get("X-Gravitee-Client-Identifier") != "client-1" ||
		h.Get("X-C") != "" || len(h.Values("X-A")) != 1 {
		t.Fatalf("headers %v", h)
	}
}

func TestWebhookFailures(t *testing.T) {
	tests := map[string]struct {
		config   map[string]any
		statuses []int
		wantAck  uint64 // 0: no ack write
		status   int
		body     string
		posts    int
	}{
		"5xx interrupts as unreachable": {
			statuses: []int{200, 503}, wantAck: 1, status: 503, body: "Webhook callback url is unreachable", posts: 2,
		},
		"4xx is a processing failure": {
			statuses: []int{400}, status: 500, body: "Error occurred during message processing", posts: 1,
		},
		"retried until it works": {
			config:   map[string]any{"retry": map[string]any{"retry_option": "Retry On Fail", "initial_delay_seconds": 0, "max_attempts": 3}},
			statuses: []int{500, 502}, wantAck: 3, posts: 5,
		},
		"retries exhausted": {
			config:   map[string]any{"retry": map[string]any{"retry_option": "Retry On Fail", "initial_delay_seconds": 0, "max_attempts": 2}},
			statuses: []int{500, 500}, status: 500, body: "Webhook callback url is unreachable", posts: 2,
		},
		"4xx is not retried": {
			config:   map[string]any{"retry": map[string]any{"retry_option": "Retry On Fail", "initial_delay_seconds": 0}},
			statuses: []int{404}, status: 500, body: "Error occurred during message processing", posts: 1,
		},
		"server errors skipped when configured": {
			config:   map[string]any{"interrupt_consumption_on_server_error": false},
			statuses: []int{500}, wantAck: 3, posts: 3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.config == nil {
				tc.config = map[string]any{}
			}
			tc.config["qos"] = "at-least-once"
			cb, ex := startWebhook(t, tc.config, tc.statuses...)
			ex.Expect(t, plugintest.ActionSubscribe, wait)
			deliverN(t, ex, 3)
			if tc.wantAck > 0 {
				expectAck(t, ex, tc.wantAck)
			}
			if tc.status != 0 {
				f := ex.Expect(t, plugintest.ActionFinish, wait)
				if f.Finish.Status != tc.status || string(f.Finish.Body) != tc.body {
					t.Fatalf("finish %d %q, want %d %q", f.Finish.Status, f.Finish.Body, tc.status, tc.body)
				}
				ex.Expect(t, plugintest.ActionEnd, wait)
			}
			if bodies, _ := cb.received(); len(bodies) != tc.posts {
				t.Fatalf("%d POSTs (%q), want %d", len(bodies), bodies, tc.posts)
			}
		})
	}
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, ex := startWebhook(t, map[string]any{"callback_url": url, "http": map[string]any{"connect_timeout": 2000}})
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	deliverN(t, ex, 1)
	f := ex.Expect(t, plugintest.ActionFinish, wait)
	if f.Finish.Status != 502 || string(f.Finish.Body) != "Webhook callback url is unreachable" {
		t.Fatalf("finish %d %q", f.Finish.Status, f.Finish.Body)
	}
}

func TestWebhookErrorMessageStops(t *testing.T) {
	_, ex := startWebhook(t, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{Content: []byte("ok"), Tag: 1},
		{Error: &gateway.Failure{Status: 500, Message: "Connection closed"}, Tag: 2},
	}})
	expectAck(t, ex, 1)
	if f := ex.Expect(t, plugintest.ActionFinish, wait); f.Finish.Status != 500 || string(f.Finish.Body) != "Connection closed" {
		t.Fatalf("finish %d %q", f.Finish.Status, f.Finish.Body)
	}
}

func TestWebhookRefusesClientRequests(t *testing.T) {
	h := plugintest.Start(t, New())
	if d := h.Configure(t, "hook", "webhook", map[string]any{"callback_url": "http://127.0.0.1:1/"}); d.HasErrors() {
		t.Fatal(d.Err())
	}
	ex := h.Connect(t, "hook", &gateway.Context{Request: &gateway.Request{Method: "PUT"}})
	if f := ex.Expect(t, plugintest.ActionFinish, wait); f.Finish.Status != 404 {
		t.Fatalf("finish %+v", f.Finish)
	}
}

func TestWebhookEndpointEnd(t *testing.T) {
	_, ex := startWebhook(t, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End})
	if f := ex.Expect(t, plugintest.ActionFinish, wait); !reflect.DeepEqual(f.Finish, entrypoint.Finish{}) {
		t.Fatalf("finish %+v", f.Finish)
	}
}

func TestRetryDelay(t *testing.T) {
	tests := map[string]struct {
		policy retryPolicy
		want   []time.Duration
	}{
		"linear":      {retryPolicy{InitialDelay: time.Second, MaxDelay: 3 * time.Second}, []time.Duration{1, 2, 3, 3}},
		"exponential": {retryPolicy{Exponential: true, InitialDelay: time.Second, MaxDelay: 5 * time.Second}, []time.Duration{1, 2, 4, 5}},
		"zero":        {retryPolicy{}, []time.Duration{0, 0, 0, 0}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for i, w := range tc.want {
				if got := tc.policy.delay(i + 1); got != w*time.Second {
					t.Fatalf("delay(%d) = %v, want %v", i+1, got, w*time.Second)
				}
			}
		})
	}
}

func TestWebhookTLS(t *testing.T) {
	cb := &callback{}
	srv := httptest.NewTLSServer(cb)
	t.Cleanup(srv.Close)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	tests := map[string]struct {
		url        string
		ssl        map[string]any
		wantStatus int // 0: delivered
	}{
		"trusted by truststore": {
			url: srv.URL, ssl: map[string]any{"truststore": map[string]any{"type": "PEM", "content": certPEM}},
		},
		"base64 truststore": {
			url: srv.URL, ssl: map[string]any{"truststore": map[string]any{"type": "PEM", "content": base64.StdEncoding.EncodeToString([]byte(certPEM))}},
		},
		"untrusted": {url: srv.URL, ssl: map[string]any{}, wantStatus: 502},
		"wrong host name": {
			url: "https://localhost" + port, ssl: map[string]any{"truststore": map[string]any{"type": "PEM", "content": certPEM}}, wantStatus: 502,
		},
		"wrong host name allowed, chain still checked": {
			url: "https://localhost" + port, ssl: map[string]any{"hostname_verifier": false, "truststore": map[string]any{"type": "PEM", "content": certPEM}},
		},
		"trust all": {url: "https://localhost" + port, ssl: map[string]any{"trust_all": true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := plugintest.Start(t, New())
			if d := h.Configure(t, "hook", "webhook", map[string]any{"callback_url": tc.url, "ssl": tc.ssl}); d.HasErrors() {
				t.Fatal(d.Err())
			}
			ex := h.Connect(t, "hook", &gateway.Context{Request: &gateway.Request{}})
			ex.Expect(t, plugintest.ActionSubscribe, wait)
			deliverN(t, ex, 1)
			if tc.wantStatus == 0 {
				expectAck(t, ex, 1)
				return
			}
			if f := ex.Expect(t, plugintest.ActionFinish, wait); f.Finish.Status != tc.wantStatus {
				t.Fatalf("finish %+v", f.Finish)
			}
		})
	}
}
