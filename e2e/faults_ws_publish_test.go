package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kgo"
)

// wsPublishAPI publishes every WebSocket message to one topic; the
// subscriber is off, so a socket only publishes.
const wsPublishAPI = `
api "wspub" {
  context_path = "/wspub"
  plan "keyless" {}
  entrypoint "websocket" {
    subscriber {
      enabled = false
    }
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["wspub"]
    }
  }
}
`

// wsSession is one connection of wsPublisher.
type wsSession struct {
	n      int // connection number, from 1
	opened time.Time
	conn   *websocket.Conn
	// sent is how many messages were written: c<n>-000000 onwards.
	sent int
	// refusedAt, with status and body, is a handshake the gateway refused.
	refusedAt time.Time
	status    int
	body      string

	// Set by the reader before closed is closed.
	closed    chan struct{}
	closedAt  time.Time
	closeCode int
	reason    string
	readErr   error
	// writeErr is a write that failed (the socket was going away).
	writeErr error
}

func wsValue(n, seq int) string { return fmt.Sprintf("c%03d-%06d", n, seq) }

// wsPublisher sends a message every 10 ms on a WebSocket, and on a new one
// whenever the gateway closed the last (after 200 ms, as a client backing off
// would). It stops sending when stop is closed and returns every session;
// the last one is left open for the test to check and close.
func wsPublisher(t *testing.T, g *Gateway, path string, stop <-chan struct{}) func() []*wsSession {
	var out []*wsSession
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			s := &wsSession{n: n, opened: time.Now(), closed: make(chan struct{})}
			out = append(out, s)
			d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
			conn, resp, err := d.Dial("ws://"+g.Listen+path, nil)
			if err != nil {
				s.refusedAt = time.Now()
				s.readErr = err
				if resp != nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					s.status, s.body = resp.StatusCode, string(b)
				}
				close(s.closed)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			s.conn = conn
			go func() {
				defer close(s.closed)
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						s.closedAt = time.Now()
						var ce *websocket.CloseError
						if errors.As(err, &ce) {
							s.closeCode, s.reason = ce.Code, ce.Text
						} else {
							s.readErr = err
						}
						return
					}
				}
			}()
			tick := time.NewTicker(10 * time.Millisecond)
		send:
			for {
				select {
				case <-stop:
					tick.Stop()
					return
				case <-s.closed:
					break send
				case <-tick.C:
					_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
					if err := conn.WriteMessage(websocket.TextMessage, []byte(wsValue(n, s.sent))); err != nil {
						// The close frame, when there is one, arrived
						// before the connection went away.
						s.writeErr = err
						select {
						case <-s.closed:
						case <-time.After(10 * time.Second):
							conn.Close()
							<-s.closed
						}
						break send
					}
					s.sent++
				}
			}
			tick.Stop()
			conn.Close()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return func() []*wsSession { <-done; return out }
}

// TestWebSocketPublishAcrossBrokerRestart publishes steadily over a WebSocket
// while the broker is killed and started again. A WebSocket publish has no
// per-message acknowledgement (docs/behaviour.md 5.4; the reference has none
// either): a publish that fails closes the socket with 1011 and the failure's
// message (plugins/entrypoint-ws/README.md), and silence means success. So:
//
//   - the socket open at the kill, and every one opened during the outage,
//     is closed with 1011 and a reason (or its handshake is refused in the
//     failure format): a clear error, within a bounded time, not a hang;
//   - what each connection sent is in Kafka as a prefix of what it sent, in
//     order: no message is skipped while a later one is published, and only
//     what followed a failure (which the 1011 told the client about) is
//     missing;
//   - a connection that was never closed with an error has every message in
//     Kafka: nothing is dropped silently;
//   - once the broker is back, a new connection publishes again, without
//     touching the gateway.
func TestWebSocketPublishAcrossBrokerRestart(t *testing.T) {
	b := newTestBroker(t, map[string]int{"wspub": 1})
	t.Setenv("SLUICE_KAFKA_BOOTSTRAP", b.Addr())
	g := StartGateway(t, wsPublishAPI, map[string]int{"wspub": 1})
	published := func() int {
		v, _ := g.metric(t, "sluice_messages_published_total", `api="wspub"`)
		return int(v)
	}
	waitPublished := func(what string, n int) {
		deadline := time.Now().Add(60 * time.Second)
		for published() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d messages published after 60 s", what, published(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	stop := make(chan struct{})
	wait := wsPublisher(t, g, "/wspub", stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wait()
		}
	}()
	waitPublished("before the kill", 200)
	b.kill()
	killed := time.Now()
	time.Sleep(b.holdDown())
	atRestart := published()
	b.start()
	restarted := time.Now()
	waitPublished("after the restart", atRestart+1)
	recovered := time.Since(restarted)
	waitPublished("after the restart", atRestart+200)
	close(stop)
	stopped = true
	sessions := wait()
	last := sessions[len(sessions)-1]
	if last.conn == nil || last.closeCode != 0 || last.readErr != nil {
		t.Fatalf("the last connection is not open: close %d %q, %v", last.closeCode, last.reason, last.readErr)
	}

	// The topic's records, until the last connection's last message: the
	// topic has one partition and the last connection publishes last.
	want := wsValue(last.n, last.sent-1)
	c := g.Kgo(t, kgo.ConsumeTopics("wspub"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var values []string
	for found := false; !found; {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records read, none is %s, the last message of the open connection", len(values), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			values = append(values, string(r.Value))
			found = found || string(r.Value) == want
		})
	}
	_ = last.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	select {
	case <-last.closed:
	case <-time.After(10 * time.Second):
		t.Errorf("the gateway did not answer the client's close within 10 s")
	}
	last.conn.Close()

	// Per connection: first occurrences in order, 0, 1, 2, ...; repeats
	// counted (the producer retries a batch whose acknowledgement was lost).
	next := map[int]int{}
	dups := 0
	for _, v := range values {
		var n, seq int
		if _, err := fmt.Sscanf(v, "c%d-%d", &n, &seq); err != nil {
			t.Fatalf("unexpected record %q", v)
		}
		switch {
		case seq == next[n]:
			next[n]++
		case seq < next[n]:
			dups++
		default:
			t.Errorf("connection %d: %s published while %s is missing", n, v, wsValue(n, next[n]))
			next[n] = seq + 1
		}
	}

	reasons := map[string]int{}
	var firstClose time.Duration
	refusedMsgs, refusedConns, handshakes := 0, 0, 0
	for _, s := range sessions {
		switch {
		case s == last:
			if next[s.n] != s.sent {
				t.Errorf("connection %d (open, no error): %d of %d messages in Kafka", s.n, next[s.n], s.sent)
			}
		case !s.refusedAt.IsZero():
			handshakes++
			if !brokerDownAnswer(s.status, s.body) {
				t.Errorf("connection %d: handshake refused with %d %q (%v), want a clear refusal in the failure format", s.n, s.status, s.body, s.readErr)
			}
		default:
			refusedConns++
			if s.closeCode != websocket.CloseInternalServerErr || s.reason == "" {
				t.Errorf("connection %d: ended with close %d %q, read %v, write %v; want 1011 with the failure's message", s.n, s.closeCode, s.reason, s.readErr, s.writeErr)
			}
			reasons[strconv.Itoa(s.closeCode)+" "+s.reason]++
			if s.closedAt.After(killed) && firstClose == 0 {
				firstClose = s.closedAt.Sub(killed)
			}
			if next[s.n] > s.sent {
				t.Errorf("connection %d: %d messages in Kafka, %d sent", s.n, next[s.n], s.sent)
			}
			refusedMsgs += s.sent - next[s.n]
		}
	}
	if refusedConns == 0 {
		t.Errorf("no connection was closed with an error across a %v outage", restarted.Sub(killed).Round(time.Second))
	}
	if firstClose > 60*time.Second {
		t.Errorf("the connection open at the kill was closed %v after it", firstClose)
	}
	var rs []string
	for r, n := range reasons {
		rs = append(rs, fmt.Sprintf("%q x%d", r, n))
	}
	sort.Strings(rs)
	total := 0
	for _, s := range sessions {
		total += s.sent
	}
	t.Logf("%d connections, %d messages sent, %d records (%d repeated), 0 lost; %d connections closed with %s, %d handshakes refused, %d messages sent after a failure not published (the client was told by the close); first close %v after the kill; outage %v; publishing again %v after the broker was back",
		len(sessions), total, len(values), dups, refusedConns, strings.Join(rs, ", "), handshakes, refusedMsgs,
		firstClose.Round(10*time.Millisecond), restarted.Sub(killed).Round(100*time.Millisecond), recovered.Round(100*time.Millisecond))
	g.noErrorLogs(t)
}

// TestWebSocketClientClosingAfterSendingLosesNothing sends messages as fast
// as the socket takes them and closes at once: everything the client sent
// before its close is published, in order. (A WebSocket publish has no
// acknowledgement, so a client that closes normally can only assume that
// what it sent went through; before the fix the gateway dropped whatever
// was still queued, here all 2,000 messages, and answered the close 1000.)
func TestWebSocketClientClosingAfterSendingLosesNothing(t *testing.T) {
	g := StartGateway(t, wsPublishAPI, map[string]int{"wspub": 1})
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+g.Listen+"/wspub", nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := 0; i < n; i++ {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(wsValue(1, i))); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("answer to the client's close: %v, want close 1000", err)
	}
	conn.Close()
	recs := g.ReadRecords(t, "wspub", n, 30*time.Second)
	for i, r := range recs {
		if want := wsValue(1, i); string(r.Value) != want {
			t.Fatalf("record %d is %q, want %q", i, r.Value, want)
		}
	}
	g.noErrorLogs(t)
}
