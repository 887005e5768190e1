package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// traffic drives the clients and counts what they did.
type traffic struct {
	g     *gateway
	o     options
	http  *http.Client
	hooks *receiver

	posted, postFailed    atomic.Int64
	wsSent, wsReceived    atomic.Int64
	sseReceived, sseOpens atomic.Int64
	getReceived, getPages atomic.Int64
	wsConns               atomic.Int64

	mu   sync.Mutex
	errs map[string]int
}

func newTraffic(g *gateway, o options, hooks *receiver) *traffic {
	return &traffic{g: g, o: o, hooks: hooks, errs: map[string]int{},
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// fail counts a client failure by kind; the run fails when any is left
// unexplained (a gateway that answers 5xx, drops streams, refuses opens).
func (t *traffic) fail(kind string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs[fmt.Sprintf("%s: %v", kind, err)]++
}

func (t *traffic) failures() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for k, n := range t.errs {
		out = append(out, fmt.Sprintf("%dx %s", n, k))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func (t *traffic) totals() string {
	return fmt.Sprintf("POST %d (failed %d), WebSocket sent %d received %d (%d connections), SSE received %d (%d opens), GET %d in %d pages, webhooks %d (%d answered 503)",
		t.posted.Load(), t.postFailed.Load(), t.wsSent.Load(), t.wsReceived.Load(), t.wsConns.Load(),
		t.sseReceived.Load(), t.sseOpens.Load(), t.getReceived.Load(), t.getPages.Load(),
		t.hooks.delivered(), t.hooks.refused())
}

// start runs every client until ctx ends; the channel closes when all have
// stopped.
func (t *traffic) start(ctx context.Context) <-chan struct{} {
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	for i := 0; i < 4; i++ {
		i := i
		run(func(ctx context.Context) { t.poster(ctx, i, t.o.postRate/4) })
	}
	run(t.wsPublisher)
	run(t.wsSubscriber)
	for i := 0; i < t.o.sseClients; i++ {
		i := i
		run(func(ctx context.Context) { t.sseReader(ctx, i) })
	}
	run(t.getter)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}

// paced calls f rate times a second until ctx ends.
func paced(ctx context.Context, rate int, f func()) {
	if rate < 1 {
		rate = 1
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// poster POSTs keyed messages; one in 50 requests uses a fresh connection,
// so connection set-up and tear-down are soaked too.
func (t *traffic) poster(ctx context.Context, id, rate int) {
	n := 0
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	paced(ctx, rate, func() {
		n++
		c := t.http
		if n%50 == 0 {
			c = fresh
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.g.listen+"/soak",
			strings.NewReader(fmt.Sprintf(`{"poster":%d,"n":%d,"pad":"%s"}`, id, n, strings.Repeat("p", 200))))
		req.Header.Set("X-Key", fmt.Sprintf("k%d", n%16))
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.postFailed.Add(1)
				t.fail("POST", err)
			}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.postFailed.Add(1)
			t.fail("POST", fmt.Errorf("status %d", resp.StatusCode))
			return
		}
		t.posted.Add(1)
	})
}

// wsPublisher publishes on a WebSocket it replaces every minute. Messages
// are unique over the run (connection and message number), as the POSTs
// are, so the webhook check can tell records apart by their content.
func (t *traffic) wsPublisher(ctx context.Context) {
	for c := 1; ctx.Err() == nil; c++ {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+t.g.listen+"/soak",
			http.Header{"X-Gravitee-Client-Identifier": {"soak-wspub"}})
		if err != nil {
			if ctx.Err() == nil {
				t.fail("WebSocket publisher dial", err)
				time.Sleep(time.Second)
			}
			continue
		}
		t.wsConns.Add(1)
		// Its own frames come back through its subscription: read and drop
		// them, so it never becomes a slow reader.
		go func() { _, _ = io.Copy(io.Discard, readAll(conn)) }()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		n := 0
		paced(cctx, t.o.wsRate, func() {
			n++
			if err := conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("ws-%d-%d-%s", c, n, strings.Repeat("w", 200)))); err != nil {
				if cctx.Err() == nil {
					t.fail("WebSocket publish", err)
				}
				cancel()
				return
			}
			t.wsSent.Add(1)
		})
		cancel()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		conn.Close()
	}
}

// readAll adapts a WebSocket's incoming messages to a reader that ends with
// the connection.
func readAll(conn *websocket.Conn) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				pw.Close()
				return
			}
			_, _ = pw.Write(data)
		}
	}()
	return pr
}

// wsSubscriber reads everything on a WebSocket it replaces every 90 s.
func (t *traffic) wsSubscriber(ctx context.Context) {
	for ctx.Err() == nil {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+t.g.listen+"/soak",
			http.Header{"X-Gravitee-Client-Identifier": {"soak-wssub"}})
		if err != nil {
			if ctx.Err() == nil {
				t.fail("WebSocket subscriber dial", err)
				time.Sleep(time.Second)
			}
			continue
		}
		t.wsConns.Add(1)
		// Replaced every 90 s: the deadline ends the connection's life; the
		// end of the run closes it at once (no message may come by then).
		_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
		unhook := context.AfterFunc(ctx, func() { conn.Close() })
		for ctx.Err() == nil {
			if _, _, err := conn.ReadMessage(); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					if ctx.Err() == nil {
						t.fail("WebSocket subscriber", err)
					}
				}
				break
			}
			t.wsReceived.Add(1)
		}
		unhook()
		conn.Close()
	}
}

// sseReader is an at-least-once SSE client that resumes with Last-Event-ID
// and drops its connection every 2 minutes (as browsers and proxies do).
func (t *traffic) sseReader(ctx context.Context, id int) {
	lastID := ""
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute+time.Duration(id)*7*time.Second)
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+t.g.listen+"/soak", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Gravitee-Client-Identifier", fmt.Sprintf("soak-sse-%d", id))
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				t.fail("SSE open", err)
				time.Sleep(time.Second)
			}
			continue
		}
		t.sseOpens.Add(1)
		if resp.StatusCode != 200 {
			t.fail("SSE open", fmt.Errorf("status %d", resp.StatusCode))
			resp.Body.Close()
			cancel()
			time.Sleep(time.Second)
			continue
		}
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			switch {
			case strings.HasPrefix(line, "id: "):
				lastID = strings.TrimSpace(line[4:])
			case strings.HasPrefix(line, "event: error"):
				t.fail("SSE", fmt.Errorf("error event"))
			case strings.HasPrefix(line, "data: "):
				t.sseReceived.Add(1)
			}
		}
		resp.Body.Close()
		cancel()
	}
}

// getter pages through the topic with HTTP GET and its cursor.
func (t *traffic) getter(ctx context.Context) {
	cursor := ""
	paced(ctx, 4, func() {
		u := "http://" + t.g.listen + "/soak"
		if cursor != "" {
			u += "?cursor=" + url.QueryEscape(cursor)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Gravitee-Client-Identifier", "soak-get")
		resp, err := t.http.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.fail("GET", err)
			}
			return
		}
		defer resp.Body.Close()
		var page struct {
			Items      []json.RawMessage `json:"items"`
			Pagination struct {
				NextCursor string `json:"nextCursor"`
			} `json:"pagination"`
		}
		if resp.StatusCode != 200 {
			t.fail("GET", fmt.Errorf("status %d", resp.StatusCode))
			return
		}
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.fail("GET", err)
			return
		}
		t.getPages.Add(1)
		t.getReceived.Add(int64(len(page.Items)))
		if page.Pagination.NextCursor != "" {
			cursor = page.Pagination.NextCursor
		}
	})
}
