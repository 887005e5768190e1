package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rawRequest sends raw bytes on a new connection and returns the status
// line's code and the response head and body read within the deadline.
func rawRequest(t *testing.T, addr string, req []byte) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	// Write in the background: the gateway may answer and close before it
	// has read everything, and a blocked write must not hide its answer.
	go func() { _, _ = c.Write(req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		// A stream that was opened would never end: the status says it all.
		return resp.StatusCode, ""
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

// TestHostileRequestsGetClear4xx sends what broken or malicious clients send
// and checks each gets a clear 4xx (or is accepted byte for byte where the
// bytes are legitimate), that nothing is logged at ERROR, that a request
// cut off mid-body produces no record, and that no goroutine is left behind.
func TestHostileRequestsGetClear4xx(t *testing.T) {
	g := StartGateway(t, faultAPI, map[string]int{"faults": 1})
	// Warm up the POST path (producer, connections) before the baseline.
	if resp, body := post(t, g, "/faults", "warm-up", nil); resp.StatusCode != 202 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
	}
	baseline := g.goroutines(t)

	t.Run("10k headers", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("POST /faults HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n")
		for i := 0; i < 10000; i++ {
			fmt.Fprintf(&b, "X-H-%d: v\r\n", i)
		}
		b.WriteString("\r\nx")
		if code, body := rawRequest(t, g.Listen, b.Bytes()); code != 431 {
			t.Fatalf("10k headers: %d %s, want 431", code, body)
		}
	})

	t.Run("20 MB body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, g.URL("/faults"), bytes.NewReader(make([]byte, 20<<20)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("20 MB body: %v (want an answer, not a reset)", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(body), "413") {
			t.Fatalf("20 MB body: %d %s, want 413 in the failure format", resp.StatusCode, body)
		}
	})

	t.Run("reset mid-body", func(t *testing.T) {
		for _, head := range []string{
			"POST /faults HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
			"POST /faults HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n",
		} {
			c, err := net.Dial("tcp", g.Listen)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte(head))
			_, _ = c.Write(bytes.Repeat([]byte("partial-"), 10000))
			// SO_LINGER 0: the close is an RST, as when a client crashes.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	})

	t.Run("invalid UTF-8", func(t *testing.T) {
		// A body is bytes: Kafka carries it unchanged, so it is accepted and
		// kept byte for byte.
		body := "\xff\xfe\xc3\x28 \xed\xa0\x80"
		resp, text := post(t, g, "/faults", body, nil)
		if resp.StatusCode != 202 {
			t.Fatalf("invalid UTF-8 body: %d %s, want 202", resp.StatusCode, text)
		}
		recs := readRecordsNow(t, g, "faults", 2)
		if got := string(recs[1].Value); got != body {
			t.Fatalf("record %q, want %q", got, body)
		}
		// Header values, query parameters and paths reach plugins as
		// strings, which are UTF-8: anything else is the client's mistake,
		// refused with 400 before any plugin is called (not a 500 from a
		// plugin that cannot decode the request).
		for name, raw := range map[string]string{
			"header":            "POST /faults HTTP/1.1\r\nHost: x\r\nX-Raw: \xc3\x28\xff\r\nContent-Length: 1\r\n\r\nx",
			"client identifier": "POST /faults HTTP/1.1\r\nHost: x\r\nX-Gravitee-Client-Identifier: \xff\r\nContent-Length: 1\r\n\r\nx",
			"query":             "POST /faults?a=%ff%fe HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
			"path":              "POST /faults/%ff HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
		} {
			if code, text := rawRequest(t, g.Listen, []byte(raw)); code != 400 || !strings.Contains(text, "UTF-8") {
				t.Errorf("invalid UTF-8 %s: %d %s, want 400 naming UTF-8", name, code, text)
			}
		}
		// So is a Last-Event-ID that is not UTF-8 (an id the gateway gave
		// out never is).
		for _, id := range []string{"\xff\xfe"} {
			raw := "GET /faults HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: " + id + "\r\n\r\n"
			if code, text := rawRequest(t, g.Listen, []byte(raw)); code != 400 {
				t.Errorf("Last-Event-ID %q: %d %s, want 400", id, code, text)
			}
		}
	})

	// Nothing the clients above sent may have become a record: only the
	// warm-up and the invalid UTF-8 POST are in the topic.
	if n := endOffset(t, g, "faults"); n != 2 {
		t.Fatalf("topic holds %d records, want 2 (a cut-off or refused body became a record)", n)
	}
	g.settleGoroutines(t, baseline)
	g.noErrorLogs(t)
}

// readRecordsNow reads n records of topic from the start with a client it
// closes before returning: the embedded broker runs in the gateway process,
// and an open client's connections would count as the gateway's goroutines.
func readRecordsNow(t *testing.T, g *Gateway, topic string, n int) []*kgo.Record {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(g.Kafka), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// endOffset is the end offset of partition 0 of topic, read with a client
// closed before returning (see readRecordsNow).
func endOffset(t *testing.T, g *Gateway, topic string) int64 {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(g.Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ends, err := kadm.NewClient(c).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

// wsFrame encodes one client frame: fin, the raw first byte's flags and
// opcode, masked unless unmasked is set.
func wsFrame(first byte, payload []byte, unmasked bool) []byte {
	b := []byte{first}
	mask := byte(0x80)
	if unmasked {
		mask = 0
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mask|byte(n))
	case n < 1<<16:
		b = append(b, mask|126, byte(n>>8), byte(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if unmasked {
		return append(b, payload...)
	}
	key := []byte{1, 2, 3, 4}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// wsCloseCode dials the gateway, writes raw bytes after the handshake and
// returns the close code the gateway answers with.
func wsCloseCode(t *testing.T, g *Gateway, raw []byte) int {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+g.Listen+"/faults", http.Header{"X-Gravitee-Client-Identifier": {uniqueID("wsbad")}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { _, _ = conn.UnderlyingConn().Write(raw) }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asCloseError(err, &ce); ok {
			return ce.Code
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

// TestHostileWebSocketFramesGetCloseCodes checks that malformed and
// oversized frames end the connection with the RFC 6455 close code that
// names the problem, log nothing at ERROR, publish nothing and leave no
// goroutine behind.
func TestHostileWebSocketFramesGetCloseCodes(t *testing.T) {
	g := StartGateway(t, faultAPI, map[string]int{"faults": 1})
	// Warm up: one good connection, so plugin streams and producer exist.
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+g.Listen+"/faults", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.WriteMessage(websocket.TextMessage, []byte("warm-up"))
	g.ReadRecords(t, "faults", 1, 10*time.Second)
	conn.Close()
	baseline := g.goroutines(t)

	cases := []struct {
		name string
		raw  []byte
		want int
	}{
		{"oversized frame", wsFrame(0x82, make([]byte, 2<<20), false), websocket.CloseMessageTooBig},
		{"oversized message in fragments", append(wsFrame(0x02, make([]byte, 700<<10), false), wsFrame(0x80, make([]byte, 700<<10), false)...), websocket.CloseMessageTooBig},
		{"reserved bits", wsFrame(0x82|0x40, []byte("x"), false), websocket.CloseProtocolError},
		{"unknown opcode", wsFrame(0x83, []byte("x"), false), websocket.CloseProtocolError},
		{"unmasked client frame", wsFrame(0x82, []byte("x"), true), websocket.CloseProtocolError},
		{"continuation without start", wsFrame(0x80, []byte("x"), false), websocket.CloseProtocolError},
		{"fragmented ping", wsFrame(0x09, []byte("x"), false), websocket.CloseProtocolError},
		{"invalid UTF-8 text", wsFrame(0x81, []byte("\xff\xfe"), false), websocket.CloseInvalidFramePayloadData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wsCloseCode(t, g, tc.raw); got != tc.want {
				t.Fatalf("close code %d, want %d", got, tc.want)
			}
		})
	}
	if n := endOffset(t, g, "faults"); n != 1 {
		t.Fatalf("topic holds %d records, want only the warm-up", n)
	}
	g.settleGoroutines(t, baseline)
	g.noErrorLogs(t)
}
