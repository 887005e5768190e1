package main

import (
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// wait bounds every expectation; it only matters when the plugin misbehaves.
const wait = 10 * time.Second

var retryFrame = regexp.MustCompile(`^retry: [0-9]+\n\n$`)

// fakeTimer fires when the test says so.
type fakeTimer struct{ c chan time.Time }

func (f *fakeTimer) C() <-chan time.Time { return f.c }
func (f *fakeTimer) Reset(time.Duration) {}
func (f *fakeTimer) Stop()               {}

// start configures an sse instance "i" with config and opens one exchange for
// a GET with the given headers.
func start(t *testing.T, config any, headers gateway.Headers) (*Plugin, *plugintest.Harness, *plugintest.Exchange, *fakeTimer) {
	t.Helper()
	p := New()
	ft := &fakeTimer{c: make(chan time.Time)}
	p.newTimer = func(time.Duration) heartbeatTimer { return ft }
	h := plugintest.Start(t, p)
	if d := h.Configure(t, "i", "sse", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	if headers == nil {
		headers = gateway.Headers{}
	}
	headers.Add("Accept", "text/event-stream")
	ex := h.Connect(t, "i", &gateway.Context{APIID: "api", Request: &gateway.Request{Method: "GET", Headers: headers}})
	return p, h, ex, ft
}

func chunks(a plugintest.Action) []string {
	var out []string
	for _, c := range a.Write.Chunks {
		out = append(out, string(c))
	}
	return out
}

// expectStart checks Subscribe, then, once the endpoint is ready, the 200
// response and the retry frame.
func expectStart(t *testing.T, ex *plugintest.Exchange, qos, lastID string) {
	t.Helper()
	sub := ex.Expect(t, plugintest.ActionSubscribe, wait)
	if sub.Subscribe != (plugintest.SubscribeAction{QoS: qos, LastID: lastID}) {
		t.Fatalf("subscribe %+v, want qos %q lastID %q", sub.Subscribe, qos, lastID)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Ready, Cursor: "c"})
	r := ex.Expect(t, plugintest.ActionRespond, wait)
	wantHeaders := gateway.Headers{
		"Content-Type":      {"text/event-stream;charset=UTF-8"},
		"Connection":        {"keep-alive"},
		"Cache-Control":     {"no-cache"},
		"X-Accel-Buffering": {"no"},
	}
	if r.Respond.Status != 200 || !reflect.DeepEqual(r.Respond.Headers, wantHeaders) || len(r.Respond.Body) != 0 {
		t.Fatalf("respond %+v", r.Respond)
	}
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if c := chunks(w); len(c) != 1 || !retryFrame.MatchString(c[0]) || w.Write.AckThrough != 0 {
		t.Fatalf("first write %q ack %d, want one retry frame", c, w.Write.AckThrough)
	}
}

func TestVector6(t *testing.T) {
	_, _, ex, _ := start(t, map[string]any{}, nil)
	expectStart(t, ex, "auto", "")
	for i, content := range []string{"message1", "message2", "message3"} {
		ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{{Content: []byte(content), Tag: uint64(i + 1)}}})
		w := ex.Expect(t, plugintest.ActionWrite, wait)
		want := []string{"event: message\ndata: " + content + "\n\n"}
		if !reflect.DeepEqual(chunks(w), want) || w.Write.AckThrough != uint64(i+1) || w.Write.Text {
			t.Fatalf("chunk %d: %q ack %d, want %q ack %d", i+1, chunks(w), w.Write.AckThrough, want, i+1)
		}
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

func TestBatchIsOneWriteAckedThroughItsLastMessage(t *testing.T) {
	_, _, ex, _ := start(t, map[string]any{"qos": "at-least-once"}, nil)
	expectStart(t, ex, "at-least-once", "")
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{ID: "dGVzdC10b3BpY0AwIzA=", Content: []byte("message1"), Tag: 7},
		{ID: "dGVzdC10b3BpY0AwIzE=", Content: []byte("line1\nline2"), Tag: 8},
		{Error: &gateway.Failure{Status: 500, Message: "Connection closed"}, Tag: 9},
	}})
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	want := []string{"id: dGVzdC10b3BpY0AwIzA=\nevent: message\ndata: message1\n\n" +
		"id: dGVzdC10b3BpY0AwIzE=\nevent: message\ndata: line1\ndata: line2\n\n" +
		"event: error\ndata: Connection closed\n\n"}
	if !reflect.DeepEqual(chunks(w), want) || w.Write.AckThrough != 9 {
		t.Fatalf("got %q ack %d, want %q ack 9", chunks(w), w.Write.AckThrough, want)
	}
}

func TestLastEventID(t *testing.T) {
	tests := map[string]struct {
		qos, header, want string
	}{
		"at-least-once resumes":  {"at-least-once", "dGVzdC10b3BpY0AwIzE=", "dGVzdC10b3BpY0AwIzE="},
		"at-most-once resumes":   {"at-most-once", "x", "x"},
		"auto ignores the id":    {"auto", "x", ""},
		"none ignores the id":    {"none", "x", ""},
		"no header, no position": {"at-least-once", "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := gateway.Headers{}
			if tc.header != "" {
				h.Add("last-event-id", tc.header)
			}
			_, _, ex, _ := start(t, map[string]any{"qos": tc.qos}, h)
			sub := ex.Expect(t, plugintest.ActionSubscribe, wait)
			if sub.Subscribe.QoS != tc.qos || sub.Subscribe.LastID != tc.want {
				t.Fatalf("subscribe %+v, want lastID %q", sub.Subscribe, tc.want)
			}
		})
	}
}

func TestCommentsFromConfig(t *testing.T) {
	_, _, ex, _ := start(t, map[string]any{"headers_as_comment": true, "metadata_as_comment": true}, nil)
	expectStart(t, ex, "auto", "")
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{{
		Content:  []byte("message1"),
		Headers:  gateway.Headers{"X-Test": {"a", "b"}},
		Metadata: map[string]any{"topic": "test-topic", "partition": 0, "offset": 41, "sourceTimestamp": 1700000000123},
		Tag:      1,
	}}})
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	want := []string{"event: message\ndata: message1\n:X-Test: a,b\n:sourceTimestamp: 1700000000123\n:offset: 41\n:partition: 0\n:topic: test-topic\n\n"}
	if !reflect.DeepEqual(chunks(w), want) {
		t.Fatalf("got %q, want %q", chunks(w), want)
	}
}

func TestFirstDeliveryStartsTheResponse(t *testing.T) {
	_, _, ex, _ := start(t, nil, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{{Content: []byte("m"), Tag: 1}}})
	ex.Expect(t, plugintest.ActionRespond, wait)
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	c := chunks(w)
	if len(c) != 1 || !regexp.MustCompile(`^retry: [0-9]+\n\nevent: message\ndata: m\n\n$`).MatchString(c[0]) || w.Write.AckThrough != 1 {
		t.Fatalf("got %q ack %d", c, w.Write.AckThrough)
	}
}

func TestHeartbeat(t *testing.T) {
	_, _, ex, ft := start(t, nil, nil)
	expectStart(t, ex, "auto", "")
	ft.c <- time.Now()
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if !reflect.DeepEqual(chunks(w), []string{":\n\n"}) || w.Write.AckThrough != 0 {
		t.Fatalf("got %q", chunks(w))
	}
}

func TestHeartbeatBeforeReadyStartsTheResponse(t *testing.T) {
	_, _, ex, ft := start(t, nil, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ft.c <- time.Now()
	ex.Expect(t, plugintest.ActionRespond, wait)
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if c := chunks(w); len(c) != 1 || !regexp.MustCompile(`^retry: [0-9]+\n\n:\n\n$`).MatchString(c[0]) {
		t.Fatalf("got %q", c)
	}
}

func TestEndpointFailureBeforeTheStreamIsAnErrorResponse(t *testing.T) {
	tests := map[string]struct {
		accept   string
		wantType string
		wantBody string
	}{
		"text":             {"", "text/plain", "Invalid configuration"},
		"json when wanted": {"application/json", "application/json", `{"message":"Invalid configuration","http_status_code":500}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := gateway.Headers{}
			if tc.accept != "" {
				h.Add("Accept", tc.accept)
			}
			_, _, ex, _ := start(t, nil, h)
			ex.Expect(t, plugintest.ActionSubscribe, wait)
			ex.Send(t, entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: &gateway.Failure{Status: 500, Message: "Invalid configuration", RequestLevel: true}})
			f := ex.Expect(t, plugintest.ActionFinish, wait)
			if f.Finish.Status != 500 || f.Finish.Headers.Get("Content-Type") != tc.wantType || string(f.Finish.Body) != tc.wantBody {
				t.Fatalf("finish %+v body %q", f.Finish, f.Finish.Body)
			}
			if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
				t.Fatal(end.Err)
			}
		})
	}
}

func TestEndpointFailureDuringTheStreamIsAnErrorEvent(t *testing.T) {
	_, _, ex, _ := start(t, nil, nil)
	expectStart(t, ex, "auto", "")
	ex.Send(t, entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: &gateway.Failure{Status: 502, Message: "Connection closed"}})
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if !reflect.DeepEqual(chunks(w), []string{"event: error\ndata: Connection closed\n\n"}) {
		t.Fatalf("got %q", chunks(w))
	}
	if f := ex.Expect(t, plugintest.ActionFinish, wait); f.Finish.Status != 0 {
		t.Fatalf("finish %+v", f.Finish)
	}
	ex.Expect(t, plugintest.ActionEnd, wait)
}

func TestEndpointEndFinishesTheStream(t *testing.T) {
	_, _, ex, _ := start(t, nil, nil)
	expectStart(t, ex, "auto", "")
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End})
	if f := ex.Expect(t, plugintest.ActionFinish, wait); !reflect.DeepEqual(f.Finish, entrypoint.Finish{}) {
		t.Fatalf("finish %+v", f.Finish)
	}
	ex.Expect(t, plugintest.ActionEnd, wait)
}

func TestDrainSendsGoaway(t *testing.T) {
	_, h, ex, _ := start(t, nil, nil)
	expectStart(t, ex, "auto", "")
	drained := make(chan error, 1)
	go func() { drained <- h.Drain(t, wait) }()
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if !reflect.DeepEqual(chunks(w), []string{"event: goaway\ndata: Stopping, please reconnect\n\n"}) {
		t.Fatalf("got %q", chunks(w))
	}
	ex.Expect(t, plugintest.ActionFinish, wait)
	ex.Expect(t, plugintest.ActionEnd, wait)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

// The core ends every stream itself when the gateway stops, before it
// drains the plugins: End with Stopping gets the same goaway as a drain.
func TestStoppingEndSendsGoaway(t *testing.T) {
	_, _, ex, _ := start(t, nil, nil)
	expectStart(t, ex, "auto", "")
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, Stopping: true})
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if got, want := chunks(w), []string{"event: goaway\ndata: Stopping, please reconnect\n\n"}; !reflect.DeepEqual(got, want) || w.Write.AckThrough != 0 || w.Write.Text {
		t.Fatalf("write %q ack %d text %v, want %q", got, w.Write.AckThrough, w.Write.Text, want)
	}
	if f := ex.Expect(t, plugintest.ActionFinish, wait); !reflect.DeepEqual(f.Finish, entrypoint.Finish{}) {
		t.Fatalf("finish %+v", f.Finish)
	}
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

func TestStoppingEndBeforeTheStreamAnswers503(t *testing.T) {
	_, _, ex, _ := start(t, nil, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, Stopping: true})
	f := ex.Expect(t, plugintest.ActionFinish, wait)
	if f.Finish.Status != 503 || f.Finish.Headers.Get("Content-Type") != "text/plain" || string(f.Finish.Body) != "Stopping, please reconnect" {
		t.Fatalf("finish %+v body %q", f.Finish, f.Finish.Body)
	}
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

func TestDrainBeforeTheStreamAnswers503(t *testing.T) {
	_, h, ex, _ := start(t, nil, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	go func() { _ = h.Drain(t, wait) }()
	f := ex.Expect(t, plugintest.ActionFinish, wait)
	if f.Finish.Status != 503 || string(f.Finish.Body) != "Stopping, please reconnect" {
		t.Fatalf("finish %+v body %q", f.Finish, f.Finish.Body)
	}
}

func TestClientGoneEndsWithoutFinish(t *testing.T) {
	_, _, ex, _ := start(t, nil, nil)
	expectStart(t, ex, "auto", "")
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if a := ex.Next(t, wait); a.Kind != plugintest.ActionEnd || a.Err != nil {
		t.Fatalf("got %v %v, want a clean end", a.Kind, a.Err)
	}
}

func TestUnconfiguredInstance(t *testing.T) {
	h := plugintest.Start(t, New())
	ex := h.Connect(t, "missing", &gateway.Context{Request: &gateway.Request{Method: "GET"}})
	if a := ex.Expect(t, plugintest.ActionEnd, wait); a.Err == nil {
		t.Fatal("want an error for an unknown instance")
	}
}

func TestMetadataAndValidation(t *testing.T) {
	h := plugintest.Start(t, New())
	md := h.Metadata(t)
	if len(md.Types) != 1 {
		t.Fatalf("types %+v", md.Types)
	}
	ty := md.Types[0]
	if ty.Name != "sse" || ty.Match == nil || ty.Match.CriteriaCount != 2 || ty.Match.Accept != "text/event-stream" ||
		!reflect.DeepEqual(ty.Match.Methods, []string{"GET"}) ||
		!reflect.DeepEqual(ty.QoS, []string{"none", "auto", "at-most-once", "at-least-once"}) {
		t.Fatalf("type %+v match %+v", ty, ty.Match)
	}
	if d := h.Validate(t, "sse", map[string]any{"heartbeat_interval_in_ms": 1000}); !d.HasErrors() || d[0].Path[0] != "heartbeat_interval_in_ms" {
		t.Fatalf("diagnostics %+v", d)
	}
	if d := h.Validate(t, "websocket", nil); !d.HasErrors() {
		t.Fatal("want an error for another type")
	}
	if d := h.Configure(t, "bad", "sse", map[string]any{"qos": "exactly-once"}); !d.HasErrors() {
		t.Fatal("want an error")
	}
}
