package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valyala/fasthttp"
)

// clientIDHeader names the header that gives each reader its own consumer
// group (docs/behaviour.md 2.3).
const clientIDHeader = "X-Gravitee-Client-Identifier"

// wsPublishGateway sends n binary frames on one WebSocket as fast as the
// connection takes them and measures until the n-th record is in Kafka, read
// as the growth of the topic's high watermarks.
func wsPublishGateway(ctx context.Context, e *env) (Measure, error) {
	n := e.opts.n
	topic := e.topics.pub
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, WriteBufferSize: 64 << 10}
	hdr := http.Header{clientIDHeader: {e.uniqueID("bench-ws")}}
	conn, resp, err := dialer.DialContext(ctx, "ws://"+e.gw.listen+"/bench-ws", hdr)
	if err != nil {
		if resp != nil {
			return Measure{}, fmt.Errorf("websocket dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return Measure{}, fmt.Errorf("websocket dial: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
		_ = conn.SetReadDeadline(dl)
	}
	// The reader handles control frames and reports a close by the gateway
	// (1011 with the endpoint's error, for instance).
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	base, err := e.highWatermark(topic)
	if err != nil {
		return Measure{}, err
	}
	// One untimed frame first: the gateway creates its producer lazily.
	if err := conn.WriteMessage(websocket.BinaryMessage, e.payload); err != nil {
		return Measure{}, fmt.Errorf("websocket write: %w", err)
	}
	base++
	if _, err := waitWatermark(ctx, e, topic, base, readErr); err != nil {
		return Measure{}, fmt.Errorf("warm-up frame: %w", err)
	}
	e.markTimed(true)
	start := time.Now()
	writeErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := conn.WriteMessage(websocket.BinaryMessage, e.payload); err != nil {
				writeErr <- fmt.Errorf("websocket write %d of %d: %w", i+1, n, err)
				return
			}
		}
		writeErr <- nil
	}()
	landed, err := waitWatermark(ctx, e, topic, base+int64(n), readErr, writeErr)
	elapsed := time.Since(start)
	e.markTimed(false)
	if err != nil {
		return Measure{}, fmt.Errorf("%d of %d records landed: %w", landed-base, n, err)
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	m := rateOf(n, elapsed)
	m.Extra = landed - base - int64(n)
	return m, nil
}

// waitWatermark polls the topic's high watermarks until they sum to want.
// A value from an error channel aborts the wait; a nil value only means
// that side finished.
func waitWatermark(ctx context.Context, e *env, topic string, want int64, errs ...<-chan error) (int64, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var hw int64
	for {
		var err error
		if hw, err = e.highWatermark(topic); err != nil {
			return hw, err
		}
		if hw >= want {
			return hw, nil
		}
		for i, ch := range errs {
			select {
			case err := <-ch:
				if err != nil {
					return hw, err
				}
				errs[i] = nil // finished cleanly: a nil channel never fires again
			default:
			}
		}
		select {
		case <-ctx.Done():
			return hw, ctx.Err()
		case <-tick.C:
		}
	}
}

// httpPostGateway is the http-post scenario: as many keep-alive clients as
// the sweep point says, each POSTing one payload at a time and expecting 202.
func httpPostGateway(ctx context.Context, e *env) (Measure, error) {
	conc := e.clients
	client := &fasthttp.Client{
		MaxConnsPerHost:     conc,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
	defer client.CloseIdleConnections()
	url := "http://" + e.gw.listen + "/bench-post"
	pool := sync.Pool{New: func() any {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI(url)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/octet-stream")
		req.SetBody(e.payload)
		return req
	}}
	post := func() error {
		req := pool.Get().(*fasthttp.Request)
		defer pool.Put(req)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		deadline := time.Now().Add(30 * time.Second)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if err := client.DoDeadline(req, resp, deadline); err != nil {
			return err
		}
		if resp.StatusCode() != fasthttp.StatusAccepted {
			return fmt.Errorf("POST answered %d %q, want 202", resp.StatusCode(), truncate(string(resp.Body()), 200))
		}
		return nil
	}
	return closedLoop(ctx, tenthN(e.opts), conc, post, e.markTimed)
}

// streamClient is the net/http client of the SSE and GET scenarios: no
// compression, no overall timeout (the scenario context bounds it).
var streamClient = &http.Client{Transport: &http.Transport{
	DisableCompression:  true,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     time.Minute,
}}

// readSSE opens one SSE stream as clientID and reads n message events.
// The span starts when the request is sent.
func readSSE(ctx context.Context, url, clientID string, n int) (span, error) {
	sp := span{start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return sp, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(clientIDHeader, clientID)
	resp, err := streamClient.Do(req)
	if err != nil {
		return sp, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return sp, fmt.Errorf("SSE answered %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	got, err := countSSE(bufio.NewReaderSize(resp.Body, 64<<10), n, func() {
		if sp.first.IsZero() {
			sp.first = time.Now()
		}
	})
	sp.last = time.Now()
	if err != nil {
		return sp, fmt.Errorf("after %d of %d events: %w", got, n, err)
	}
	return sp, nil
}

// errEventStream is an `event: error` the gateway sent.
var errEventStream = errors.New("error event")

// countSSE reads events until n `message` events arrived. Heartbeats
// (comments), the retry chunk and events of other types are skipped; an
// `error` event ends the read with its data. onMessage runs per message.
func countSSE(r *bufio.Reader, n int, onMessage func()) (int, error) {
	got := 0
	typ := "message" // the SSE default event type
	var data []byte
	hasData := false
	for got < n {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A data line longer than the buffer: consume the rest of it.
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			hasData = true
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return got, err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case len(line) == 0:
			if hasData {
				switch typ {
				case "message":
					got++
					if onMessage != nil {
						onMessage()
					}
				case "error":
					return got, fmt.Errorf("%w: %s", errEventStream, data)
				}
			}
			typ, hasData, data = "message", false, data[:0]
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("event:")):
			typ = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			hasData = true
			if typ == "error" || len(data) < 512 {
				data = append(data, bytes.TrimPrefix(line[len("data:"):], []byte(" "))...)
			}
		}
	}
	return got, nil
}

// sseGateway is the sse scenario: one client reads n records.
func sseGateway(ctx context.Context, e *env) (Measure, error) {
	n := e.opts.n
	sp, err := readSSE(ctx, "http://"+e.gw.listen+"/bench-sse", e.uniqueID("bench-sse"), n)
	if err != nil {
		return Measure{}, err
	}
	return sp.measure(n, true), nil
}

// sseFanoutGateway is the sse-fanout scenario: every client has its own
// identifier, hence its own consumer group, and reads n/10 records; the
// figure is the aggregate from the first record any client got to the last
// one the slowest client got.
func sseFanoutGateway(ctx context.Context, e *env) (Measure, error) {
	per, clients := tenthN(e.opts), e.opts.fanoutClients
	url := "http://" + e.gw.listen + "/bench-fanout"
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = e.uniqueID("bench-fanout")
	}
	errs := make([]error, clients)
	spans := make([]span, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if spans[i], err = readSSE(ctx, url, ids[i], per); err != nil {
				errs[i] = fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Measure{}, err
	}
	return fanoutMeasure(spans, per*clients), nil
}

// getPage is the part of an http-get JSON body the bench reads.
type getPage struct {
	Items []struct {
		ID string `json:"id"`
	} `json:"items"`
	Error json.RawMessage `json:"error"`
}

// parseGetPage decodes one http-get JSON body.
func parseGetPage(body []byte) (getPage, error) {
	var p getPage
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("http-get body %q: %w", truncate(string(body), 200), err)
	}
	if len(p.Error) > 0 && !bytes.Equal(p.Error, []byte("null")) {
		return p, fmt.Errorf("http-get error item: %s", truncate(string(p.Error), 300))
	}
	return p, nil
}

// httpGetGateway is the http-get scenario: one client identifier GETs page
// after page until n distinct records arrived. Records carry ids with the
// at-* QoS levels, so a record delivered twice is counted once (and
// reported as a duplicate).
func httpGetGateway(ctx context.Context, e *env) (Measure, error) {
	n := e.opts.n
	url := "http://" + e.gw.listen + "/bench-get"
	clientID := e.uniqueID("bench-get")
	seen := make(map[string]struct{}, n)
	distinct, dups, requests := 0, 0, 0
	var first time.Duration
	var pages []time.Duration
	start := time.Now()
	for distinct < n {
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return Measure{}, err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set(clientIDHeader, clientID)
		resp, err := streamClient.Do(req)
		if err != nil {
			return Measure{}, fmt.Errorf("after %d of %d records in %d requests: %w", distinct, n, requests, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		pages = append(pages, time.Since(t0))
		requests++
		if err != nil {
			return Measure{}, fmt.Errorf("reading page %d: %w", requests, err)
		}
		if resp.StatusCode != http.StatusOK {
			return Measure{}, fmt.Errorf("GET answered %d %q", resp.StatusCode, truncate(string(body), 200))
		}
		page, err := parseGetPage(body)
		if err != nil {
			return Measure{}, err
		}
		if first == 0 && len(page.Items) > 0 {
			first = time.Since(start)
		}
		for _, it := range page.Items {
			if it.ID == "" {
				distinct++
				continue
			}
			if _, ok := seen[it.ID]; ok {
				dups++
				continue
			}
			seen[it.ID] = struct{}{}
			distinct++
		}
	}
	m := rateOf(n, time.Since(start))
	m.FirstMs = ms(first)
	m.Requests = requests
	m.Extra = int64(dups)
	m.P50Ms, m.P99Ms = percentileMs(pages, 50), percentileMs(pages, 99)
	return m, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
