package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// openRawSSE opens an SSE stream on a raw connection and reads only the
// response head, so the test decides whether anything more is ever read.
func openRawSSE(t *testing.T, g *Gateway, path, clientID string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", g.Listen)
	if err != nil {
		t.Fatal(err)
	}
	// A small receive buffer, so a reader that stops reading pushes back
	// on the gateway after a few kilobytes instead of the kernel's default.
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-Gravitee-Client-Identifier: %s\r\n\r\n", path, clientID)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("SSE open: %q %v", line, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// openRawWS completes a WebSocket handshake and returns the raw connection:
// nothing reads it afterwards, so pings go unanswered and frames pile up.
func openRawWS(t *testing.T, g *Gateway, path, clientID string) net.Conn {
	t.Helper()
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	conn, _, err := d.Dial("ws://"+g.Listen+path, http.Header{"X-Gravitee-Client-Identifier": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	return conn.UnderlyingConn()
}

// groupMembers is the number of members of the consumer groups named after
// clientID (the group is the client identifier, REFERENCE 2.2).
func groupMembers(t *testing.T, g *Gateway, clientID string) int {
	t.Helper()
	n := 0
	withAdmin(t, g, func(adm *kadm.Client) {
		groups := groupsWithPrefix(t, adm, clientID)
		if len(groups) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		described, err := adm.DescribeGroups(ctx, groups...)
		if err != nil {
			t.Fatalf("describe groups: %v", err)
		}
		for _, d := range described {
			n += len(d.Members)
		}
	})
	return n
}

// waitMembers waits until the client's group has want members.
func waitMembers(t *testing.T, g *Gateway, clientID string, want int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := groupMembers(t, g, clientID)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: group of %s has %d members after %v, want %d", what, clientID, n, within, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestVanishedClientsAreFoundAndClosed checks that a stream whose client
// went away while nothing was being delivered is found and closed: SSE by
// its heartbeat (the write after the client closed fails), WebSocket by its
// ping/pong deadline (a client that stops answering). Either way the
// client's consumer leaves its group and the core's goroutines go back down;
// without heartbeats an idle stream of a vanished client would hold its
// consumer forever.
func TestVanishedClientsAreFoundAndClosed(t *testing.T) {
	g := StartGateway(t, faultAPI, map[string]int{"faults": 1})
	warm := uniqueID("warm")
	c := openRawSSE(t, g, "/faults", warm)
	waitMembers(t, g, warm, 1, 30*time.Second, "warm-up")
	c.Close()
	waitMembers(t, g, warm, 0, 30*time.Second, "warm-up close")
	baseline := g.goroutines(t)

	t.Run("sse heartbeat", func(t *testing.T) {
		id := uniqueID("gone-sse")
		c := openRawSSE(t, g, "/faults", id)
		waitMembers(t, g, id, 1, 30*time.Second, "open")
		// The client goes away; the gateway is not reading the socket, so
		// only a write can tell. The topic is idle: the write is a
		// heartbeat (every 2 s here).
		c.Close()
		waitMembers(t, g, id, 0, 30*time.Second, "after the client closed")
	})

	t.Run("websocket ping", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for the 60 s pong deadline")
		}
		id := uniqueID("gone-ws")
		c := openRawWS(t, g, "/faults", id)
		defer c.Close()
		waitMembers(t, g, id, 1, 30*time.Second, "open")
		// The socket stays open but nothing answers the gateway's pings:
		// a half-open connection. The pong deadline is 60 s.
		waitMembers(t, g, id, 0, 120*time.Second, "a client that never answers pings")
	})
	g.settleGoroutines(t, baseline)
	g.noErrorLogs(t)
}

// TestSlowReadersNeitherGrowMemoryNorSlowOthers opens SSE and WebSocket
// subscribers that stop reading, then writes the topic in rounds while fast
// readers of the same topic (one SSE, one WebSocket) keep up. The fast
// readers must get every record of every round (counts, not timings), and
// the RSS of the gateway and its plugins must not follow the slow readers'
// growing backlog: backpressure reaches each slow client's own consumer and
// the backlog stays in Kafka. RSS is compared between rounds that do the
// same work, so the garbage collector's headroom cancels out.
func TestSlowReadersNeitherGrowMemoryNorSlowOthers(t *testing.T) {
	g := StartGateway(t, faultAPI, map[string]int{"faults": 1})
	const (
		rounds    = 6
		perRound  = 8000
		size      = 1024
		slowPairs = 4
	)
	for i := 0; i < slowPairs; i++ {
		c := openRawSSE(t, g, "/faults", uniqueID("slow-sse"))
		defer c.Close()
		w := openRawWS(t, g, "/faults", uniqueID("slow-ws"))
		defer w.Close()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fastSSE := &resumingSSE{g: g, path: "/faults", clientID: uniqueID("fast-sse"), progress: make(chan struct{}, 1)}
	go fastSSE.run(ctx)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+g.Listen+"/faults", http.Header{"X-Gravitee-Client-Identifier": {uniqueID("fast-ws")}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var wsMu sync.Mutex
	wsCount := 0
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			wsMu.Lock()
			wsCount++
			wsMu.Unlock()
		}
	}()

	prod := g.Kgo(t, kgo.DefaultProduceTopic("faults"), kgo.ProducerBatchMaxBytes(1<<20))
	value := strings.Repeat("x", size)
	var rss []int64
	for r := 1; r <= rounds; r++ {
		for i := 0; i < perRound; i += 1000 {
			recs := make([]*kgo.Record, 1000)
			for j := range recs {
				recs[j] = &kgo.Record{Value: []byte(value)}
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		want := r * perRound
		deadline := time.Now().Add(60 * time.Second)
		for {
			wsMu.Lock()
			n := wsCount
			wsMu.Unlock()
			if fastSSE.count() >= want && n >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: fast readers stuck at SSE %d, WebSocket %d of %d", r, fastSSE.count(), n, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		rss = append(rss, g.treeRSS(t))
	}
	if n := fastSSE.count(); n != rounds*perRound {
		t.Fatalf("fast SSE reader got %d records, want %d", n, rounds*perRound)
	}
	mib := make([]int64, len(rss))
	for i, v := range rss {
		mib[i] = v >> 20
	}
	// From the third round on (the first two warm up buffers and the
	// pools that hold the framing buffers of blocked writers: on a real
	// Kafka RSS rose 102 and then 52 MiB in them, then 6, 7 and 15),
	// buffering for the slow readers would add their share of every round:
	// 2*slowPairs clients x 8 MB per round, 192 MB in all, well above what the
	// garbage collector's timing moves RSS by (tens of MiB). The embedded broker, which lives in the
	// gateway process, keeps the topic in memory: that much growth is the
	// broker's, not the data path's.
	const warm = 2 // rounds before the baseline
	added := int64(2*slowPairs) * int64(rounds-warm-1) * perRound * size
	var broker int64
	if os.Getenv("SLUICE_KAFKA_BOOTSTRAP") == "" {
		broker = int64(rounds-warm-1) * perRound * size
	}
	growth := rss[len(rss)-1] - rss[warm] - broker
	t.Logf("RSS of gateway and plugins after each round: %v MiB; from round 3, the slow readers' unread backlog grew by %d MiB, the data path by %d MiB",
		mib, added>>20, growth>>20)
	if growth > added/4 {
		t.Fatalf("RSS grew by %d MiB (broker's share removed) while the slow readers' backlog grew by %d MiB: the gateway buffers for them", growth>>20, added>>20)
	}
	g.noErrorLogs(t)
}
