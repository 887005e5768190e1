package plugintest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/sluice-gw/sluice/sdk/policy"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// wait bounds every wait; a passing test never comes near it.
const wait = 10 * time.Second

func ctxWith(headers gateway.Headers) *gateway.Context {
	return &gateway.Context{
		APIID:      "demo",
		Request:    &gateway.Request{ID: "r1", Method: "GET", Path: "/demo", ClientIdentifier: "client-1", Headers: headers},
		Attributes: map[string]any{"count": int64(3)},
	}
}

func TestMetadataAndLifecycle(t *testing.T) {
	ep := newEcho()
	h := plugintest.Start(t, ep)

	md := h.Metadata(t)
	want := lifecycle.Metadata{Kind: lifecycle.KindEndpoint, Name: "endpoint-fake", Version: "0.0.1", Types: []lifecycle.TypeInfo{{
		Name:   "echo",
		Schema: schema.Schema{Attributes: []schema.Attribute{{Name: "prefix", Type: schema.String, Default: "p"}}},
		QoS:    []string{"auto"},
		Modes:  []string{"publish", "subscribe"},
	}}}
	if !reflect.DeepEqual(md, want) {
		t.Fatalf("metadata:\n got %#v\nwant %#v", md, want)
	}

	tests := map[string]struct {
		config any
		want   lifecycle.Diagnostics
	}{
		"valid struct":   {fakeConfig{Prefix: "x"}, nil},
		"valid map":      {map[string]any{"prefix": "x"}, nil},
		"raw bytes":      {[]byte(`{"prefix":"x"}`), nil},
		"raw message":    {json.RawMessage(`{"prefix":"bad"}`), lifecycle.Diagnostics{{Severity: lifecycle.Error, Summary: "prefix is bad", Detail: "use another", Path: []string{"prefix"}}}},
		"nil is a block": {nil, lifecycle.Diagnostics{{Severity: lifecycle.Warning, Summary: "prefix is empty"}}},
		"invalid json":   {[]byte(`{`), lifecycle.Diagnostics{{Severity: lifecycle.Error, Summary: "invalid JSON: unexpected end of JSON input"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := h.Validate(t, "echo", tc.config); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Validate = %#v, want %#v", got, tc.want)
			}
		})
	}
	if d := h.Validate(t, "other", nil); !d.HasErrors() {
		t.Fatal("unknown type validated")
	}
	if d := h.Configure(t, "i1", "echo", fakeConfig{Prefix: "bad"}); !d.HasErrors() {
		t.Fatal("bad config accepted")
	}
	if d := h.ConfigureAPI(t, "i1", "echo", "orders", fakeConfig{Prefix: "x"}); d.HasErrors() {
		t.Fatal(d.Err())
	}
	if c, _ := ep.conf("i1"); c != "orders/x" {
		t.Fatalf("configured %q, want orders/x", c)
	}
	h.Unconfigure(t, "i1")
	if _, ok := ep.conf("i1"); ok {
		t.Fatal("instance still configured")
	}
	if err := h.Drain(t, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ep.drained:
	default:
		t.Fatal("Drain not called")
	}
}

func TestDrainWithoutDrainer(t *testing.T) {
	h := plugintest.Start(t, newPolicy())
	if err := h.Drain(t, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPublishAndSubscribe(t *testing.T) {
	ep := newEcho()
	h := plugintest.Start(t, ep)
	h.Configure(t, "i1", "echo", fakeConfig{Prefix: "x"})

	msg := &gateway.Message{
		Content:  []byte("hello"),
		Headers:  gateway.Headers{"X-A": {"1", "2"}},
		Metadata: map[string]any{"offset": int64(1 << 40), "partition": int64(2)},
	}
	if f := h.Publish(t, "i1", ctxWith(nil), msg, &gateway.Message{Content: []byte("world")}); f != nil {
		t.Fatalf("Publish: %v", f)
	}

	sub := h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: "i1", Context: ctxWith(nil), QoS: "auto"})
	if got := sub.Ready(t, wait); got != "cursor-2-client-1" {
		t.Fatalf("cursor = %q", got)
	}
	batch := sub.Next(t, wait)
	want := []*gateway.Message{
		{ID: "0", Content: []byte("hello"), Headers: gateway.Headers{"X-A": {"1", "2"}},
			Metadata: map[string]any{"offset": int64(1 << 40), "partition": int64(2)}, Attributes: map[string]any{"api": "demo"}, Tag: 1},
		{ID: "1", Content: []byte("world"), Attributes: map[string]any{"api": "demo"}, Tag: 2},
	}
	if !reflect.DeepEqual(batch, want) {
		t.Fatalf("batch:\n got %#v\nwant %#v", batch, want)
	}

	sub.Ack(t, 2)
	if tag := <-ep.acks; tag != 2 {
		t.Fatalf("ack = %d, want 2", tag)
	}
	sub.Ack(t, 5)
	if tag := <-ep.acks; tag != 5 {
		t.Fatalf("ack = %d, want 5", tag)
	}

	sub.Close()
	if got := <-ep.subscribeDone; got != "ctx" {
		t.Fatalf("subscribe ended by %q, want ctx", got)
	}
	if b := sub.Next(t, wait); b != nil {
		t.Fatalf("batch after close: %v", b)
	}
	if f := sub.Wait(t, wait); f != nil {
		t.Fatalf("failure after close: %v", f)
	}
	sub.Close() // idempotent
	sub.Ack(t, 6)
}

func TestPublishFailures(t *testing.T) {
	h := plugintest.Start(t, newEcho())
	h.Configure(t, "i1", "echo", fakeConfig{Prefix: "x"})
	tests := map[string]struct {
		instance string
		content  string
		want     *gateway.Failure
	}{
		"failure as is": {"nope", "x", &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID", Message: "unknown instance nope", RequestLevel: true}},
		"other error":   {"i1", "boom", &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_UNKNOWN_ERROR", Message: "Endpoint unknown error"}},
		"success":       {"i1", "ok", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := h.Publish(t, tc.instance, ctxWith(nil), &gateway.Message{Content: []byte(tc.content)})
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestPublishMultiplexesBatches(t *testing.T) {
	ep := newEcho()
	h := plugintest.Start(t, ep)
	h.Configure(t, "i1", "echo", fakeConfig{Prefix: "x"})

	// A blocked batch does not hold up the others on the shared stream.
	blocked := make(chan *gateway.Failure)
	go func() {
		blocked <- h.Publish(t, "i1", ctxWith(nil), &gateway.Message{Content: []byte("block")})
	}()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f := h.Publish(t, "i1", ctxWith(nil), &gateway.Message{Content: []byte(fmt.Sprint(i))}); f != nil {
				t.Errorf("publish %d: %v", i, f)
			}
		}()
	}
	wg.Wait()
	close(ep.block)
	if f := <-blocked; f != nil {
		t.Fatalf("blocked publish: %v", f)
	}
	ep.logMu.Lock()
	defer ep.logMu.Unlock()
	if len(ep.log) != 21 || string(ep.log[20].Content) != "block" {
		t.Fatalf("log has %d messages, the last %q; want 21 ending with the blocked one", len(ep.log), ep.log[len(ep.log)-1].Content)
	}
}

func TestSubscribeFailures(t *testing.T) {
	h := plugintest.Start(t, newEcho())
	tests := map[string]struct {
		qos  string
		want *gateway.Failure
	}{
		"failure round trip": {"fail", &gateway.Failure{Status: 503, Key: "FAILURE_ENDPOINT_UNAVAILABLE", Message: "no last", Retriable: true}},
		"other error":        {"error", &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_UNKNOWN_ERROR", Message: "Endpoint unknown error"}},
		"clean end":          {"end", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sub := h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: "i1", Context: ctxWith(nil), QoS: tc.qos, LastID: "last"})
			if got := sub.Wait(t, wait); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Wait = %#v, want %#v", got, tc.want)
			}
			if got := sub.Failure(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Failure = %#v, want %#v", got, tc.want)
			}
			if b := sub.Next(t, wait); b != nil {
				t.Fatalf("Next after the end = %v", b)
			}
		})
	}
}

func TestSubscribeHalfCloseEndsSubscription(t *testing.T) {
	ep := newEcho()
	h := plugintest.Start(t, ep)
	stream, err := h.Clients.Endpoint.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	start := &pluginv1.Subscribe_Start{InstanceId: "i1", Context: &pluginv1.Context{Request: &pluginv1.Request{}}}
	if err := stream.Send(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Start{Start: start}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if got := <-ep.subscribeDone; got != "acks closed" && got != "ctx" {
		t.Fatalf("subscribe ended by %q", got)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatalf("stream ended with %v, want a clean end", err)
			}
			return
		}
	}
}

func TestProtocolViolations(t *testing.T) {
	t.Run("subscribe without start", func(t *testing.T) {
		h := plugintest.Start(t, newEcho())
		stream, err := h.Clients.Endpoint.Subscribe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Ack{Ack: &pluginv1.Subscribe_Ack{}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
	})
	t.Run("connect without open", func(t *testing.T) {
		h := plugintest.Start(t, newSSE())
		stream, err := h.Clients.Entrypoint.Connect(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		end := &pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{}}}
		if err := stream.Send(end); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
	})
	t.Run("unserved kind", func(t *testing.T) {
		h := plugintest.Start(t, newSSE())
		_, err := h.Clients.Policy.OnRequest(t.Context(), &pluginv1.OnRequest_Request{})
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("err = %v, want Unimplemented", err)
		}
	})
}

func TestConnectStreaming(t *testing.T) {
	ep := newSSE()
	h := plugintest.Start(t, ep)
	x := h.Connect(t, "i1", ctxWith(gateway.Headers{"Last-Event-ID": {"demo@0#4"}}))

	a := x.Expect(t, plugintest.ActionRespond, wait)
	wantHeaders := gateway.Headers{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if a.Respond.Status != 200 || !reflect.DeepEqual(a.Respond.Headers, wantHeaders) || a.Respond.Body != nil {
		t.Fatalf("respond = %#v", a.Respond)
	}
	a = x.Expect(t, plugintest.ActionSubscribe, wait)
	if a.Subscribe != (plugintest.SubscribeAction{QoS: "at-least-once", LastID: "demo@0#4", Limit: 5}) {
		t.Fatalf("subscribe = %#v", a.Subscribe)
	}

	x.Send(t, entrypoint.Event{Kind: entrypoint.Ready, Cursor: "demo@0#-1"})
	a = x.Expect(t, plugintest.ActionWrite, wait)
	if want := (plugintest.WriteAction{Chunks: [][]byte{[]byte("retry: 1000\n\n"), []byte(": demo@0#-1\n\n")}}); !reflect.DeepEqual(a.Write, want) {
		t.Fatalf("write = %#v", a.Write)
	}

	x.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: []*gateway.Message{
		{ID: "demo@0#5", Content: []byte("a"), Tag: 1},
		{ID: "demo@0#6", Content: []byte("b"), Tag: 2},
	}})
	a = x.Expect(t, plugintest.ActionWrite, wait)
	want := plugintest.WriteAction{Chunks: [][]byte{[]byte("id: demo@0#5\ndata: a\n\n"), []byte("id: demo@0#6\ndata: b\n\n")}, AckThrough: 2}
	if !reflect.DeepEqual(a.Write, want) {
		t.Fatalf("write = %#v, want %#v", a.Write, want)
	}

	x.Send(t, entrypoint.Event{Kind: entrypoint.Inbound, Frames: []entrypoint.Frame{{Data: []byte("hi"), Text: true}}})
	a = x.Expect(t, plugintest.ActionPublish, wait)
	wantPub := plugintest.PublishAction{BatchID: 1, Messages: []*gateway.Message{{Content: []byte("HI"), Headers: gateway.Headers{"Text": {"true"}}}}}
	if !reflect.DeepEqual(a.Publish, wantPub) {
		t.Fatalf("publish = %#v", a.Publish)
	}
	x.Send(t, entrypoint.Event{Kind: entrypoint.Inbound, Frames: []entrypoint.Frame{{Data: []byte("x")}}})
	if a = x.Expect(t, plugintest.ActionPublish, wait); a.Publish.BatchID != 2 {
		t.Fatalf("second batch id = %d, want 2", a.Publish.BatchID)
	}
	x.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: 1})
	if a = x.Expect(t, plugintest.ActionWrite, wait); string(a.Write.Chunks[0]) != "batch 1 ok" || !a.Write.Text {
		t.Fatalf("write = %#v", a.Write)
	}
	x.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: 2, Failure: &gateway.Failure{Status: 500, Key: "K"}})
	if a = x.Expect(t, plugintest.ActionWrite, wait); string(a.Write.Chunks[0]) != "batch 2 failed: K" {
		t.Fatalf("write = %#v", a.Write)
	}

	x.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if got := <-ep.done; got != "end client_gone=true" {
		t.Fatalf("done = %q", got)
	}
	a = x.Expect(t, plugintest.ActionFinish, wait)
	if !reflect.DeepEqual(a.Finish, entrypoint.Finish{CloseCode: 1000, Reason: "Bye"}) {
		t.Fatalf("finish = %#v", a.Finish)
	}
	a = x.Expect(t, plugintest.ActionEnd, wait)
	if a.Err != nil {
		t.Fatalf("end error = %v", a.Err)
	}
	if a = x.Next(t, wait); a.Kind != plugintest.ActionEnd {
		t.Fatalf("after the end: %v", a.Kind)
	}
	x.Send(t, entrypoint.Event{Kind: entrypoint.End}) // dropped
}

func TestConnectEndings(t *testing.T) {
	ep := newSSE()
	h := plugintest.Start(t, ep)

	t.Run("whole response", func(t *testing.T) {
		x := h.Connect(t, "whole", ctxWith(nil))
		a := x.Expect(t, plugintest.ActionRespond, wait)
		want := plugintest.RespondAction{Status: 201, Headers: gateway.Headers{"Content-Type": {"application/json"}}, Body: []byte(`{"path":"/demo"}`)}
		if !reflect.DeepEqual(a.Respond, want) {
			t.Fatalf("respond = %#v", a.Respond)
		}
		x.Expect(t, plugintest.ActionEnd, wait)
	})
	t.Run("failure in status details", func(t *testing.T) {
		x := h.Connect(t, "error", ctxWith(nil))
		a := x.Expect(t, plugintest.ActionEnd, wait)
		st := status.Convert(a.Err)
		if st.Code() != codes.Unknown || len(st.Details()) != 1 {
			t.Fatalf("status = %v, details %v", st, st.Details())
		}
		f, ok := st.Details()[0].(*pluginv1.Failure)
		if !ok || f.GetStatus() != 502 || f.GetKey() != "FAILURE_X" || f.GetMessage() != "cannot" {
			t.Fatalf("detail = %#v", st.Details()[0])
		}
	})
	t.Run("plain error", func(t *testing.T) {
		x := h.Connect(t, "plain-error", ctxWith(nil))
		a := x.Expect(t, plugintest.ActionEnd, wait)
		if st := status.Convert(a.Err); st.Code() != codes.Unknown || st.Message() != "plain" {
			t.Fatalf("status = %v", st)
		}
	})
	t.Run("endpoint failure", func(t *testing.T) {
		x := h.Connect(t, "i1", ctxWith(nil))
		x.Expect(t, plugintest.ActionRespond, wait)
		x.Expect(t, plugintest.ActionSubscribe, wait)
		x.Send(t, entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: &gateway.Failure{Status: 504, Message: "late"}})
		a := x.Expect(t, plugintest.ActionFinish, wait)
		if !reflect.DeepEqual(a.Finish, entrypoint.Finish{Status: 504, Body: []byte("late")}) {
			t.Fatalf("finish = %#v", a.Finish)
		}
	})
	t.Run("events closed", func(t *testing.T) {
		x := h.Connect(t, "i1", ctxWith(nil))
		x.Expect(t, plugintest.ActionRespond, wait)
		x.Expect(t, plugintest.ActionSubscribe, wait)
		x.CloseEvents(t)
		if got := <-ep.done; got != "events closed" {
			t.Fatalf("done = %q", got)
		}
		if a := x.Expect(t, plugintest.ActionFinish, wait); a.Finish.Reason != "events closed" {
			t.Fatalf("finish = %#v", a.Finish)
		}
		x.Expect(t, plugintest.ActionEnd, wait)
	})
	t.Run("closed by the core", func(t *testing.T) {
		x := h.Connect(t, "i1", ctxWith(nil))
		x.Expect(t, plugintest.ActionRespond, wait)
		x.Close()
		// Cancelling the call ends both the context and the events.
		if got := <-ep.done; got != "ctx" && got != "events closed" {
			t.Fatalf("done = %q", got)
		}
		if a := x.Next(t, wait); a.Kind != plugintest.ActionEnd && a.Kind != plugintest.ActionSubscribe {
			t.Fatalf("after close: %v", a.Kind)
		}
		x.Close()
	})
}

func TestPolicyOnRequest(t *testing.T) {
	p := newPolicy()
	h := plugintest.Start(t, p)
	h.Configure(t, "p1", "assign", fakeConfig{Prefix: "pre"})
	tests := map[string]struct {
		headers   gateway.Headers
		wantAttrs map[string]any
		wantFail  *gateway.Failure
	}{
		"sets and removes": {
			gateway.Headers{"X-In": {"v"}},
			map[string]any{"seen": "api/pre:v", "count": int64(3), "remove-me": nil},
			nil,
		},
		"interrupt": {gateway.Headers{"X-Deny": {"1"}}, nil, &gateway.Failure{Status: 401, Key: "DENIED", Message: "denied"}},
		"other error": {
			gateway.Headers{"X-Boom": {"1"}},
			nil,
			&gateway.Failure{Status: 500, Key: "FAILURE_POLICY_UNKNOWN_ERROR", Message: "Policy unknown error"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			attrs, f := h.OnRequest(t, "p1", ctxWith(tc.headers))
			if !reflect.DeepEqual(attrs, tc.wantAttrs) || !reflect.DeepEqual(f, tc.wantFail) {
				t.Fatalf("got %#v, %#v; want %#v, %#v", attrs, f, tc.wantAttrs, tc.wantFail)
			}
		})
	}
}

// TestPolicyOnResponse drives the response phase: the phase, status and
// response headers reach the policy, and its header changes and attributes
// come back.
func TestPolicyOnResponse(t *testing.T) {
	h := plugintest.Start(t, newPolicy())
	h.Configure(t, "p1", "assign", fakeConfig{Prefix: "pre"})
	got := h.OnResponse(t, "p1", ctxWith(nil), 202, gateway.Headers{"X-Up": {"u"}})
	want := &policy.RequestResult{
		SetAttributes: map[string]any{"phase": "response", "upstream": "u"},
		SetHeaders:    gateway.Headers{"X-Status": {"202"}},
		RemoveHeaders: []string{"X-Up"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	// An empty phase is the request phase, as older cores send it.
	req := h.OnPhase(t, &policy.RequestPhase{InstanceID: "p1", Context: ctxWith(gateway.Headers{"X-In": {"v"}})})
	if req.SetAttributes["seen"] != "api/pre:v" || req.SetHeaders != nil {
		t.Fatalf("request phase: got %#v", req)
	}
}

func TestPolicyOnMessages(t *testing.T) {
	h := plugintest.Start(t, newPolicy())
	tests := map[string]struct {
		contents []string
		want     []*gateway.Message
		wantFail *gateway.Failure
	}{
		"transform and drop": {
			[]string{"a", "drop", "b"},
			[]*gateway.Message{
				{Content: []byte("A"), Attributes: map[string]any{"phase": "publish"}},
				{Content: []byte("B"), Attributes: map[string]any{"phase": "publish"}},
			},
			nil,
		},
		"drop all":    {[]string{"drop"}, []*gateway.Message{}, nil},
		"interrupt":   {[]string{"a", "interrupt"}, nil, &gateway.Failure{Status: 412, Key: "PRECONDITION", Message: "no"}},
		"other error": {[]string{"boom"}, nil, &gateway.Failure{Status: 500, Key: "FAILURE_POLICY_UNKNOWN_ERROR", Message: "Policy unknown error"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var in []*gateway.Message
			for _, c := range tc.contents {
				in = append(in, &gateway.Message{Content: []byte(c)})
			}
			got, f := h.OnMessages(t, "p1", "publish", ctxWith(nil), in...)
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(f, tc.wantFail) {
				t.Fatalf("got %#v, %#v; want %#v, %#v", got, f, tc.want, tc.wantFail)
			}
		})
	}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			content := fmt.Sprint("m", i)
			got, f := h.OnMessages(t, "p1", "subscribe", ctxWith(nil), &gateway.Message{Content: []byte(content)})
			if f != nil || len(got) != 1 || string(got[0].Content) != fmt.Sprint("M", i) {
				t.Errorf("batch %d: %v, %v", i, got, f)
			}
		}()
	}
	wg.Wait()
}

func TestActionKindString(t *testing.T) {
	tests := map[plugintest.ActionKind]string{
		plugintest.ActionNone:     "none",
		plugintest.ActionRespond:  "respond",
		plugintest.ActionEnd:      "end",
		plugintest.ActionKind(42): "ActionKind(42)",
		plugintest.ActionKind(-1): "ActionKind(-1)",
	}
	for k, want := range tests {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}

// TestLargeMessages checks that the harness has the production limits, not
// gRPC's 4 MiB default, in both directions.
func TestLargeMessages(t *testing.T) {
	h := plugintest.Start(t, newEcho())
	h.Configure(t, "i1", "echo", fakeConfig{Prefix: "x"})
	big := make([]byte, 8<<20)
	big[len(big)-1] = 'z'
	if f := h.Publish(t, "i1", ctxWith(nil), &gateway.Message{Content: big}); f != nil {
		t.Fatal(f)
	}
	sub := h.Subscribe(t, endpoint.SubscribeRequest{Context: ctxWith(nil), QoS: "auto"})
	sub.Ready(t, wait)
	batch := sub.Next(t, wait)
	if len(batch) != 1 || len(batch[0].Content) != len(big) || batch[0].Content[len(big)-1] != 'z' {
		t.Fatalf("large message did not come back whole")
	}
}

// TestSchemaCheckedBeforeValidate: the harness reports what the core would
// (an unknown attribute, a wrong type, a value outside an enum) without
// calling the plugin, and SkipSchema turns that off.
func TestSchemaCheckedBeforeValidate(t *testing.T) {
	h := plugintest.Start(t, &schemaFake{})
	tests := map[string]struct {
		config any
		want   string
	}{
		"unknown attribute": {map[string]any{"prefx": "x"}, `prefx: Unsupported argument or block "prefx"`},
		"wrong type":        {map[string]any{"mode": 1}, "mode: Incorrect attribute value type"},
		"enum":              {map[string]any{"mode": "c"}, `mode: Invalid value for "mode": "c"; allowed values are "a", "b"`},
		"enum with EL":      {map[string]any{"mode": "{#request.id}"}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := h.Validate(t, "schemaed", tc.config).Err()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	h.SkipSchema = true
	if d := h.Validate(t, "schemaed", map[string]any{"prefx": "x"}); d.HasErrors() {
		t.Fatalf("SkipSchema still checked: %v", d.Err())
	}
}

// schemaFake declares a schema and accepts everything, so only the
// harness's check can report a problem.
type schemaFake struct{}

func (schemaFake) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{Kind: lifecycle.KindPolicy, Name: "schema-fake", Types: []lifecycle.TypeInfo{{
		Name:   "schemaed",
		Phases: []string{"publish"},
		Schema: schema.Schema{Attributes: []schema.Attribute{
			{Name: "prefix", Type: schema.String},
			{Name: "mode", Type: schema.String, Enum: []string{"a", "b"}},
		}},
	}}}
}
func (schemaFake) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}
func (schemaFake) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}
func (schemaFake) Unconfigure(context.Context, string) {}
func (schemaFake) OnRequest(context.Context, *policy.RequestPhase, *policy.RequestResult) error {
	return nil
}
func (schemaFake) OnMessages(_ context.Context, in *policy.MessagesPhase) ([]*gateway.Message, error) {
	return in.Messages, nil
}

// healthyEcho is the echo endpoint with a health check: an instance whose
// prefix is "down" is not ready.
type healthyEcho struct{ *echoEndpoint }

var _ lifecycle.HealthChecker = healthyEcho{}

func (e healthyEcho) CheckHealth(context.Context) []lifecycle.InstanceHealth {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []lifecycle.InstanceHealth
	for id, c := range e.confs {
		h := lifecycle.InstanceHealth{InstanceID: id, Ready: !strings.HasSuffix(c, "/down")}
		if !h.Ready {
			h.Reason = "backend unreachable"
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b lifecycle.InstanceHealth) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return out
}

func TestCheckHealth(t *testing.T) {
	h := plugintest.Start(t, healthyEcho{newEcho()})
	raw, err := h.Clients.Plugin.GetMetadata(context.Background(), &pluginv1.GetMetadata_Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(raw.GetFeatures(), lifecycle.FeatureHealth) {
		t.Fatalf("features %v: want %q", raw.GetFeatures(), lifecycle.FeatureHealth)
	}
	h.Configure(t, "a", "echo", fakeConfig{Prefix: "up"})
	h.Configure(t, "b", "echo", fakeConfig{Prefix: "down"})
	got, err := h.CheckHealth(t)
	if err != nil {
		t.Fatal(err)
	}
	want := []lifecycle.InstanceHealth{{InstanceID: "a", Ready: true}, {InstanceID: "b", Reason: "backend unreachable"}}
	if !slices.Equal(got, want) {
		t.Fatalf("CheckHealth = %+v, want %+v", got, want)
	}
}

// A plugin without lifecycle.HealthChecker neither announces the feature
// nor answers the call: Unimplemented, which the core takes as ready.
func TestCheckHealthUnimplemented(t *testing.T) {
	h := plugintest.Start(t, newEcho())
	raw, err := h.Clients.Plugin.GetMetadata(context.Background(), &pluginv1.GetMetadata_Request{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(raw.GetFeatures(), lifecycle.FeatureHealth) {
		t.Fatalf("features %v: %q announced without a HealthChecker", raw.GetFeatures(), lifecycle.FeatureHealth)
	}
	if _, err := h.CheckHealth(t); status.Code(err) != codes.Unimplemented {
		t.Fatalf("CheckHealth: %v, want Unimplemented", err)
	}
}
