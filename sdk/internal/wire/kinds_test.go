package wire

import (
	"bytes"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/policy"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

func testContext() *gateway.Context {
	return &gateway.Context{
		APIID:      "demo",
		Request:    &gateway.Request{ID: "r", Method: "GET", Headers: gateway.Headers{"A": {"1"}}},
		Attributes: map[string]any{"k": "v"},
	}
}

func TestPublishRequestRoundTrip(t *testing.T) {
	in := &endpoint.PublishRequest{
		InstanceID: "i1",
		Context:    testContext(),
		Messages:   []*gateway.Message{{Content: []byte("a")}, {Content: []byte("b"), Tag: 2}},
	}
	w, err := PublishRequestToWire(9, in)
	if err != nil {
		t.Fatal(err)
	}
	w = viaBytes(t, w, &pluginv1.Publish_Request{})
	if w.BatchId != 9 {
		t.Fatalf("batch id = %d", w.BatchId)
	}
	if got := PublishRequestFromWire(w); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
	}
	bad := &endpoint.PublishRequest{Messages: []*gateway.Message{{Attributes: map[string]any{"f": func() {}}}}}
	if _, err := PublishRequestToWire(1, bad); err == nil {
		t.Fatal("unencodable message accepted")
	}
	if _, err := PublishRequestToWire(1, &endpoint.PublishRequest{Context: &gateway.Context{Attributes: map[string]any{"f": func() {}}}}); err == nil {
		t.Fatal("unencodable context accepted")
	}
}

func TestSubscribeStartRoundTrip(t *testing.T) {
	in := &endpoint.SubscribeRequest{InstanceID: "i1", Context: testContext(), QoS: endpoint.QoSAtLeastOnce, LastID: "demo@0#3", Limit: 10}
	w, err := SubscribeStartToWire(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &pluginv1.Subscribe_Start{InstanceId: "i1", Qos: "at-least-once", LastId: "demo@0#3", Limit: 10}
	want.Context, _ = ContextToWire(testContext())
	if !proto.Equal(w, want) {
		t.Fatalf("wire = %v, want %v", w, want)
	}
	if got := SubscribeStartFromWire(viaBytes(t, w, &pluginv1.Subscribe_Start{})); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
	}
}

func TestOpenRoundTrip(t *testing.T) {
	in := &entrypoint.Open{InstanceID: "i1", Context: testContext()}
	w, err := OpenToWire(in)
	if err != nil {
		t.Fatal(err)
	}
	open := viaBytes(t, w, &pluginv1.Connect_Request{}).GetOpen()
	if got := OpenFromWire(open); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
	}
	if _, ok := EventFromWire(w); ok {
		t.Fatal("Open decoded as an event")
	}
}

func TestEventRoundTrip(t *testing.T) {
	tests := map[string]entrypoint.Event{
		"inbound":          {Kind: entrypoint.Inbound, Frames: []entrypoint.Frame{{Data: []byte("hi"), Text: true}, {Data: []byte{0, 1}}}},
		"inbound empty":    {Kind: entrypoint.Inbound, Frames: []entrypoint.Frame{}},
		"deliver":          {Kind: entrypoint.Deliver, Messages: []*gateway.Message{{ID: "x", Content: []byte("c"), Tag: 4}}},
		"published ok":     {Kind: entrypoint.Published, BatchID: 3},
		"published failed": {Kind: entrypoint.Published, BatchID: 4, Failure: &gateway.Failure{Status: 500, Key: "K", Message: "m"}},
		"ready":            {Kind: entrypoint.Ready, Cursor: "demo@0#-1"},
		"endpoint failure": {Kind: entrypoint.EndpointFailure, Failure: &gateway.Failure{Status: 500, Key: "K", RequestLevel: true}},
		"end client gone":  {Kind: entrypoint.End, ClientGone: true},
		"end stopping":     {Kind: entrypoint.End, Stopping: true},
		"end":              {Kind: entrypoint.End},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := EventToWire(in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := EventFromWire(viaBytes(t, w, &pluginv1.Connect_Request{}))
			if !ok {
				t.Fatal("not decoded as an event")
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
			}
		})
	}
}

// TestEndBytes pins the encoding of End: Connect.Request.end is field 7,
// client_gone field 1 and stopping field 2 of Connect.End. A core and a
// plugin built from different revisions must agree on these bytes.
func TestEndBytes(t *testing.T) {
	tests := map[string]struct {
		ev   entrypoint.Event
		wire []byte
	}{
		"end":            {entrypoint.Event{Kind: entrypoint.End}, []byte{0x3a, 0x00}},
		"client gone":    {entrypoint.Event{Kind: entrypoint.End, ClientGone: true}, []byte{0x3a, 0x02, 0x08, 0x01}},
		"stopping":       {entrypoint.Event{Kind: entrypoint.End, Stopping: true}, []byte{0x3a, 0x02, 0x10, 0x01}},
		"gone, stopping": {entrypoint.Event{Kind: entrypoint.End, ClientGone: true, Stopping: true}, []byte{0x3a, 0x04, 0x08, 0x01, 0x10, 0x01}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := EventToWire(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, tt.wire) {
				t.Fatalf("encoded % x, want % x", b, tt.wire)
			}
			var back pluginv1.Connect_Request
			if err := proto.Unmarshal(tt.wire, &back); err != nil {
				t.Fatal(err)
			}
			got, ok := EventFromWire(&back)
			if !ok || !reflect.DeepEqual(got, tt.ev) {
				t.Fatalf("decoded %#v, %v; want %#v", got, ok, tt.ev)
			}
		})
	}
}

func TestEventErrors(t *testing.T) {
	tests := map[string]entrypoint.Event{
		"zero kind":                {},
		"unknown kind":             {Kind: 99},
		"failure without failure":  {Kind: entrypoint.EndpointFailure},
		"unencodable message attr": {Kind: entrypoint.Deliver, Messages: []*gateway.Message{{Attributes: map[string]any{"f": func() {}}}}},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := EventToWire(in); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, ok := EventFromWire(&pluginv1.Connect_Request{}); ok {
		t.Fatal("empty request decoded as an event")
	}
	ev, ok := EventFromWire(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_EndpointFailure{}})
	if !ok || ev.Failure == nil {
		t.Fatalf("endpoint failure without body = %#v, %v; want a non-nil failure", ev, ok)
	}
}

func TestFinishRoundTrip(t *testing.T) {
	tests := map[string]struct {
		in   entrypoint.Finish
		wire *pluginv1.Connect_Finish
	}{
		"websocket close": {
			entrypoint.Finish{CloseCode: 1000, Reason: "Bye"},
			&pluginv1.Connect_Finish{CloseCode: 1000, Reason: "Bye"},
		},
		"final response": {
			entrypoint.Finish{Status: 400, Headers: gateway.Headers{"Content-Type": {"application/json"}}, Body: []byte(`{"message":"x"}`)},
			&pluginv1.Connect_Finish{Respond: &pluginv1.Connect_Respond{
				Status:  400,
				Headers: []*pluginv1.Header{{Name: "Content-Type", Values: []string{"application/json"}}},
				Body:    []byte(`{"message":"x"}`),
			}},
		},
		"nothing": {entrypoint.Finish{}, &pluginv1.Connect_Finish{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := FinishToWire(tc.in)
			if !proto.Equal(w, tc.wire) {
				t.Fatalf("wire = %v, want %v", w, tc.wire)
			}
			if got := FinishFromWire(viaBytes(t, w, &pluginv1.Connect_Finish{})); !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip = %#v, want %#v", got, tc.in)
			}
		})
	}
}

func TestPolicyRoundTrips(t *testing.T) {
	for name, phase := range map[string]*policy.RequestPhase{
		"request": {InstanceID: "p1", Phase: policy.PhaseRequest, Context: testContext()},
		"response": {InstanceID: "p1", Phase: policy.PhaseResponse, Context: testContext(),
			ResponseStatus: 202, ResponseHeaders: gateway.Headers{"X-A": {"1", "2"}}},
	} {
		w, err := RequestPhaseToWire(phase)
		if err != nil {
			t.Fatal(err)
		}
		if got := RequestPhaseFromWire(viaBytes(t, w, &pluginv1.OnRequest_Request{})); !reflect.DeepEqual(got, phase) {
			t.Fatalf("%s phase: got %#v, want %#v", name, got, phase)
		}
	}
	// A core before v1.3 sends no phase: it is the request phase.
	if got := RequestPhaseFromWire(&pluginv1.OnRequest_Request{InstanceId: "p1"}); got.Phase != policy.PhaseRequest {
		t.Fatalf("empty phase read as %q", got.Phase)
	}

	result := &policy.RequestResult{
		SetAttributes: map[string]any{"set": "v", "remove": nil, "n": int64(2)},
		Interrupt:     &gateway.Failure{Status: 412, Key: "K"},
		SetHeaders:    gateway.Headers{"X-Set": {"a", "b"}},
		RemoveHeaders: []string{"X-Gone"},
	}
	rw, err := RequestResultToWire(result)
	if err != nil {
		t.Fatal(err)
	}
	if got := RequestResultFromWire(viaBytes(t, rw, &pluginv1.OnRequest_Response{})); !reflect.DeepEqual(got, result) {
		t.Fatalf("request result: got %#v, want %#v", got, result)
	}
	if _, err := RequestResultToWire(&policy.RequestResult{SetAttributes: map[string]any{"f": func() {}}}); err == nil {
		t.Fatal("unencodable attribute accepted")
	}

	mp := &policy.MessagesPhase{InstanceID: "p1", Phase: policy.PhasePublish, Context: testContext(), Messages: []*gateway.Message{{Content: []byte("m")}}}
	mw, err := MessagesPhaseToWire(5, mp)
	if err != nil {
		t.Fatal(err)
	}
	mw = viaBytes(t, mw, &pluginv1.OnMessages_Request{})
	if mw.BatchId != 5 {
		t.Fatalf("batch id = %d", mw.BatchId)
	}
	if got := MessagesPhaseFromWire(mw); !reflect.DeepEqual(got, mp) {
		t.Fatalf("messages phase: got %#v, want %#v", got, mp)
	}
}
