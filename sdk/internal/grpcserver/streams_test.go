package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/sluice-gw/sluice/sdk/policy"
)

const wait = 10 * time.Second

type plugin struct{ md lifecycle.Metadata }

func (p plugin) Metadata() lifecycle.Metadata { return p.md }
func (plugin) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}
func (plugin) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}
func (plugin) Unconfigure(context.Context, string) {}

// leakyEndpoint keeps its Subscription after Subscribe returned, as a buggy
// plugin might, and returns typed-nil failures.
type leakyEndpoint struct {
	plugin
	kept chan endpoint.Subscription
}

func (e *leakyEndpoint) Publish(context.Context, *endpoint.PublishRequest) error {
	var f *gateway.Failure
	return f
}

func (e *leakyEndpoint) Subscribe(_ context.Context, req *endpoint.SubscribeRequest, sub endpoint.Subscription) error {
	if req.QoS == "bad message" {
		return sub.Send([]*gateway.Message{{Attributes: map[string]any{"f": func() {}}}})
	}
	e.kept <- sub
	return nil
}

func TestSubscriptionAfterReturn(t *testing.T) {
	ep := &leakyEndpoint{plugin{lifecycle.Metadata{Name: "leaky", Types: []lifecycle.TypeInfo{{Name: "t"}}}}, make(chan endpoint.Subscription, 1)}
	h := plugintest.Start(t, ep)

	if f := h.Publish(t, "i", nil, &gateway.Message{}); f != nil {
		t.Fatalf("typed-nil failure reported as %v", f)
	}

	sub := h.Subscribe(t, endpoint.SubscribeRequest{QoS: "auto"})
	kept := <-ep.kept
	if f := sub.Wait(t, wait); f != nil {
		t.Fatalf("failure %v", f)
	}
	if err := kept.Ready("x"); err == nil {
		t.Fatal("Ready after Subscribe returned did not fail")
	}
	if err := kept.Send(nil); err == nil {
		t.Fatal("Send after Subscribe returned did not fail")
	}

	// An unencodable message fails Send; the plugin returns that error,
	// which reaches the core as an unknown failure.
	bad := h.Subscribe(t, endpoint.SubscribeRequest{QoS: "bad message"})
	if f := bad.Wait(t, wait); f == nil || f.Key != "FAILURE_ENDPOINT_UNKNOWN_ERROR" {
		t.Fatalf("failure = %v", f)
	}
}

type leakyEntrypoint struct {
	plugin
	kept chan entrypoint.Conn
}

func (e *leakyEntrypoint) Connect(_ context.Context, _ *entrypoint.Open, conn entrypoint.Conn) error {
	e.kept <- conn
	var f *gateway.Failure
	return f
}

func TestConnAfterReturn(t *testing.T) {
	ep := &leakyEntrypoint{
		plugin{lifecycle.Metadata{Name: "leaky", Types: []lifecycle.TypeInfo{{Name: "t", Match: &lifecycle.Match{}}}}},
		make(chan entrypoint.Conn, 1),
	}
	h := plugintest.Start(t, ep)
	x := h.Connect(t, "i", nil)
	kept := <-ep.kept
	if a := x.Expect(t, plugintest.ActionEnd, wait); a.Err != nil {
		t.Fatalf("typed-nil failure ended the call with %v", a.Err)
	}
	calls := map[string]func() error{
		"respond":   func() error { return kept.Respond(200, nil, nil) },
		"write":     func() error { return kept.Write(nil, false, 0) },
		"publish":   func() error { _, err := kept.Publish(nil); return err },
		"subscribe": func() error { return kept.Subscribe("", "", 0) },
		"finish":    func() error { return kept.Finish(entrypoint.Finish{}) },
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s after Connect returned did not fail", name)
		}
	}
	if _, err := kept.Publish([]*gateway.Message{{Metadata: map[string]any{"f": func() {}}}}); err == nil {
		t.Error("unencodable message published")
	}
	for range kept.Events() {
	}
}

type badPolicy struct{ plugin }

func (badPolicy) OnRequest(_ context.Context, _ *policy.RequestPhase, out *policy.RequestResult) error {
	out.SetAttributes = map[string]any{"f": func() {}}
	return nil
}

func (badPolicy) OnMessages(_ context.Context, in *policy.MessagesPhase) ([]*gateway.Message, error) {
	if in.Phase == "typed-nil" {
		var f *gateway.Failure
		return in.Messages, f
	}
	return []*gateway.Message{{Attributes: map[string]any{"f": func() {}}}}, nil
}

func TestPolicyUnencodableResults(t *testing.T) {
	h := plugintest.Start(t, badPolicy{plugin{lifecycle.Metadata{Name: "bad", Types: []lifecycle.TypeInfo{{Name: "t"}}}}})
	if _, f := h.OnRequest(t, "i", nil); f == nil || f.Key != "FAILURE_POLICY_UNKNOWN_ERROR" {
		t.Fatalf("OnRequest failure = %v", f)
	}
	if _, f := h.OnMessages(t, "i", "publish", nil, &gateway.Message{}); f == nil || f.Key != "FAILURE_POLICY_UNKNOWN_ERROR" {
		t.Fatalf("OnMessages failure = %v", f)
	}
	msgs, f := h.OnMessages(t, "i", "typed-nil", nil, &gateway.Message{Content: []byte("kept")})
	if f != nil || len(msgs) != 1 || string(msgs[0].Content) != "kept" {
		t.Fatalf("typed-nil failure: %v, %v", msgs, f)
	}
}
