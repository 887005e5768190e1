package relay

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// mustMarshal encodes deterministically (map entries sorted), so two
// encodings of equal messages can be compared byte for byte.
func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOnlyField(t *testing.T) {
	tests := map[string]struct {
		in      []byte
		num     int
		val     string
		wantOK  bool
		comment string
	}{
		"one bytes field":   {in: []byte{0x12, 2, 'a', 'b'}, num: 2, val: "ab", wantOK: true},
		"empty value":       {in: []byte{0x1a, 0}, num: 3, val: "", wantOK: true},
		"empty message":     {in: nil},
		"two fields":        {in: []byte{0x12, 1, 'a', 0x12, 1, 'b'}},
		"varint field":      {in: []byte{0x08, 1}},
		"truncated":         {in: []byte{0x12, 3, 'a'}},
		"trailing bytes":    {in: []byte{0x12, 1, 'a', 0}},
		"bad tag":           {in: []byte{0x80}},
		"long length value": {in: append([]byte{0x12, 0x80, 1}, bytes.Repeat([]byte{'x'}, 128)...), num: 2, val: string(bytes.Repeat([]byte{'x'}, 128)), wantOK: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			num, val, ok := onlyField(tc.in)
			if ok != tc.wantOK || (ok && (int(num) != tc.num || string(val) != tc.val)) {
				t.Fatalf("onlyField = %d %q %v, want %d %q %v", num, val, ok, tc.num, tc.val, tc.wantOK)
			}
		})
	}
}

func TestCountMessages(t *testing.T) {
	batch := func(msgs ...*pluginv1.Message) []byte {
		return mustMarshal(t, &pluginv1.Subscribe_Batch{Messages: msgs})
	}
	tests := map[string]struct {
		in        []byte
		all, data int
		wantErr   bool
	}{
		"empty":                      {in: nil},
		"data only":                  {in: batch(&pluginv1.Message{Content: []byte("a")}, &pluginv1.Message{Id: "x"}), all: 2, data: 2},
		"an error message":           {in: batch(&pluginv1.Message{Tag: 1}, &pluginv1.Message{Error: &pluginv1.Failure{Status: 500}}), all: 2, data: 1},
		"an empty failure is one":    {in: batch(&pluginv1.Message{Error: &pluginv1.Failure{}}), all: 1, data: 0},
		"an empty message":           {in: batch(&pluginv1.Message{}), all: 1, data: 1},
		"unknown fields are skipped": {in: append(batch(&pluginv1.Message{}), 0x10, 5), all: 1, data: 1},
		"truncated":                  {in: []byte{0x0a, 4, 0x0a}, wantErr: true},
		"malformed message":          {in: []byte{0x0a, 1, 0x80}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			all, data, err := countMessages(tc.in)
			if (err != nil) != tc.wantErr || all != tc.all || data != tc.data {
				t.Fatalf("countMessages = %d, %d, %v; want %d, %d, error %v", all, data, err, tc.all, tc.data, tc.wantErr)
			}
		})
	}
}

// TestDeliverFrame checks that a Subscribe.Batch's bytes, wrapped, are the
// Connect.Request holding a Deliver of the same messages.
func TestDeliverFrame(t *testing.T) {
	msgs := []*pluginv1.Message{
		{Id: "t@0#1", Content: bytes.Repeat([]byte("y"), 300), Tag: 1,
			Metadata: map[string]*structpb.Value{"topic": structpb.NewStringValue("t"), "offset": structpb.NewNumberValue(1)}},
		{Error: &pluginv1.Failure{Status: 503, Key: "K", Message: "m"}},
	}
	b := mustMarshal(t, &pluginv1.Subscribe_Batch{Messages: msgs})
	raw := deliverFrame(b)
	out, err := codec.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got pluginv1.Connect_Request
	if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
		t.Fatal(err)
	}
	want := &pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Deliver{Deliver: &pluginv1.Connect_Deliver{Messages: msgs}}}
	if !proto.Equal(&got, want) {
		t.Fatalf("got %v\nwant %v", &got, want)
	}
	if wantBytes := mustMarshal(t, want); !bytes.Equal(out.Materialize(), wantBytes) {
		t.Fatalf("bytes\n% x\nwant\n% x", out.Materialize(), wantBytes)
	}
}

// TestRawPublishBatch checks that a PublishBatch's messages, relayed with
// an encoded head and a batch id, make the Publish.Request the decoding
// path would have built.
func TestRawPublishBatch(t *testing.T) {
	msgs := []*pluginv1.Message{
		{Content: []byte("a"), Headers: []*pluginv1.Header{{Name: "H", Values: []string{"v"}}}},
		{Content: bytes.Repeat([]byte("b"), 200), Attributes: map[string]*structpb.Value{"k": structpb.NewBoolValue(true)}},
	}
	pctx := &pluginv1.Context{ApiId: "api", Request: &pluginv1.Request{Method: "POST", Path: "/p"}}
	tests := map[string]struct {
		body      []byte
		id        uint64
		count     int
		wantOK    bool
		wantErr   bool
		wantParts int
	}{
		"generated order (id first)": {body: mustMarshal(t, &pluginv1.Connect_PublishBatch{BatchId: 7, Messages: msgs}), id: 7, count: 2, wantOK: true, wantParts: 1},
		"id last":                    {body: append(mustMarshal(t, &pluginv1.Connect_PublishBatch{Messages: msgs}), 0x08, 9), id: 9, count: 2, wantOK: true, wantParts: 1},
		"id between messages": {
			body: append(append(mustMarshal(t, &pluginv1.Connect_PublishBatch{Messages: msgs[:1]}), 0x08, 3),
				mustMarshal(t, &pluginv1.Connect_PublishBatch{Messages: msgs[1:]})...),
			id: 3, count: 2, wantOK: true, wantParts: 2,
		},
		"no messages":      {body: []byte{0x08, 1}, id: 1, wantOK: true},
		"an unknown field": {body: append(mustMarshal(t, &pluginv1.Connect_PublishBatch{BatchId: 1, Messages: msgs}), 0x18, 1)},
		"a long tag":       {body: []byte{0x92, 0x00, 0}},
		"then_respond": {
			body: mustMarshal(t, &pluginv1.Connect_PublishBatch{BatchId: 4, Messages: msgs, ThenRespond: &pluginv1.Connect_Respond{Status: 202}}),
			id:   4, count: 2, wantOK: true, wantParts: 1,
		},
		"malformed": {body: []byte{0x12, 5, 0}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, ok, err := rawPublishBatch(tc.body)
			if (err != nil) != tc.wantErr || ok != tc.wantOK {
				t.Fatalf("rawPublishBatch: ok %v, error %v; want ok %v, error %v", ok, err, tc.wantOK, tc.wantErr)
			}
			if !ok {
				return
			}
			if b.id != tc.id || b.count != tc.count || len(b.parts) != tc.wantParts {
				t.Fatalf("id %d, %d messages, %d parts; want %d, %d, %d", b.id, b.count, len(b.parts), tc.id, tc.count, tc.wantParts)
			}
			head := append([]byte{0x12, 4}, "ep-1"...)
			head = append(append(head, 0x1a, byte(len(mustMarshal(t, pctx)))), mustMarshal(t, pctx)...)
			req := &publishRequest{raw: append(rawMessage{nil, head}, b.parts...)}
			req.setID(42)
			out, err := codec.Marshal(&req.raw)
			if err != nil {
				t.Fatal(err)
			}
			var got pluginv1.Publish_Request
			if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
				t.Fatal(err)
			}
			want := &pluginv1.Publish_Request{BatchId: 42, InstanceId: "ep-1", Context: pctx, Messages: msgs[:tc.count]}
			if !proto.Equal(&got, want) {
				t.Fatalf("got %v\nwant %v", &got, want)
			}
		})
	}
}

// A batch with a field the relay does not know is left exactly as it came,
// for the decoding path.
func TestRawPublishBatchLeavesUnknownUntouched(t *testing.T) {
	body := append(mustMarshal(t, &pluginv1.Connect_PublishBatch{BatchId: 1, Messages: []*pluginv1.Message{{Content: []byte("a")}}}), 0x22, 1, 'x')
	before := bytes.Clone(body)
	if _, ok, err := rawPublishBatch(body); ok || err != nil {
		t.Fatalf("ok %v err %v, want a fallback", ok, err)
	}
	if !bytes.Equal(body, before) {
		t.Fatalf("the body was rewritten:\n% x\nwant\n% x", body, before)
	}
}

// TestOpenAndStartFrames checks the frames built around an exchange's
// encoded context byte for byte against the generated code.
func TestOpenAndStartFrames(t *testing.T) {
	contexts := map[string]*pluginv1.Context{
		"empty context": {},
		"full context": {
			ApiId:      "api",
			Request:    &pluginv1.Request{Id: "r", Method: "GET", Headers: []*pluginv1.Header{{Name: "A", Values: []string{"1"}}}, Body: bytes.Repeat([]byte("b"), 200)},
			Attributes: map[string]*structpb.Value{"k": structpb.NewStringValue("v")},
		},
	}
	starts := map[string]*pluginv1.Connect_SubscribeStart{
		"nothing":        {},
		"everything":     {Qos: "at-least-once", LastId: "t@0#5", Limit: 500},
		"negative limit": {Limit: -1},
	}
	for cname, pctx := range contexts {
		ctxBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(pctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, instance := range []string{"", "ep-1"} {
			t.Run(cname+"/open/"+instance, func(t *testing.T) {
				out, err := codec.Marshal(openFrame(instance, ctxBytes))
				if err != nil {
					t.Fatal(err)
				}
				want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{
					Open: &pluginv1.Connect_Open{InstanceId: instance, Context: pctx}}})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Materialize(), want) {
					t.Fatalf("open frame\n% x\nwant\n% x", out.Materialize(), want)
				}
			})
			for sname, ss := range starts {
				t.Run(cname+"/start/"+instance+"/"+sname, func(t *testing.T) {
					out, err := codec.Marshal(startFrame(instance, ctxBytes, ss))
					if err != nil {
						t.Fatal(err)
					}
					want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Start{
						Start: &pluginv1.Subscribe_Start{InstanceId: instance, Context: pctx, Qos: ss.GetQos(), LastId: ss.GetLastId(), Limit: ss.GetLimit()}}})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(out.Materialize(), want) {
						t.Fatalf("start frame\n% x\nwant\n% x", out.Materialize(), want)
					}
				})
			}
		}
	}
}
