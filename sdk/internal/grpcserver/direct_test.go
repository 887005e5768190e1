package grpcserver

import (
	"context"
	"net"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

const testWait = 10 * time.Second

// richBatch has every kind of message content the direct paths encode.
func richBatch() []*gateway.Message {
	return []*gateway.Message{
		{
			ID:       "t@1#2",
			Content:  []byte("payload"),
			Headers:  gateway.Headers{"B": {"2"}, "A": {"1", "x"}},
			Metadata: map[string]any{"topic": "t", "partition": int64(1), "offset": int64(2), "tombstone": false, "key": nil},
			Attributes: map[string]any{
				"list": []any{int64(1), "a"}, "map": map[string]any{"k": "v"}, "f": 1.5,
			},
			Tag: 3,
		},
		{Error: &gateway.Failure{Status: 503, Key: "K", Message: "m", Retriable: true}},
		{},
	}
}

type directPlugin struct {
	subscribe func(endpoint.Subscription) error
	published chan *endpoint.PublishRequest
	connect   func(entrypoint.Conn) error
}

func (directPlugin) Metadata() lifecycle.Metadata { return lifecycle.Metadata{} }
func (directPlugin) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}
func (directPlugin) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}
func (directPlugin) Unconfigure(context.Context, string) {}

func (p directPlugin) Publish(_ context.Context, req *endpoint.PublishRequest) error {
	p.published <- req
	return nil
}

func (p directPlugin) Subscribe(_ context.Context, _ *endpoint.SubscribeRequest, sub endpoint.Subscription) error {
	return p.subscribe(sub)
}

func (p directPlugin) Connect(_ context.Context, _ *entrypoint.Open, conn entrypoint.Conn) error {
	return p.connect(conn)
}

// serveDirect serves p with the plugin server options and returns a client
// connection that uses the generated code only, as the core's decoding
// paths do.
func serveDirect(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(ServerOptions(64 << 20)...)
	register(gs)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); gs.Stop() })
	return conn
}

func wantWire(t *testing.T, msgs []*gateway.Message) []*pluginv1.Message {
	t.Helper()
	ws, err := wire.MessagesToWire(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestEndpointDirectPaths(t *testing.T) {
	p := directPlugin{
		published: make(chan *endpoint.PublishRequest, 1),
		subscribe: func(sub endpoint.Subscription) error { return sub.Send(richBatch()) },
	}
	conn := serveDirect(t, func(s *grpc.Server) {
		pluginv1.RegisterEndpointServer(s, &endpointServer{ep: p, log: nil})
	})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	client := pluginv1.NewEndpointClient(conn)

	// Subscription.Send: the generated code reads the batch MessagesToWire
	// would have built.
	sub, err := client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Send(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Start{Start: &pluginv1.Subscribe_Start{}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := sub.Recv()
	if err != nil {
		t.Fatal(err)
	}
	want := &pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Batch{Batch: &pluginv1.Subscribe_Batch{Messages: wantWire(t, richBatch())}}}
	if !proto.Equal(resp, want) {
		t.Fatalf("subscribe batch\n%v\nwant\n%v", resp, want)
	}

	// Publish: a batch encoded by the generated code reaches the endpoint as
	// PublishRequestFromWire would have decoded it, answered with its id.
	pub, err := client.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &pluginv1.Publish_Request{
		BatchId:    5,
		InstanceId: "i",
		Context: &pluginv1.Context{ApiId: "a", Request: &pluginv1.Request{Method: "POST"},
			Attributes: map[string]*structpb.Value{"x": structpb.NewStringValue("y")}},
		Messages: wantWire(t, richBatch()),
	}
	if err := pub.Send(req); err != nil {
		t.Fatal(err)
	}
	got := <-p.published
	if want := wire.PublishRequestFromWire(req); !reflect.DeepEqual(got, want) {
		t.Fatalf("publish request\n%#v\nwant\n%#v", got, want)
	}
	r, err := pub.Recv()
	if err != nil || r.GetBatchId() != 5 || r.GetFailure() != nil {
		t.Fatalf("publish response %v, %v", r, err)
	}
}

func TestEntrypointDirectPaths(t *testing.T) {
	delivered := make(chan []*gateway.Message, 1)
	p := directPlugin{connect: func(conn entrypoint.Conn) error {
		for ev := range conn.Events() {
			if ev.Kind == entrypoint.Deliver {
				delivered <- ev.Messages
				break
			}
		}
		if _, err := conn.Publish(richBatch()); err != nil {
			return err
		}
		_, err := conn.Publish(nil)
		return err
	}}
	conn := serveDirect(t, func(s *grpc.Server) {
		pluginv1.RegisterEntrypointServer(s, &entrypointServer{ep: p})
	})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	x, err := pluginv1.NewEntrypointClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{Open: &pluginv1.Connect_Open{}}}); err != nil {
		t.Fatal(err)
	}
	ws := wantWire(t, richBatch())
	if err := x.Send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Deliver{Deliver: &pluginv1.Connect_Deliver{Messages: ws}}}); err != nil {
		t.Fatal(err)
	}
	// The event holds what MessagesFromWire makes of the decoded batch.
	b, err := proto.Marshal(&pluginv1.Connect_Deliver{Messages: ws})
	if err != nil {
		t.Fatal(err)
	}
	var back pluginv1.Connect_Deliver
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := <-delivered, wire.MessagesFromWire(back.GetMessages()); !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered\n%#v\nwant\n%#v", got, want)
	}
	// Conn.Publish: numbered batches the generated code reads back.
	for i, msgs := range [][]*gateway.Message{richBatch(), nil} {
		resp, err := x.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := &pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Publish{Publish: &pluginv1.Connect_PublishBatch{
			BatchId: uint64(i + 1), Messages: wantWire(t, msgs),
		}}}
		if !proto.Equal(resp, want) {
			t.Fatalf("publish action %d\n%v\nwant\n%v", i, resp, want)
		}
	}
}

// TestEventOfEnd decodes End frames as the core sends them, byte for byte:
// Connect.Request.end (field 7) holding client_gone (1) and stopping (2).
func TestEventOfEnd(t *testing.T) {
	tests := map[string]struct {
		frame []byte
		want  entrypoint.Event
	}{
		"end":         {[]byte{0x3a, 0x00}, entrypoint.Event{Kind: entrypoint.End}},
		"client gone": {[]byte{0x3a, 0x02, 0x08, 0x01}, entrypoint.Event{Kind: entrypoint.End, ClientGone: true}},
		"stopping":    {[]byte{0x3a, 0x02, 0x10, 0x01}, entrypoint.Event{Kind: entrypoint.End, Stopping: true}},
		// A field a newer core may add to End is skipped, not an error.
		"stopping, unknown field": {[]byte{0x3a, 0x04, 0x10, 0x01, 0x18, 0x01}, entrypoint.Event{Kind: entrypoint.End, Stopping: true}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok, err := eventOf(rawFrame(tt.frame))
			if err != nil || !ok {
				t.Fatalf("eventOf: %v, %v", ok, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("event %#v, want %#v", got, tt.want)
			}
		})
	}
}
