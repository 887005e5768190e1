package wire

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// The direct decoders give what the generated types and the From-wire
// conversions give for the same bytes.
func TestDecodeContextMatchesGeneratedCode(t *testing.T) {
	list, _ := structpb.NewList([]any{"a", 1.5})
	cases := map[string]*pluginv1.Context{
		"empty":    {},
		"api only": {ApiId: "orders"},
		"full": {
			ApiId: "orders",
			Request: &pluginv1.Request{
				Id: "r1", TransactionId: "t1", ClientIdentifier: "c1", Method: "POST", Path: "/orders/eu",
				ContextPath: "/orders", PathInfo: "/eu", RemoteAddress: "127.0.0.1", Body: []byte("{\"a\":1}"), Websocket: true,
				Headers:    []*pluginv1.Header{{Name: "X-Key", Values: []string{"k1", "k2"}}, {Name: "Accept", Values: []string{"*/*"}}, {Name: "X-Key", Values: []string{"k3"}}},
				Params:     []*pluginv1.Header{{Name: "limit", Values: []string{"5"}}},
				PathParams: map[string]string{"region": "eu", "empty": ""},
			},
			Attributes: map[string]*structpb.Value{
				"s": structpb.NewStringValue("v"), "n": structpb.NewNumberValue(3), "f": structpb.NewNumberValue(2.5),
				"b": structpb.NewBoolValue(true), "null": structpb.NewNullValue(), "list": structpb.NewListValue(list),
			},
		},
		"request without headers": {Request: &pluginv1.Request{Method: "GET"}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := proto.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var w pluginv1.Context
			if err := proto.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
			want := ContextFromWire(&w)
			got, err := DecodeContext(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeContext:\n got %#v\n     %#v\nwant %#v\n     %#v", got, got.Request, want, want.Request)
			}

			open, err := proto.Marshal(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{
				Open: &pluginv1.Connect_Open{InstanceId: "i-" + name, Context: in, SubscriptionJson: []byte(`{"s":"` + name + `"}`)}}})
			if err != nil {
				t.Fatal(err)
			}
			o, ok, err := DecodeOpen(open)
			if err != nil || !ok {
				t.Fatalf("DecodeOpen: %v %v", ok, err)
			}
			if o.InstanceID != "i-"+name || !reflect.DeepEqual(o.Context, want) || string(o.Subscription) != `{"s":"`+name+`"}` {
				t.Fatalf("DecodeOpen: %q %#v, want %#v", o.InstanceID, o.Context, want)
			}
		})
	}
	deliver, _ := proto.Marshal(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Ready{Ready: &pluginv1.Connect_Ready{Cursor: "c"}}})
	if _, ok, err := DecodeOpen(deliver); ok || err != nil {
		t.Fatalf("DecodeOpen of a Ready: ok=%v err=%v, want not ok", ok, err)
	}
	if _, err := DecodeContext([]byte{0x12, 0x05, 0x0a}); err == nil {
		t.Fatal("a truncated context decoded without error")
	}
}
