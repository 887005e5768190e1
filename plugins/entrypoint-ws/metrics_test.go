package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// A socket is counted open while it runs; every delivered message is one
// binary message written, including those before an error message.
func TestMetrics(t *testing.T) {
	p := New()
	p.metrics = newWSMetrics(prometheus.NewRegistry())
	h := plugintest.Start(t, p)
	if d := h.Configure(t, "i", "websocket", map[string]any{"publisher": map[string]any{"enabled": false}}); d.HasErrors() {
		t.Fatal(d.Err())
	}
	ex := h.Connect(t, "i", &gateway.Context{APIID: "api", Request: &gateway.Request{Method: "GET", WebSocket: true}})
	ex.Expect(t, plugintest.ActionSubscribe, wait)
	if got := testutil.ToFloat64(p.metrics.open); got != 1 {
		t.Fatalf("open sockets %v while one runs, want 1", got)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{{Content: []byte("a"), Tag: 1}, {Content: []byte("b"), Tag: 2}}})
	ex.Expect(t, plugintest.ActionWrite, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{Content: []byte("c"), Tag: 3},
		{Error: &gateway.Failure{Status: 500, Message: "broken"}, Tag: 4},
	}})
	ex.Expect(t, plugintest.ActionWrite, wait)
	expectFinish(t, ex, closeInternalError, "broken")
	if got := testutil.ToFloat64(p.metrics.written); got != 3 {
		t.Errorf("messages written %v, want 3", got)
	}
	if got := testutil.ToFloat64(p.metrics.open); got != 0 {
		t.Errorf("open sockets %v after the session ended, want 0", got)
	}
}
