package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/sluice-gw/sluice/core/internal/fakeplugin"
	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// thenRespondHandler is http-post as the sdk's PublishThenFinish sends it:
// one action, and the entrypoint is done.
func thenRespondHandler(c *fakeplugin.Conn) error {
	return c.Send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Publish{Publish: &pluginv1.Connect_PublishBatch{
		BatchId:     1,
		Messages:    []*pluginv1.Message{{Content: c.Open.GetContext().GetRequest().GetBody()}},
		ThenRespond: &pluginv1.Connect_Respond{Status: 202},
	}}})
}

func TestPublishThenRespond(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"post": thenRespondHandler})
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-post", "post", matchPost)},
		Endpoint:    e.endpoint(),
	})
	resp, body := do(t, "POST", e.base+"/demo", "hello")
	if resp.StatusCode != 202 || body != "" {
		t.Fatalf("POST: %d %q, want 202 with an empty body", resp.StatusCode, body)
	}
	if _, published := e.end.Snapshot(); len(published) != 1 || string(published[0].GetMessages()[0].GetContent()) != "hello" {
		t.Fatalf("published %v", published)
	}

	// A failing publish is answered by the core in the failure format: JSON
	// when accepted, 503 for a failure without a status of its own, and
	// the connection closed as for any server error.
	e.endPlugin.SetDown(true)
	defer e.endPlugin.SetDown(false)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST /demo HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Length: 4\r\n\r\nlost")); err != nil {
		t.Fatal(err)
	}
	raw, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(raw.Body)
	if raw.StatusCode != 503 || raw.Header.Get("Content-Type") != "application/json" || !raw.Close ||
		string(b) != `{"message":"plugin fake-endpoint is unavailable","http_status_code":503}` {
		t.Fatalf("POST with the endpoint down: %d %v close=%v %q", raw.StatusCode, raw.Header, raw.Close, b)
	}
}

// wsLikeHandler publishes three batches one after another, as a WebSocket
// publisher does, each once the previous one was published.
func wsLikeHandler(c *fakeplugin.Conn) error {
	for id := uint64(1); id <= 3; id++ {
		if err := c.Publish(id, &pluginv1.Message{Content: []byte{byte('0' + id)}}); err != nil {
			return err
		}
		for ev := range c.Events {
			if p := ev.GetPublished(); p != nil && p.GetBatchId() == id {
				break
			}
		}
	}
	if err := c.Respond(200, nil); err != nil {
		return err
	}
	return c.Finish(&pluginv1.Connect_Finish{})
}

// An exchange's first batch goes on the shared Publish stream; later ones on
// a call of the exchange's own, where only the first request carries the
// context and the others are flagged same_context.
func TestLaterBatchesShareTheirContext(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"ws": wsLikeHandler})
	e.endPlugin = fakeplugin.StartWith(t, "fake-endpoint", []string{tunnel.FeatureSameContext},
		func(s *grpc.Server) { pluginv1.RegisterEndpointServer(s, e.end) })
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-post", "ws", matchPost)},
		Endpoint:    e.endpoint(),
		Flows:       flow.Flows{},
	})
	if resp, body := do(t, "POST", e.base+"/demo", "x"); resp.StatusCode != 200 {
		t.Fatalf("exchange: %d %q", resp.StatusCode, body)
	}
	streams, published := e.end.Snapshot()
	if streams != 2 || len(published) != 3 {
		t.Fatalf("%d Publish streams, %d batches; want the shared stream and the exchange's own, 3 batches", streams, len(published))
	}
	for i, b := range published {
		hasCtx := b.GetContext().GetRequest().GetMethod() == "POST"
		wantCtx, wantSame := i < 2, i == 2
		if hasCtx != wantCtx || b.GetSameContext() != wantSame || string(b.GetMessages()[0].GetContent()) != string(rune('1'+i)) {
			t.Fatalf("batch %d: context %v same_context %v content %q; want context %v same_context %v",
				i, hasCtx, b.GetSameContext(), b.GetMessages()[0].GetContent(), wantCtx, wantSame)
		}
	}
}

// An endpoint that does not read the body gets the context without it; the
// entrypoint still gets it.
func TestBodyLeftOutForEndpointsThatDoNotReadIt(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"post": thenRespondHandler})
	ep := e.endpoint()
	ep.OmitBody = true
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-post", "post", matchPost)},
		Endpoint:    ep,
	})
	if resp, body := do(t, "POST", e.base+"/demo", "the body"); resp.StatusCode != 202 {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	_, published := e.end.Snapshot()
	if len(published) != 1 || string(published[0].GetMessages()[0].GetContent()) != "the body" {
		t.Fatalf("published %v", published)
	}
	if req := published[0].GetContext().GetRequest(); len(req.GetBody()) != 0 || req.GetMethod() != "POST" {
		t.Fatalf("the endpoint's context: body %q, method %q; want no body, the rest kept", req.GetBody(), req.GetMethod())
	}
}
