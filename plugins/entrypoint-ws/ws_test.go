package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// wait bounds every expectation; it only matters when the plugin misbehaves.
const wait = 10 * time.Second

func start(t *testing.T, config any) (*plugintest.Harness, *plugintest.Exchange) {
	t.Helper()
	h := plugintest.Start(t, New())
	if d := h.Configure(t, "i", "websocket", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	ex := h.Connect(t, "i", &gateway.Context{APIID: "api", Request: &gateway.Request{Method: "GET", WebSocket: true}})
	return h, ex
}

func contents(msgs []*gateway.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Content))
		if m.ID != "" || len(m.Headers) > 0 {
			out = append(out, "unexpected id or headers")
		}
	}
	return out
}

func frames(data ...string) entrypoint.Event {
	ev := entrypoint.Event{Kind: entrypoint.Inbound}
	for i, d := range data {
		ev.Frames = append(ev.Frames, entrypoint.Frame{Data: []byte(d), Text: i%2 == 0})
	}
	return ev
}

func expectFinish(t *testing.T, ex *plugintest.Exchange, code int, reason string) {
	t.Helper()
	f := ex.Expect(t, plugintest.ActionFinish, wait)
	if f.Finish.CloseCode != code || f.Finish.Reason != reason {
		t.Fatalf("finish %d %q, want %d %q", f.Finish.CloseCode, f.Finish.Reason, code, reason)
	}
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

// Vector 7: text, binary and final text frames each become one message.
func TestPublishOneMessagePerFrame(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, frames("text", "binary\x00", "final"))
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	if got := contents(p.Publish.Messages); !reflect.DeepEqual(got, []string{"text", "binary\x00", "final"}) {
		t.Fatalf("published %q", got)
	}
}

func TestOneBatchInFlightAndFramesAccumulate(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, frames("1"))
	first := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, frames("2"))
	ex.Send(t, frames("3", "4"))
	// Nothing more is published until the first batch is answered.
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: first.Publish.BatchID + 100})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: first.Publish.BatchID})
	second := ex.Expect(t, plugintest.ActionPublish, wait)
	if got := contents(second.Publish.Messages); !reflect.DeepEqual(got, []string{"2", "3", "4"}) {
		t.Fatalf("second batch %q, want the three frames that waited", got)
	}
	if second.Publish.BatchID == first.Publish.BatchID {
		t.Fatal("batch ids must differ")
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: second.Publish.BatchID})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

// A client that closes (or vanishes) right after sending: what it sent is
// still published, batch after batch, then the session ends.
func TestClientGonePublishesWhatItSent(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, frames("1"))
	first := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, frames("2", "3"))
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: first.Publish.BatchID})
	second := ex.Expect(t, plugintest.ActionPublish, wait)
	if got := contents(second.Publish.Messages); !reflect.DeepEqual(got, []string{"2", "3"}) {
		t.Fatalf("second batch %q, want what the client sent before it left", got)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: second.Publish.BatchID})
	// The close is for no one, but it ends the session like any other.
	expectFinish(t, ex, 1000, "Bye")
}

// After the client left, a failure stops the publishing: nothing after it
// is published, so what reached the endpoint stays a prefix of what was sent.
func TestClientGoneStopsAtAFailure(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, frames("1"))
	first := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, frames("2"))
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: first.Publish.BatchID, Failure: &gateway.Failure{Status: 500, Message: "Endpoint connection closed"}})
	expectFinish(t, ex, 1011, "Endpoint connection closed")
}

func TestPublishFailureCloses1011(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, frames("1"))
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID, Failure: &gateway.Failure{Status: 500, Message: "Topic missing"}})
	expectFinish(t, ex, 1011, "Topic missing")
}

func TestPublisherDisabledIgnoresFrames(t *testing.T) {
	_, ex := start(t, map[string]any{"publisher": map[string]any{"enabled": false}})
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, frames("ignored"))
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{{Content: []byte("m"), Tag: 1}}})
	if w := ex.Expect(t, plugintest.ActionWrite, wait); len(w.Write.Chunks) != 1 {
		t.Fatalf("write %+v", w.Write)
	}
}

// Vector 7: one binary frame per record.
func TestSubscribeOneBinaryFramePerMessage(t *testing.T) {
	_, ex := start(t, nil)
	sub := ex.Expect(t, plugintest.ActionSubscribe, wait)
	if sub.Subscribe != (plugintest.SubscribeAction{QoS: "auto"}) {
		t.Fatalf("subscribe %+v", sub.Subscribe)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{Content: []byte("message1"), Tag: 1}, {Content: []byte("message2"), Tag: 2}, {Content: []byte("message3"), Tag: 3},
	}})
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	var got []string
	for _, c := range w.Write.Chunks {
		got = append(got, string(c))
	}
	if !reflect.DeepEqual(got, []string{"message1", "message2", "message3"}) || w.Write.Text || w.Write.AckThrough != 3 {
		t.Fatalf("write %q text=%v ack=%d", got, w.Write.Text, w.Write.AckThrough)
	}
}

func TestErrorMessageCloses1011AfterWhatCameBefore(t *testing.T) {
	_, ex := start(t, map[string]any{"qos": "none"})
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{Content: []byte("ok"), Tag: 4},
		{Error: &gateway.Failure{Status: 500, Message: "Connection closed"}, Tag: 5},
		{Content: []byte("never"), Tag: 6},
	}})
	w := ex.Expect(t, plugintest.ActionWrite, wait)
	if len(w.Write.Chunks) != 1 || string(w.Write.Chunks[0]) != "ok" || w.Write.AckThrough != 4 {
		t.Fatalf("write %+v", w.Write)
	}
	expectFinish(t, ex, 1011, "Connection closed")
}

func TestEndpointFailureCloses1011(t *testing.T) {
	tests := map[string]struct {
		failure *gateway.Failure
		reason  string
	}{
		"with message":    {&gateway.Failure{Status: 500, Message: "Invalid configuration"}, "Invalid configuration"},
		"without message": {&gateway.Failure{Status: 500}, "Server error"},
		"long message":    {&gateway.Failure{Message: strings.Repeat("é", 100)}, strings.Repeat("é", 61)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ex := start(t, nil)
			ex.Expect(t, plugintest.ActionSubscribe, wait)
			ex.Send(t, entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: tc.failure})
			expectFinish(t, ex, 1011, tc.reason)
		})
	}
}

func TestEndpointEndClosesBye(t *testing.T) {
	_, ex := start(t, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End})
	expectFinish(t, ex, 1000, "Bye")
}

func TestEndpointEndWaitsForPublishing(t *testing.T) {
	_, ex := start(t, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, frames("1"))
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, frames("2"))
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID})
	p2 := ex.Expect(t, plugintest.ActionPublish, wait)
	if got := contents(p2.Publish.Messages); !reflect.DeepEqual(got, []string{"2"}) {
		t.Fatalf("second batch %q", got)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p2.Publish.BatchID})
	expectFinish(t, ex, 1000, "Bye")
}

// The core ends every socket itself when the gateway stops, before it
// drains the plugins: End with Stopping closes with 1013, as a drain does,
// once what the client sent is published.
func TestStoppingEndCloses1013AfterPublishing(t *testing.T) {
	_, ex := start(t, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	ex.Send(t, frames("1"))
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, Stopping: true})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID})
	expectFinish(t, ex, 1013, "Try Again Later")
}

func TestStoppingEndWithoutSubscriberCloses1013(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, Stopping: true})
	expectFinish(t, ex, 1013, "Try Again Later")
}

func TestSubscriberDisabledWaitsForTheClient(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	// Actions arrive in order: ending with nothing before means no Subscribe.
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

func TestDrainCloses1013(t *testing.T) {
	h, ex := start(t, nil)
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	drained := make(chan error, 1)
	go func() { drained <- h.Drain(t, wait) }()
	expectFinish(t, ex, 1013, "Try Again Later")
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

func TestQueueBound(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	old := maxQueuedBytes
	maxQueuedBytes = 1000
	t.Cleanup(func() { maxQueuedBytes = old })
	ex.Send(t, frames("first"))
	ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, frames(strings.Repeat("x", 600)))
	ex.Send(t, frames(strings.Repeat("x", 600)))
	f := ex.Expect(t, plugintest.ActionFinish, wait)
	if f.Finish.CloseCode != 1013 {
		t.Fatalf("finish %+v", f.Finish)
	}
}

func TestBatchesAreCut(t *testing.T) {
	s := &session{}
	for i := 0; i < maxBatchMessages+10; i++ {
		s.queue = append(s.queue, &gateway.Message{Content: []byte("x")})
	}
	var published [][]*gateway.Message
	s.conn = &recordingConn{publish: func(m []*gateway.Message) { published = append(published, m) }}
	if err := s.publishNext(); err != nil {
		t.Fatal(err)
	}
	if len(published) != 1 || len(published[0]) != maxBatchMessages || len(s.queue) != 10 {
		t.Fatalf("published %d batches, first of %d, %d left", len(published), len(published[0]), len(s.queue))
	}
}

// recordingConn is the little of entrypoint.Conn publishNext uses.
type recordingConn struct {
	entrypoint.Conn
	publish func([]*gateway.Message)
}

func (r *recordingConn) Publish(m []*gateway.Message) (uint64, error) {
	r.publish(m)
	return 1, nil
}

func TestCloseReasonIsCutAtACharacter(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"short":     {"Bye", "Bye"},
		"exact":     {strings.Repeat("a", 123), strings.Repeat("a", 123)},
		"ascii":     {strings.Repeat("a", 200), strings.Repeat("a", 123)},
		"multibyte": {"a" + strings.Repeat("€", 50), "a" + strings.Repeat("€", 40) + ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := closeWith(1011, tc.in).Reason; got != tc.want {
				t.Fatalf("got %q (%d bytes), want %q", got, len(got), tc.want)
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	tests := map[string]struct {
		json    string
		want    *config
		wantErr string
		warn    bool
	}{
		"defaults":       {json: `{}`, want: &config{QoS: "auto", Publisher: true, Subscriber: true}},
		"empty":          {json: ``, want: &config{QoS: "auto", Publisher: true, Subscriber: true}},
		"blocks present": {json: `{"qos":"none","publisher":{"enabled":false},"subscriber":{}}`, want: &config{QoS: "none", Subscriber: true}},
		"null enabled":   {json: `{"publisher":{"enabled":null}}`, want: &config{QoS: "auto", Publisher: true, Subscriber: true}},
		"both disabled": {json: `{"publisher":{"enabled":false},"subscriber":{"enabled":false}}`,
			want: &config{QoS: "auto"}, warn: true},
		"at-least-once refused": {json: `{"qos":"at-least-once"}`, wantErr: `qos: unsupported qos "at-least-once"`},
		"enabled not a bool":    {json: `{"subscriber":{"enabled":"yes"}}`, wantErr: "subscriber.enabled: invalid value"},
		"block not an object":   {json: `{"subscriber":true}`, wantErr: "subscriber: invalid value"},
		"unknown":               {json: `{"publish":{}}`, wantErr: `unsupported attribute or block "publish"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodeConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err := diags.Err(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if diags.HasErrors() || (len(diags) > 0) != tc.warn {
				t.Fatalf("diagnostics %+v", diags)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Fatalf("got %+v, want %+v", cfg, tc.want)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	h := plugintest.Start(t, New())
	ty := h.Metadata(t).Types[0]
	if ty.Name != "websocket" || ty.Match == nil || !ty.Match.WebSocket || ty.Match.CriteriaCount != 4 ||
		!reflect.DeepEqual(ty.QoS, []string{"none", "auto"}) {
		t.Fatalf("type %+v match %+v", ty, ty.Match)
	}
}
