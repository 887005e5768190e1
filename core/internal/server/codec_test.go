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
		if err := stream.SendMsg(&rawMessage{{0x12, 3, 0x0a, 5, 0x0a}}); err != nil {
			return err
		}
		// Until the core half-closes the subscription.
		for {
			if _, err := stream.Recv(); err != nil {
				return nil
			}
		}
	}}
	plugin := fakeplugin.Start(t, "raw-endpoint", func(s *grpc.Server) { pluginv1.RegisterEndpointServer(s, end) }, grpc.ForceServerCodecV2(codec))
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
