package main

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// A stream is counted open while it runs; its message and error events and
// heartbeats are counted as written.
func TestMetrics(t *testing.T) {
	p := New()
	p.metrics = newSSEMetrics(prometheus.NewRegistry())
	ft := &fakeTimer{c: make(chan time.Time)}
	p.newTimer = func(time.Duration) heartbeatTimer { return ft }
	h := plugintest.Start(t, p)
	if d := h.Configure(t, "i", "sse", map[string]any{}); d.HasErrors() {
		t.Fatal(d.Err())
	}
	ex := h.Connect(t, "i", &gateway.Context{APIID: "api", Request: &gateway.Request{Method: "GET",
		Headers: gateway.Headers{"Accept": {"text/event-stream"}}}})
	expectStart(t, ex, "auto", "")
	if got := testutil.ToFloat64(p.metrics.open); got != 1 {
		t.Fatalf("open streams %v while one runs, want 1", got)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{Content: []byte("a"), Tag: 1},
		{Content: []byte("b"), Tag: 2},
		{Error: &gateway.Failure{Status: 500, Message: "broken"}, Tag: 3},
	}})
	ex.Expect(t, plugintest.ActionWrite, wait)
	ft.c <- time.Time{}
	ex.Expect(t, plugintest.ActionWrite, wait)
	for event, want := range map[string]float64{"message": 2, "error": 1} {
		if got := testutil.ToFloat64(p.metrics.events.WithLabelValues(event)); got != want {
			t.Errorf("%s events %v, want %v", event, got, want)
		}
	}
	if got := testutil.ToFloat64(p.metrics.heartbeats); got != 1 {
		t.Errorf("heartbeats %v, want 1", got)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
	if got := testutil.ToFloat64(p.metrics.open); got != 0 {
		t.Fatalf("open streams %v after the stream ended, want 0", got)
	}
}
