package wire

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/gateway"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// directCases are batches the direct codec must encode and decode exactly
// as the generated types and MessagesToWire / MessagesFromWire do.
func directCases() map[string][]*gateway.Message {
	big := strings.Repeat("x", 300) // lengths past one varint byte
	return map[string][]*gateway.Message{
		"empty batch":   nil,
		"empty message": {{}},
		"nil skipped":   {nil, {ID: "a"}, nil},
		"kafka record": {{
			ID:      "demo@0#7",
			Content: []byte("payload"),
			Headers: gateway.Headers{"X-Trace": {"abc"}},
			Metadata: map[string]any{
				"topic": "demo", "partition": 0, "offset": int64(7), "sourceTimestamp": int64(1715000000000), "key": "k",
			},
			Tag: 3,
		}},
		"tombstone": {{Metadata: map[string]any{"tombstone": true, "key": ""}, Tag: 1}},
		"long content and strings": {{
			ID:       big,
			Content:  []byte(strings.Repeat("y", 20000)),
			Headers:  gateway.Headers{big: {big, ""}},
			Metadata: map[string]any{big: big},
		}},
		"headers sorted, values in order, empty name, no values": {{
			Headers: gateway.Headers{"X-B": {"2", "1"}, "": {"v"}, "X-A": nil, "é": {"ü"}},
		}},
		"every scalar": {{
			Attributes: map[string]any{
				"nil": nil, "s": "", "t": true, "f": false,
				"int": -5, "int8": int8(-8), "int16": int16(16), "int32": int32(-32), "int64": int64(math.MaxInt64),
				"uint": uint(5), "uint8": uint8(8), "uint16": uint16(16), "uint32": uint32(32), "uint64": uint64(math.MaxUint64),
				"f32": float32(1.5), "f64": -2.25, "zero": 0.0, "inf": math.Inf(1), "exact": int64(1 << 53), "past": int64(1<<53 + 2),
			},
		}},
		"composite values": {{
			Metadata: map[string]any{
				"list":    []any{1, "a", nil, []any{true}},
				"map":     map[string]any{"a": 1, "b": map[string]any{"c": "d"}},
				"strings": []string{"a", "b"},
				"smap":    map[string]string{"k": "v"},
				"bytes":   []byte{0, 1, 2},
				"number":  json.Number("12.5"),
				"struct":  struct{ A int }{A: 1},
				"time":    time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
				"value":   structpb.NewStringValue("pb"),
			},
		}},
		"error message": {{
			Error: &gateway.Failure{Status: 500, Key: "FAILURE_X", Message: "boom", Retriable: true, RequestLevel: true},
			Tag:   9,
		}},
		"negative status": {{Error: &gateway.Failure{Status: -1}}},
		"empty failure":   {{Error: &gateway.Failure{}}},
		"several": {
			{ID: "1", Content: []byte("a"), Tag: 1},
			{ID: "2", Content: []byte("b"), Tag: math.MaxUint64, Metadata: map[string]any{"k": "v"}},
		},
	}
}

// deliverOf encodes msgs with the direct encoder as a Connect.Deliver.
func deliverOf(t *testing.T, msgs []*gateway.Message) []byte {
	t.Helper()
	b, err := AppendMessages(nil, 1, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendMessagesMatchesGenerated(t *testing.T) {
	for name, msgs := range directCases() {
		t.Run(name, func(t *testing.T) {
			var got pluginv1.Connect_Deliver
			if err := proto.Unmarshal(deliverOf(t, msgs), &got); err != nil {
				t.Fatalf("the generated code cannot decode the direct encoding: %v", err)
			}
			ws, err := MessagesToWire(msgs)
			if err != nil {
				t.Fatal(err)
			}
			want := &pluginv1.Connect_Deliver{Messages: ws}
			if !proto.Equal(&got, want) {
				t.Fatalf("direct encoding decodes to\n%v\nwant\n%v", &got, want)
			}
		})
	}
}

func TestDecodeMessagesMatchesGenerated(t *testing.T) {
	for name, msgs := range directCases() {
		t.Run(name, func(t *testing.T) {
			ws, err := MessagesToWire(msgs)
			if err != nil {
				t.Fatal(err)
			}
			b, err := proto.Marshal(&pluginv1.Connect_Deliver{Messages: ws})
			if err != nil {
				t.Fatal(err)
			}
			var back pluginv1.Connect_Deliver
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			want := MessagesFromWire(back.GetMessages())
			got, err := DecodeMessages(b, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeMessages =\n%#v\nwant\n%#v", got, want)
			}
			// And from its own encoding.
			got, err = DecodeMessages(deliverOf(t, msgs), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeMessages of the direct encoding =\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

// TestAppendMessagesBytes pins the encoding of one message: fields in number
// order, minimal lengths, map entries with key then value, as proto.Marshal
// writes them.
func TestAppendMessagesBytes(t *testing.T) {
	m := &gateway.Message{
		ID:       "i",
		Content:  []byte("c"),
		Headers:  gateway.Headers{"h": {"v"}},
		Metadata: map[string]any{"n": 1},
		Error:    &gateway.Failure{Status: 4},
		Tag:      2,
	}
	got := deliverOf(t, []*gateway.Message{m})
	want := []byte{
		0x0a, 36, // Deliver.messages, 36 bytes
		0x0a, 1, 'i', // id
		0x12, 1, 'c', // content
		0x1a, 6, 0x0a, 1, 'h', 0x12, 1, 'v', // header
		0x22, 14, 0x0a, 1, 'n', 0x12, 9, 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // metadata n = 1.0
		0x32, 2, 0x08, 4, // error status 4
		0x38, 2, // tag
	}
	if string(got) != string(want) {
		t.Fatalf("got  % x\nwant % x", got, want)
	}
	ws, err := MessagesToWire([]*gateway.Message{m})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pluginv1.Connect_Deliver{Messages: ws})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(gen) {
		t.Fatalf("direct % x\ngenerated % x", got, gen)
	}
}

func TestAppendMessagesErrors(t *testing.T) {
	bad := string([]byte{0xff, 'a'})
	tests := map[string]struct {
		msgs []*gateway.Message
		want string
	}{
		"id":             {[]*gateway.Message{{ID: bad}}, "message 0: id: string is not valid UTF-8"},
		"header name":    {[]*gateway.Message{nil, {Headers: gateway.Headers{bad: {"v"}}}}, "message 1: header name"},
		"header value":   {[]*gateway.Message{{Headers: gateway.Headers{"h": {"ok", bad}}}}, "message 0: header h: string is not valid UTF-8"},
		"metadata key":   {[]*gateway.Message{{Metadata: map[string]any{bad: 1}}}, "message 0: metadata"},
		"metadata value": {[]*gateway.Message{{Metadata: map[string]any{"key": bad}}}, "message 0: metadata key: string is not valid UTF-8"},
		"nested value":   {[]*gateway.Message{{Attributes: map[string]any{"a": []any{bad}}}}, "message 0: attribute a: "},
		"failure key":    {[]*gateway.Message{{Error: &gateway.Failure{Key: bad}}}, "message 0: error: string is not valid UTF-8"},
		"unencodable":    {[]*gateway.Message{{}, {Metadata: map[string]any{"ch": make(chan int)}}}, "message 1: metadata ch: cannot encode chan int"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := AppendMessages(nil, 1, tc.msgs)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to start with %q", err, tc.want)
			}
		})
	}
}

// TestDecodeMessagesWireRules covers encodings the direct encoder never
// writes but another encoder may: the decoder follows proto.Unmarshal.
func TestDecodeMessagesWireRules(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), v)
	}
	header := func(name string, values ...string) []byte {
		h := bytesField(nil, 1, []byte(name))
		for _, v := range values {
			h = bytesField(h, 2, []byte(v))
		}
		return h
	}
	entry := func(key string, value []byte) []byte {
		return bytesField(bytesField(nil, 1, []byte(key)), 2, value)
	}
	str := func(s string) []byte { return bytesField(nil, 3, []byte(s)) }
	num := func(f float64) []byte {
		return protowire.AppendFixed64(tag(nil, 2, protowire.Fixed64Type), math.Float64bits(f))
	}
	structValue := bytesField(nil, 5, bytesField(nil, 1, entry("x", str("y"))))

	tests := map[string]struct {
		msg  []byte
		want gateway.Message
	}{
		"header name twice merges": {
			append(bytesField(nil, 3, header("A", "1")), bytesField(bytesField(nil, 3, header("B")), 3, header("A", "2", "3"))...),
			gateway.Message{Headers: gateway.Headers{"A": {"1", "2", "3"}, "B": nil}},
		},
		"map key twice, last wins": {
			bytesField(bytesField(nil, 4, entry("k", str("a"))), 4, entry("k", str("b"))),
			gateway.Message{Metadata: map[string]any{"k": "b"}},
		},
		"oneof, last wins": {
			bytesField(nil, 4, entry("k", append(str("a"), num(2)...))),
			gateway.Message{Metadata: map[string]any{"k": int64(2)}},
		},
		"struct after a string": {
			bytesField(nil, 5, entry("k", append(str("a"), structValue...))),
			gateway.Message{Attributes: map[string]any{"k": map[string]any{"x": "y"}}},
		},
		"entry without value": {
			bytesField(nil, 4, bytesField(nil, 1, []byte("k"))),
			gateway.Message{Metadata: map[string]any{"k": nil}},
		},
		"unknown fields and wrong wire types are skipped": {
			protowire.AppendVarint(tag(protowire.AppendVarint(tag(bytesField(nil, 99, []byte("?")), 1, protowire.VarintType), 5), 7, protowire.VarintType), 4),
			gateway.Message{Tag: 4},
		},
		"failures merge": {
			bytesField(bytesField(nil, 6, protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 503)), 6, bytesField(nil, 2, []byte("K"))),
			gateway.Message{Error: &gateway.Failure{Status: 503, Key: "K"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := bytesField(nil, 1, tc.msg)
			got, err := DecodeMessages(b, 1)
			if err != nil {
				t.Fatal(err)
			}
			var gen pluginv1.Connect_Deliver
			if err := proto.Unmarshal(b, &gen); err != nil {
				t.Fatal(err)
			}
			want := MessagesFromWire(gen.GetMessages())
			if len(got) != 1 || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(*got[0], tc.want) {
				t.Fatalf("got %#v\ngenerated %#v\nwant %#v", got, want, tc.want)
			}
		})
	}
}

func TestDecodeMessagesMalformed(t *testing.T) {
	good := deliverOf(t, []*gateway.Message{{ID: "abc", Metadata: map[string]any{"k": "v"}}})
	tests := map[string][]byte{
		"truncated batch":   good[:len(good)-1],
		"truncated tag":     {0x80},
		"length past end":   {0x0a, 5, 0},
		"truncated field":   {0x0a, 2, 0x0a, 5},
		"truncated number":  {0x0a, 7, 0x22, 5, 0x12, 3, 0x11, 0, 0},
		"bad group":         {0x0a, 1, 0x0b},
		"bad struct in map": {0x0a, 6, 0x22, 4, 0x12, 2, 0x2a, 1},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeMessages(b, 1); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestDecodeMessagesAliasing(t *testing.T) {
	b := deliverOf(t, []*gateway.Message{{ID: "id", Content: []byte("abc")}, {Content: []byte("def")}})
	got, err := DecodeMessages(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to one message's content must not overwrite the next one.
	_ = append(got[0].Content, 'X')
	if string(got[1].Content) != "def" || got[0].ID != "id" {
		t.Fatalf("append through the first content changed the batch: %q %q", got[0].ID, got[1].Content)
	}
}

func TestDecodePublishRequest(t *testing.T) {
	msgs, err := MessagesToWire([]*gateway.Message{{Content: []byte("a")}, {Content: []byte("b"), Headers: gateway.Headers{"H": {"v"}}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]*pluginv1.Publish_Request{
		"empty": {},
		"full": {
			BatchId:    42,
			InstanceId: "api/endpoint",
			Context: &pluginv1.Context{
				ApiId:      "api",
				Request:    &pluginv1.Request{Id: "r", Method: "POST", Headers: []*pluginv1.Header{{Name: "A", Values: []string{"1"}}}},
				Attributes: map[string]*structpb.Value{"x": structpb.NewNumberValue(1)},
			},
			Messages: msgs,
		},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			id, got, _, err := DecodePublishRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			var back pluginv1.Publish_Request
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if want := PublishRequestFromWire(&back); id != back.GetBatchId() || !reflect.DeepEqual(got, want) {
				t.Fatalf("got %d %#v\nwant %d %#v", id, got, back.GetBatchId(), want)
			}
		})
	}
	if _, _, _, err := DecodePublishRequest([]byte{0x1a, 3, 0x0a}); err == nil {
		t.Fatal("a truncated context decoded without error")
	}
}

// FuzzDecodeMessages checks that no input panics the decoder, and that
// whatever the generated code accepts, the decoder accepts too.
func FuzzDecodeMessages(f *testing.F) {
	for _, msgs := range directCases() {
		b, err := AppendMessages(nil, 1, msgs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 2, 0x22, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeMessages(b, 1)
		var gen pluginv1.Connect_Deliver
		if proto.Unmarshal(b, &gen) != nil {
			return
		}
		if err != nil {
			t.Fatalf("the generated code accepts % x, DecodeMessages fails: %v", b, err)
		}
		if len(got) != len(gen.GetMessages()) {
			t.Fatalf("%d messages, the generated code decodes %d", len(got), len(gen.GetMessages()))
		}
	})
}
