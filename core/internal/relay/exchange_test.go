package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"

	"github.com/sluice-gw/sluice/core/internal/fakeplugin"
	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// waitLimit is an upper bound for things that happen promptly; tests never
// depend on how long anything takes, they only give up eventually.
const waitLimit = 10 * time.Second

// newRelay is a relay whose exchanges have waitLimit to end, shut down when
// the test ends.
func newRelay(t *testing.T) *Relay {
	t.Helper()
	r := New(Options{StopGrace: waitLimit})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_ = r.Shutdown(ctx)
		r.Close()
	})
	return r
}

// An exchange that starts its subscription only after the gateway began
// stopping gets no subscription: its entrypoint, waiting for one, hears
// End{stopping} instead, once, and answers before anything was streamed.
func TestStoppingBeforeSubscribe(t *testing.T) {
	opened := make(chan struct{})
	proceed := make(chan struct{})
	entry := &fakeplugin.Entrypoint{Handlers: map[string]func(*fakeplugin.Conn) error{
		"sse": func(c *fakeplugin.Conn) error {
			close(opened)
			<-proceed
			if err := c.Subscribe("auto"); err != nil {
				return err
			}
			for ev := range c.Events {
				if end := ev.GetEnd(); end != nil {
					if !end.GetStopping() {
						return errors.New("end without stopping")
					}
					return c.Finish(&pluginv1.Connect_Finish{Respond: &pluginv1.Connect_Respond{Status: 503, Body: []byte("Stopping, please reconnect")}})
				}
			}
			return nil
		},
	}}
	subscribed := make(chan struct{}, 1)
	end := &fakeplugin.Endpoint{OnSubscribe: func(pluginv1.Endpoint_SubscribeServer, *pluginv1.Subscribe_Start) error {
		subscribed <- struct{}{}
		return nil
	}}
	entryPlugin := fakeplugin.Start(t, "fake-entrypoint", func(s *grpc.Server) { pluginv1.RegisterEntrypointServer(s, entry) })
	endPlugin := fakeplugin.Start(t, "fake-endpoint", func(s *grpc.Server) { pluginv1.RegisterEndpointServer(s, end) })

	r := newRelay(t)
	x, f := r.Open(Request{
		API:        "demo",
		Entrypoint: &EntrypointInstance{Type: "sse", InstanceID: "sse", Plugin: entryPlugin},
		Endpoint:   &EndpointInstance{Type: "fake", Name: "default", InstanceID: "ep-1", Plugin: endPlugin, QoS: []string{"auto"}},
		Context:    &pluginv1.Context{ApiId: "demo", Request: &pluginv1.Request{Method: "GET", Path: "/demo", ContextPath: "/demo"}},
		Accept:     []string{"text/event-stream"},
		Flows:      &flow.Selection{},
	})
	if f != nil {
		t.Fatalf("open: %v", f)
	}
	<-opened
	// What Shutdown does to every live exchange, done here so that it is
	// certainly done before the entrypoint subscribes.
	r.exMu.Lock()
	var live []*Exchange
	for x := range r.exchanges {
		live = append(live, x)
	}
	r.exMu.Unlock()
	if len(live) != 1 || live[0] != x {
		t.Fatalf("%d live exchanges, want the one opened", len(live))
	}
	x.serverStopping()
	x.serverStopping() // as when both Open and Shutdown see it
	close(proceed)

	var ctx fasthttp.RequestCtx
	x.ServeHTTP(&ctx)
	if st, body := ctx.Response.StatusCode(), string(ctx.Response.Body()); st != 503 || body != "Stopping, please reconnect" {
		t.Fatalf("answer %d %q, want 503 with the entrypoint's body", st, body)
	}
	select {
	case <-subscribed:
		t.Fatal("a subscription started after the gateway began stopping")
	default:
	}
	if ends := entry.Ends(); len(ends) != 1 || !ends[0].GetStopping() {
		t.Fatalf("ends %v, want one End{stopping}", ends)
	}
}

// A WebSocket exchange of a type that grants inbound credit sends client
// frames only while credit is left: spending waits for a grant, and gives
// up when the exchange ends.
func TestInboundCredit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exchange{ep: &EntrypointInstance{InboundCredit: true}, ctx: ctx, inboundMore: make(chan struct{}, 1)}
	x.inbound.Store(10)
	if !x.spendInbound(25) {
		t.Fatal("spending with credit left failed")
	}
	spent := make(chan bool)
	go func() { spent <- x.spendInbound(1) }()
	// A negative check: give the goroutine time to (wrongly) spend.
	select {
	case <-spent:
		t.Fatal("spent with the credit exhausted (-15)")
	case <-time.After(100 * time.Millisecond):
	}
	x.grantInbound(15) // back to 0: still nothing left
	x.grantInbound(1)
	if ok := <-spent; !ok {
		t.Fatal("spending after a grant failed")
	}
	go func() { spent <- x.spendInbound(1) }()
	cancel()
	if ok := <-spent; ok {
		t.Fatal("spending succeeded after the exchange ended")
	}
	// Types without the capability are never held back.
	free := &Exchange{ep: &EntrypointInstance{}, ctx: ctx}
	if !free.spendInbound(1 << 30) {
		t.Fatal("a type without inbound credit was held back")
	}
}
