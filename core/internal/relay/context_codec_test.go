package relay

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// encodeContext writes what proto.Marshal writes, up to the order of map
// entries: both decode to the same message.
func TestEncodeContextMatchesGeneratedCode(t *testing.T) {
	claims, _ := structpb.NewValue(map[string]any{"azp": "mobile", "scope": []any{"read", 1.0}})
	cases := map[string]*pluginv1.Context{
		"empty":    {},
		"api only": {ApiId: "demo"},
		"full": {
			ApiId: "demo",
			Request: &pluginv1.Request{
				Id: "r", TransactionId: "t", ClientIdentifier: "c", Method: "POST", Path: "/demo/eu", ContextPath: "/demo",
				PathInfo: "/eu", RemoteAddress: "127.0.0.1", Body: []byte(strings.Repeat("b", 300)), Websocket: true,
				Headers:    []*pluginv1.Header{{Name: "X-Key", Values: []string{"k1", ""}}, {Name: "Empty"}},
				Params:     []*pluginv1.Header{{Name: "limit", Values: []string{"5"}}},
				PathParams: map[string]string{"region": "eu", "": "empty key"},
			},
			Attributes: map[string]*structpb.Value{
				"s": structpb.NewStringValue("v"), "empty": structpb.NewStringValue(""), "n": structpb.NewNumberValue(-2.5),
				"zero": structpb.NewNumberValue(0), "b": structpb.NewBoolValue(true), "f": structpb.NewBoolValue(false),
				"null": structpb.NewNullValue(), "jwt.claims": claims,
			},
		},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := encodeContext(in)
			if err != nil {
				t.Fatal(err)
			}
			var got pluginv1.Context
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, in) {
				t.Fatalf("decoded %v\nwant %v", &got, in)
			}
			want, _ := proto.Marshal(in)
			if len(b) != len(want) {
				t.Fatalf("%d bytes, proto.Marshal makes %d", len(b), len(want))
			}
		})
	}
}
