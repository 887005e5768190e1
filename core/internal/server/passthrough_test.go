package server

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/core/internal/fakeplugin"
	"github.com/sluice-gw/sluice/core/internal/flow"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// TestRelayWithoutPolicies runs both directions of an exchange through the
// relay that does not decode messages: what the entrypoint publishes reaches
// the endpoint with the exchange's context, what the endpoint sends reaches
// the entrypoint unchanged, and the metrics count data messages only.
func TestRelayWithoutPolicies(t *testing.T) {
	published := []*pluginv1.Message{
		{Content: []byte("p1"), Headers: []*pluginv1.Header{{Name: "X-A", Values: []string{"1", "2"}}}},
		{Content: bytes.Repeat([]byte("p"), 1000), Attributes: map[string]*structpb.Value{"n": structpb.NewNumberValue(2)}},
	}
	delivered := []*pluginv1.Message{
		{Id: "d1", Content: []byte("one"), Tag: 1, Metadata: map[string]*structpb.Value{"topic": structpb.NewStringValue("t")}},
		{Error: &pluginv1.Failure{Status: 500, Key: "FAILURE_X", Message: "boom"}},
		{Id: "d2", Content: []byte("two"), Tag: 2},
	}
	got := make(chan error, 1)
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{
		"relay": func(c *fakeplugin.Conn) error {
			if err := c.Subscribe("auto"); err != nil {
				return err
			}
			if err := c.Publish(7, published...); err != nil {
				return err
			}
			var deliver *pluginv1.Connect_Deliver
			var result *pluginv1.Connect_Published
			for ev := range c.Events {
				if d := ev.GetDeliver(); d != nil {
					deliver = d
				}
				if p := ev.GetPublished(); p != nil {
					result = p
				}
				if deliver != nil && result != nil {
					break
				}
			}
			switch {
			case result == nil || deliver == nil:
				got <- errors.New("the exchange ended before both the result and the delivery")
			case result.GetBatchId() != 7 || result.GetFailure() != nil:
				got <- fmt.Errorf("publish result %v, want batch 7 without failure", result)
			case !proto.Equal(deliver, &pluginv1.Connect_Deliver{Messages: delivered}):
				got <- fmt.Errorf("delivered %v, want %v", deliver, delivered)
			default:
				got <- nil
			}
			return c.Respond(200, []byte("done"))
		},
	})
	e.end.OnSubscribe = func(stream pluginv1.Endpoint_SubscribeServer, _ *pluginv1.Subscribe_Start) error {
		if err := stream.Send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Batch{Batch: &pluginv1.Subscribe_Batch{}}}); err != nil {
			return err
		}
		if err := stream.Send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Batch{Batch: &pluginv1.Subscribe_Batch{Messages: delivered}}}); err != nil {
			return err
		}
		// Until the core half-closes the subscription.
		for {
			if _, err := stream.Recv(); err != nil {
				return nil
			}
		}
	}
	e.deploy(t, &API{
		Name: "relay", ContextPath: "/relay",
		Entrypoints: []*EntrypointInstance{e.entrypoint("get", "relay", matchGet)},
		Endpoint:    e.endpoint(),
	})
	resp, body := do(t, "GET", e.base+"/relay/x", "", "X-Test", "v")
	if resp.StatusCode != 200 || body != "done" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	_, batches := e.end.Snapshot()
	if len(batches) != 1 {
		t.Fatalf("the endpoint got %d batches, want 1", len(batches))
	}
	b := batches[0]
	req := b.GetContext().GetRequest()
	if b.GetInstanceId() != "ep-1" || b.GetContext().GetApiId() != "relay" || req.GetPath() != "/relay/x" || req.GetPathInfo() != "/x" ||
		len(headerValues(req.GetHeaders(), "x-test")) != 1 || b.GetBatchId() == 0 {
		t.Fatalf("publish request: instance %q, batch %d, context %v", b.GetInstanceId(), b.GetBatchId(), b.GetContext())
	}
	if !proto.Equal(&pluginv1.Publish_Request{Messages: b.GetMessages()}, &pluginv1.Publish_Request{Messages: published}) {
		t.Fatalf("published %v, want %v", b.GetMessages(), published)
	}
	if n := counter(t, e.reg, "sluice_messages_published_total", "relay"); n != 2 {
		t.Fatalf("published metric %v, want 2", n)
	}
	if n := counter(t, e.reg, "sluice_messages_delivered_total", "relay"); n != 2 {
		t.Fatalf("delivered metric %v, want 2 (the error message is not a delivery)", n)
	}
}

// TestRelayMalformedBatch checks that a subscribe frame the core cannot read
// fails the subscription like a broken stream, instead of reaching the
// entrypoint.
func TestRelayMalformedBatch(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{
		"relay": func(c *fakeplugin.Conn) error {
			if err := c.Respond(200, nil); err != nil {
				return err
			}
			if err := c.Write(false, 0, []byte("started\n")); err != nil {
				return err
			}
			if err := c.Subscribe("auto"); err != nil {
				return err
			}
			result := "ended\n"
			for ev := range c.Events {
				if ev.GetDeliver() != nil {
					result = "delivered\n"
					break
				}
				if f := ev.GetEndpointFailure(); f != nil {
					result = fmt.Sprintf("failure %d %s\n", f.GetStatus(), f.GetKey())
					break
				}
			}
			if err := c.Write(false, 0, []byte(result)); err != nil {
				return err
			}
			return c.Finish(&pluginv1.Connect_Finish{})
		},
	})
	// An endpoint whose server sends bytes as they are.
	end := &fakeplugin.Endpoint{OnSubscribe: func(stream pluginv1.Endpoint_SubscribeServer, _ *pluginv1.Subscribe_Start) error {
		// A batch whose only message claims more bytes than it has.
		if err := stream.SendMsg(&tunnel.RawParts{{0x12, 3, 0x0a, 5, 0x0a}}); err != nil {
			return err
		}
		// Until the core half-closes the subscription.
		for {
			if _, err := stream.Recv(); err != nil {
				return nil
			}
		}
	}}
	plugin := fakeplugin.Start(t, "raw-endpoint", func(s *grpc.Server) { pluginv1.RegisterEndpointServer(s, end) }, grpc.ForceServerCodecV2(tunnel.Codec))
	e.deploy(t, &API{
		Name: "relay", ContextPath: "/relay",
		Entrypoints: []*EntrypointInstance{e.entrypoint("get", "relay", matchGet)},
		Endpoint:    &EndpointInstance{Type: "fake", Name: "default", InstanceID: "ep-1", Plugin: plugin, QoS: []string{"auto"}},
	})
	resp, body := do(t, "GET", e.base+"/relay", "")
	if want := "started\nfailure 500 " + flow.KeyPluginError + "\n"; resp.StatusCode != 200 || body != want {
		t.Fatalf("GET: %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}
