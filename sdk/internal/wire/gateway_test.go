package wire

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/gateway"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// viaBytes marshals and unmarshals m, as a stream does.
func viaBytes[M proto.Message](t *testing.T, m M, into M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func TestHeadersToWire(t *testing.T) {
	tests := map[string]struct {
		in   gateway.Headers
		want []*pluginv1.Header
	}{
		"nil":   {nil, nil},
		"empty": {gateway.Headers{}, nil},
		"sorted by name, values in order": {
			gateway.Headers{"X-B": {"2", "1"}, "Accept": {"text/event-stream"}, "X-A": {"z", "a", "m"}},
			[]*pluginv1.Header{
				{Name: "Accept", Values: []string{"text/event-stream"}},
				{Name: "X-A", Values: []string{"z", "a", "m"}},
				{Name: "X-B", Values: []string{"2", "1"}},
			},
		},
		"case is kept": {
			gateway.Headers{"x-lower": {"v"}, "X-Upper": {"w"}},
			[]*pluginv1.Header{{Name: "X-Upper", Values: []string{"w"}}, {Name: "x-lower", Values: []string{"v"}}},
		},
		"empty values": {gateway.Headers{"X": nil}, []*pluginv1.Header{{Name: "X"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := HeadersToWire(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d headers, want %d: %v", len(got), len(tc.want), got)
			}
			for i := range got {
				if !proto.Equal(got[i], tc.want[i]) {
					t.Fatalf("header %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestHeadersFromWire(t *testing.T) {
	tests := map[string]struct {
		in   []*pluginv1.Header
		want gateway.Headers
	}{
		"nil": {nil, nil},
		"one": {[]*pluginv1.Header{{Name: "A", Values: []string{"1", "2"}}}, gateway.Headers{"A": {"1", "2"}}},
		"name twice merges in order": {
			[]*pluginv1.Header{{Name: "A", Values: []string{"1"}}, {Name: "B"}, {Name: "A", Values: []string{"2", "3"}}},
			gateway.Headers{"A": {"1", "2", "3"}, "B": nil},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := HeadersFromWire(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestHeadersFromWireDoesNotWriteIntoTheWire(t *testing.T) {
	first := make([]string, 1, 4)
	first[0] = "1"
	in := []*pluginv1.Header{{Name: "A", Values: first}, {Name: "A", Values: []string{"2"}}}
	_ = HeadersFromWire(in)
	if got := first[:2]; got[1] != "" {
		t.Fatalf("merging wrote into the first header's spare capacity: %q", got)
	}
}

func TestFailureRoundTrip(t *testing.T) {
	tests := map[string]struct {
		in   *gateway.Failure
		wire *pluginv1.Failure
	}{
		"nil": {nil, nil},
		"full": {
			&gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID", Message: "Endpoint configuration invalid", Retriable: true, RequestLevel: true},
			&pluginv1.Failure{Status: 500, Key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID", Message: "Endpoint configuration invalid", Retriable: true, RequestLevel: true},
		},
		"zero": {&gateway.Failure{}, &pluginv1.Failure{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := FailureToWire(tc.in)
			if !proto.Equal(w, tc.wire) {
				t.Fatalf("wire = %v, want %v", w, tc.wire)
			}
			if got := FailureFromWire(w); !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip = %#v, want %#v", got, tc.in)
			}
		})
	}
}

func TestMessagesToWire(t *testing.T) {
	msgs := []*gateway.Message{
		{
			ID:         "demo@0#41",
			Content:    []byte("hello"),
			Headers:    gateway.Headers{"b": {"2"}, "a": {"1", "0"}},
			Metadata:   map[string]any{"topic": "demo", "partition": int32(0), "offset": int64(41)},
			Attributes: map[string]any{"gravitee.attribute.kafka.recordKey": "k"},
			Tag:        7,
		},
		nil,
		{Error: &gateway.Failure{Status: 500, Key: "K", Message: "m"}},
	}
	got, err := MessagesToWire(msgs)
	if err != nil {
		t.Fatal(err)
	}
	want := []*pluginv1.Message{
		{
			Id:      "demo@0#41",
			Content: []byte("hello"),
			Headers: []*pluginv1.Header{{Name: "a", Values: []string{"1", "0"}}, {Name: "b", Values: []string{"2"}}},
			Metadata: map[string]*structpb.Value{
				"topic":     structpb.NewStringValue("demo"),
				"partition": structpb.NewNumberValue(0),
				"offset":    structpb.NewNumberValue(41),
			},
			Attributes: map[string]*structpb.Value{"gravitee.attribute.kafka.recordKey": structpb.NewStringValue("k")},
			Tag:        7,
		},
		{Error: &pluginv1.Failure{Status: 500, Key: "K", Message: "m"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d (nil skipped)", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("message %d = %v, want %v", i, got[i], want[i])
		}
	}
	// Appending to one message's headers must not touch the next one's.
	got[0].Headers = append(got[0].Headers, &pluginv1.Header{Name: "z"})
	if len(got[1].Headers) != 0 {
		t.Fatalf("headers of message 1 changed: %v", got[1].Headers)
	}
}

func TestMessagesToWireError(t *testing.T) {
	_, err := MessagesToWire([]*gateway.Message{{}, {Attributes: map[string]any{"f": func() {}}}})
	if err == nil || err.Error() != "message 1: attribute f: cannot encode func(): json: unsupported type: func()" {
		t.Fatalf("err = %v", err)
	}
	_, err = MessageToWire(&gateway.Message{Metadata: map[string]any{"f": func() {}}})
	if err == nil || err.Error() != "metadata f: cannot encode func(): json: unsupported type: func()" {
		t.Fatalf("err = %v", err)
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	tests := map[string][]*gateway.Message{
		"empty batch": nil,
		"full": {{
			ID:         "demo@0#41",
			Content:    []byte("hello"),
			Headers:    gateway.Headers{"X-Key": {"k1", "k2"}, "Content-Type": {"text/plain"}},
			Metadata:   map[string]any{"topic": "demo", "partition": int64(0), "offset": int64(41), "sourceTimestamp": int64(1715000000000), "key": "k"},
			Attributes: map[string]any{"n": 1.5, "list": []any{"a"}, "nested": map[string]any{"b": true}},
			Tag:        3,
		}},
		"many": {
			{Content: []byte("a"), Tag: 1},
			{Content: []byte("b"), Tag: 2, Headers: gateway.Headers{"h": {"v"}}},
			{Error: &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_UNKNOWN_ERROR", Message: "Endpoint unknown error"}},
		},
		"tombstone": {{Metadata: map[string]any{"tombstone": true}}},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := MessagesToWire(in)
			if err != nil {
				t.Fatal(err)
			}
			batch := viaBytes(t, &pluginv1.Subscribe_Batch{Messages: w}, &pluginv1.Subscribe_Batch{})
			if got := MessagesFromWire(batch.GetMessages()); !reflect.DeepEqual(got, in) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
			}
			for i, m := range in {
				one, err := MessageToWire(m)
				if err != nil {
					t.Fatal(err)
				}
				if got := MessageFromWire(one); !reflect.DeepEqual(got, m) {
					t.Fatalf("message %d round trip: got %#v, want %#v", i, got, m)
				}
			}
		})
	}
}

func TestMessageNil(t *testing.T) {
	if w, err := MessageToWire(nil); w != nil || err != nil {
		t.Fatalf("MessageToWire(nil) = %v, %v", w, err)
	}
	if m := MessageFromWire(nil); m != nil {
		t.Fatalf("MessageFromWire(nil) = %v", m)
	}
	if got := MessagesFromWire([]*pluginv1.Message{nil, {Id: "x"}}); len(got) != 1 || got[0].ID != "x" {
		t.Fatalf("nil entries not skipped: %v", got)
	}
}

func TestContextRoundTrip(t *testing.T) {
	tests := map[string]*gateway.Context{
		"empty": {},
		"full": {
			APIID: "demo",
			Request: &gateway.Request{
				ID:               "req-1",
				TransactionID:    "tx-1",
				ClientIdentifier: "client",
				Method:           "POST",
				Path:             "/demo/orders/7",
				ContextPath:      "/demo",
				PathInfo:         "/orders/7",
				Headers:          gateway.Headers{"Accept": {"text/event-stream"}, "X-Multi": {"b", "a"}},
				Params:           map[string][]string{"cursor": {"demo@0#1"}, "limit": {"5"}},
				PathParams:       map[string]string{"id": "7"},
				RemoteAddress:    "127.0.0.1",
				Body:             []byte(`{"a":1}`),
				WebSocket:        true,
			},
			Attributes: map[string]any{"gravitee.attribute.kafka.topics": "demo", "n": int64(3)},
		},
		"request without maps": {Request: &gateway.Request{Method: "GET"}},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			w, err := ContextToWire(in)
			if err != nil {
				t.Fatal(err)
			}
			got := ContextFromWire(viaBytes(t, w, &pluginv1.Context{}))
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, in)
			}
		})
	}
}

func TestContextEdges(t *testing.T) {
	if w, err := ContextToWire(nil); w != nil || err != nil {
		t.Fatalf("ContextToWire(nil) = %v, %v", w, err)
	}
	if c := ContextFromWire(nil); c == nil || c.Request != nil || c.Attributes != nil {
		t.Fatalf("ContextFromWire(nil) = %#v, want an empty context", c)
	}
	if _, err := ContextToWire(&gateway.Context{Attributes: map[string]any{"f": func() {}}}); err == nil {
		t.Fatal("unencodable attribute accepted")
	}
	w := RequestToWire(&gateway.Request{Params: map[string][]string{"b": {"2"}, "a": {"1"}}})
	if len(w.Params) != 2 || w.Params[0].Name != "a" || w.Params[1].Name != "b" {
		t.Fatalf("params not sorted: %v", w.Params)
	}
	if RequestToWire(nil) != nil || RequestFromWire(nil) != nil {
		t.Fatal("nil request not nil")
	}
}
