package relay

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/plan"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// recordingSubStream records the acknowledgements sent on a subscription.
type recordingSubStream struct {
	pluginv1.Endpoint_SubscribeClient
	mu   sync.Mutex
	acks []uint64
}

func (r *recordingSubStream) Send(req *pluginv1.Subscribe_Request) error {
	r.mu.Lock()
	r.acks = append(r.acks, req.GetAck().GetThroughTag())
	r.mu.Unlock()
	return nil
}

func (r *recordingSubStream) sent() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.acks...)
}

func writeAction(ack uint64, chunks ...string) *pluginv1.Connect_Response {
	w := &pluginv1.Connect_Write{AckThrough: ack}
	for _, c := range chunks {
		w.Chunks = append(w.Chunks, []byte(c))
	}
	return &pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Write{Write: w}}
}

// TestStreamBodyAcksAfterFlush drives streamBody the way fasthttp does: it
// reads a chunk, writes and flushes it, then reads again. An acknowledgement
// may only leave once the Write's last bytes were handed out and fasthttp
// came back for more, i.e. flushed them.
func TestStreamBodyAcksAfterFlush(t *testing.T) {
	x := &Exchange{out: make(chan *pluginv1.Connect_Response, 8)}
	rec := &recordingSubStream{}
	x.sub = &subscription{x: x, stream: rec}
	b := &streamBody{x: x}
	b.load(&pluginv1.Connect_Write{Chunks: [][]byte{[]byte("retry: 1\n\n")}})

	x.out <- writeAction(2, "event: a\n\n", "", "event: b\n\n")
	x.out <- writeAction(0, "0123456789")
	x.out <- writeAction(3, "event: c\n\n")
	x.out <- &pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Finish{Finish: &pluginv1.Connect_Finish{}}}

	small := make([]byte, 12) // smaller than one Write, as a full 4 KiB buffer can be
	steps := []struct {
		data string
		acks []uint64 // acknowledgements sent before this read returned
		err  error
	}{
		{"retry: 1\n\n", nil, nil},
		{"event: a\n\nev", nil, nil},
		{"ent: b\n\n", nil, nil}, // the rest of the same Write: not flushed yet
		{"0123456789", []uint64{2}, nil},
		{"event: c\n\n", []uint64{2}, nil},
		{"", []uint64{2, 3}, io.EOF},
		{"", []uint64{2, 3}, io.EOF},
	}
	for i, st := range steps {
		n, err := b.Read(small)
		if got := string(small[:n]); got != st.data || err != st.err {
			t.Fatalf("read %d = %q, %v; want %q, %v", i, got, err, st.data, st.err)
		}
		if got := rec.sent(); !equalTags(got, st.acks) {
			t.Fatalf("after read %d acks = %v, want %v", i, got, st.acks)
		}
	}
}

// TestStreamBodyBrokenExchange: a stream whose entrypoint failed is cut, not
// ended cleanly, so the client can tell.
func TestStreamBodyBrokenExchange(t *testing.T) {
	x := &Exchange{out: make(chan *pluginv1.Connect_Response, 1)}
	x.endFailure.Store(&pluginv1.Failure{Status: 502})
	close(x.out)
	b := &streamBody{x: x}
	if _, err := b.Read(make([]byte, 8)); err != errStreamBroken {
		t.Fatalf("err = %v, want errStreamBroken", err)
	}
}

func equalTags(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMergeRespond(t *testing.T) {
	ct := &pluginv1.Header{Name: "Content-Type", Values: []string{"text/plain"}}
	tests := map[string]struct {
		pending, final *pluginv1.Connect_Respond
		status         int32
		body           string
		headers        int
	}{
		"neither":             {nil, nil, 0, "", 0},
		"only pending":        {&pluginv1.Connect_Respond{Status: 202}, nil, 202, "", 0},
		"only final":          {nil, &pluginv1.Connect_Respond{Status: 412, Body: []byte("no")}, 412, "no", 0},
		"final status wins":   {&pluginv1.Connect_Respond{Status: 200, Headers: []*pluginv1.Header{ct}}, &pluginv1.Connect_Respond{Status: 500, Body: []byte("x")}, 500, "x", 1},
		"pending status kept": {&pluginv1.Connect_Respond{Status: 201}, &pluginv1.Connect_Respond{Body: []byte("b"), Headers: []*pluginv1.Header{ct}}, 201, "b", 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := mergeRespond(tc.pending, tc.final)
			if r.GetStatus() != tc.status || string(r.GetBody()) != tc.body || len(r.GetHeaders()) != tc.headers {
				t.Fatalf("merged %v", r)
			}
		})
	}
}

func TestApplyHeaders(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Response.Header.Set(plan.HeaderRequestID, "core")
	applyHeaders(&ctx, []*pluginv1.Header{
		{Name: "Content-Type", Values: []string{"text/event-stream;charset=UTF-8"}},
		{Name: "Connection", Values: []string{"keep-alive"}},
		{Name: "Transfer-Encoding", Values: []string{"chunked"}},
		{Name: "Content-Length", Values: []string{"99"}},
		{Name: "X-Multi", Values: []string{"a", "b"}},
		{Name: "x-multi", Values: []string{"c"}},
		{Name: plan.HeaderRequestID, Values: []string{"entrypoint"}},
	})
	h := &ctx.Response.Header
	if got := string(h.ContentType()); got != "text/event-stream;charset=UTF-8" {
		t.Fatalf("Content-Type %q", got)
	}
	if h.ConnectionClose() || len(h.Peek("Transfer-Encoding")) != 0 || h.ContentLength() == 99 {
		t.Fatalf("framing headers leaked: %s", h.String())
	}
	var multi []string
	for _, v := range h.PeekAll("X-Multi") {
		multi = append(multi, string(v))
	}
	if strings.Join(multi, ",") != "a,b,c" {
		t.Fatalf("X-Multi = %q", multi)
	}
	if got := string(h.Peek(plan.HeaderRequestID)); got != "entrypoint" {
		t.Fatalf("%s = %q", plan.HeaderRequestID, got)
	}
	applyHeaders(&ctx, []*pluginv1.Header{{Name: "Connection", Values: []string{"close"}}})
	if !h.ConnectionClose() {
		t.Fatal("Connection: close not honoured")
	}
}

// writeLogConn records each Write as one socket write, with the
// acknowledgements already sent when it was made.
type writeLogConn struct {
	net.Conn
	rec    *recordingSubStream
	writes []string
	acks   [][]uint64
}

func (c *writeLogConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	c.acks = append(c.acks, c.rec.sent())
	return len(p), nil
}

func (c *writeLogConn) SetWriteDeadline(time.Time) error { return nil }

// TestHijackedStreamWritesChunks checks the bytes a hijacked stream puts on
// the wire: the head and the first chunks in one write, then each gathered
// run of Write actions as one HTTP chunk, then the final chunk; each
// acknowledgement leaves only after the write that carried its messages.
func TestHijackedStreamWritesChunks(t *testing.T) {
	x := &Exchange{out: make(chan *pluginv1.Connect_Response, 8)}
	rec := &recordingSubStream{}
	x.sub = &subscription{x: x, stream: rec}
	b := &streamBody{x: x, timeout: time.Second}
	b.load(&pluginv1.Connect_Write{Chunks: [][]byte{[]byte("retry: 1\n\n")}})
	x.out <- writeAction(2, "event: a\n\n", "", "event: b\n\n")
	x.out <- writeAction(3, "0123456789abcdef")
	x.out <- &pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Finish{Finish: &pluginv1.Connect_Finish{}}}

	c := &writeLogConn{rec: rec}
	if err := b.writeChunked(c, []byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Everything was waiting when the first write began: one write.
	want := "HTTP/1.1 200 OK\r\n\r\n" +
		"2e\r\nretry: 1\n\nevent: a\n\nevent: b\n\n0123456789abcdef\r\n" +
		"0\r\n\r\n"
	if len(c.writes) != 1 || c.writes[0] != want {
		t.Fatalf("writes = %q, want [%q]", c.writes, want)
	}
	if len(c.acks[0]) != 0 {
		t.Fatalf("acknowledged %v before the write", c.acks[0])
	}
	if got := rec.sent(); !equalTags(got, []uint64{3}) {
		t.Fatalf("acks = %v, want [3]", got)
	}

	// One action at a time: a write each, acknowledged after it.
	x2 := &Exchange{out: make(chan *pluginv1.Connect_Response)}
	rec2 := &recordingSubStream{}
	x2.sub = &subscription{x: x2, stream: rec2}
	b2 := &streamBody{x: x2}
	go func() {
		x2.out <- writeAction(5, "event: c\n\n")
		x2.endFailure.Store(&pluginv1.Failure{Status: 502})
		close(x2.out)
	}()
	c2 := &writeLogConn{rec: rec2}
	if err := b2.writeChunked(c2, []byte("HEAD\r\n\r\n")); err != errStreamBroken {
		t.Fatalf("broken stream: err = %v, want errStreamBroken", err)
	}
	wantWrites := []string{"HEAD\r\n\r\n", "a\r\nevent: c\n\n\r\n"}
	if strings.Join(c2.writes, "|") != strings.Join(wantWrites, "|") {
		t.Fatalf("writes = %q, want %q (a broken stream gets no final chunk)", c2.writes, wantWrites)
	}
	if len(c2.acks[1]) != 0 || !equalTags(rec2.sent(), []uint64{5}) {
		t.Fatalf("acks before the chunk's write = %v, after = %v; want none, then [5]", c2.acks[1], rec2.sent())
	}
}
