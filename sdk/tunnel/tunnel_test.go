package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// floodContent makes every flood message cost a known share of the window.
var floodContent = make([]byte, 64<<10)

// floodWindow is how many flood messages the window lets through before a
// grant: the last one may overdraw what is left.
var floodWindow = func() int {
	size := proto.Size(&pluginv1.OnMessages_Response{BatchId: 1 << 20, Messages: []*pluginv1.Message{{Content: floodContent}}}) + 1
	return (Window + size - 1) / size
}()

// echoPolicy is a Policy service: OnRequest answers the instance id back
// (or fails when asked to), OnMessages echoes each request's batch id, and
// reports what its calls saw.
type echoPolicy struct {
	pluginv1.UnimplementedPolicyServer
	sent      chan uint64   // batch ids sent by a "flood" call
	cancelled chan struct{} // closed... once a call saw its context end
	once      sync.Once
}

func (p *echoPolicy) OnRequest(_ context.Context, r *pluginv1.OnRequest_Request) (*pluginv1.OnRequest_Response, error) {
	if r.GetInstanceId() == "fail" {
		return nil, status.Error(codes.FailedPrecondition, "asked to fail")
	}
	return &pluginv1.OnRequest_Response{Interrupt: &pluginv1.Failure{Key: r.GetInstanceId()}}, nil
}

func (p *echoPolicy) OnMessages(s pluginv1.Policy_OnMessagesServer) error {
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			p.once.Do(func() { close(p.cancelled) })
			return err
		}
		if r.GetPhase() == "flood" {
			for i := uint64(0); ; i++ {
				if err := s.Send(&pluginv1.OnMessages_Response{BatchId: i, Messages: []*pluginv1.Message{{Content: floodContent}}}); err != nil {
					p.once.Do(func() { close(p.cancelled) })
					return err
				}
				p.sent <- i
			}
		}
		if err := s.Send(&pluginv1.OnMessages_Response{BatchId: r.GetBatchId()}); err != nil {
			return err
		}
	}
}

// start serves an echoPolicy through a tunnel on loopback and returns a
// Policy client that uses the tunnel.
func start(t *testing.T) (pluginv1.PolicyClient, *echoPolicy, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(Codec))
	ts := NewServer()
	impl := &echoPolicy{sent: make(chan uint64, 1000), cancelled: make(chan struct{})}
	pluginv1.RegisterPolicyServer(ts, impl)
	pluginv1.RegisterTunnelServer(gs, ts)
	go gs.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	tc := NewClient(conn)
	stop := func() { tc.Close(); conn.Close(); gs.Stop() }
	t.Cleanup(stop)
	return pluginv1.NewPolicyClient(tc), impl, gs.Stop
}

func TestUnaryThroughTunnel(t *testing.T) {
	pc, _, _ := start(t)
	resp, err := pc.OnRequest(context.Background(), &pluginv1.OnRequest_Request{InstanceId: "i-1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetInterrupt().GetKey() != "i-1" {
		t.Fatalf("response %v", resp)
	}
	_, err = pc.OnRequest(context.Background(), &pluginv1.OnRequest_Request{InstanceId: "fail"})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != "asked to fail" {
		t.Fatalf("error %v, want FailedPrecondition asked to fail", err)
	}
}

func TestConcurrentUnaryCalls(t *testing.T) {
	pc, _, _ := start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("i-", i)
			resp, err := pc.OnRequest(context.Background(), &pluginv1.OnRequest_Request{InstanceId: id})
			if err == nil && resp.GetInterrupt().GetKey() != id {
				err = fmt.Errorf("call %s got %s", id, resp.GetInterrupt().GetKey())
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A stream carries many more messages than the window, in order, in both
// directions.
func TestStreamOrderPastTheWindow(t *testing.T) {
	pc, _, _ := start(t)
	s, err := pc.OnMessages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000 // 1 KiB each: several windows' worth
	go func() {
		for i := range uint64(n) {
			if err := s.Send(&pluginv1.OnMessages_Request{BatchId: i, Messages: []*pluginv1.Message{{Content: make([]byte, 1024)}}}); err != nil {
				t.Error(err)
				return
			}
		}
		s.CloseSend()
	}()
	for i := range uint64(n) {
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if r.GetBatchId() != i {
			t.Fatalf("message %d has id %d", i, r.GetBatchId())
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
}

// A call whose reader stops holds at most Window messages, and the other
// calls of the tunnel go on.
func TestSlowCallDoesNotBlockOthers(t *testing.T) {
	pc, impl, _ := start(t)
	slow, err := pc.OnMessages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Send(&pluginv1.OnMessages_Request{Phase: "flood"}); err != nil {
		t.Fatal(err)
	}
	for range floodWindow {
		<-impl.sent
	}
	// The plugin is now out of credit on the slow call: other calls work.
	for i := range 20 {
		if _, err := pc.OnRequest(context.Background(), &pluginv1.OnRequest_Request{InstanceId: "x"}); err != nil {
			t.Fatalf("call %d while one call is stalled: %v", i, err)
		}
	}
	select {
	case id := <-impl.sent:
		t.Fatalf("the plugin sent message %d past the window of a call nobody reads", id)
	default:
	}
	// Reading frees the window again.
	for i := range uint64(floodWindow) {
		r, err := slow.Recv()
		if err != nil || r.GetBatchId() != i {
			t.Fatalf("recv %d: %v %v", i, r, err)
		}
	}
	<-impl.sent
}

func TestCancelReachesThePlugin(t *testing.T) {
	pc, impl, _ := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := pc.OnMessages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pluginv1.OnMessages_Request{BatchId: 7}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.GetBatchId() != 7 {
		t.Fatalf("recv: %v %v", r, err)
	}
	cancel()
	if _, err := s.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("recv after cancel: %v, want Canceled", err)
	}
	select {
	case <-impl.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin's handler never saw the call end")
	}
}

func TestBrokenTunnelFailsCallsAsUnavailable(t *testing.T) {
	pc, _, stopServer := start(t)
	s, err := pc.OnMessages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pluginv1.OnMessages_Request{BatchId: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	stopServer()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("recv on a broken tunnel: %v, want Unavailable", err)
	}
}

func TestUnknownMethodIsUnimplemented(t *testing.T) {
	pc, _, _ := start(t)
	_ = pc
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	gs := grpc.NewServer(grpc.ForceServerCodecV2(Codec))
	pluginv1.RegisterTunnelServer(gs, NewServer())
	go gs.Serve(lis)
	defer gs.Stop()
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	_, err := pluginv1.NewPolicyClient(NewClient(conn)).OnRequest(context.Background(), &pluginv1.OnRequest_Request{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unregistered method: %v, want Unimplemented", err)
	}
}

// Frames queued while a batch is being sent go out together in the next
// one: concurrency, not a timer, makes batches.
func TestWriterCoalescesWhileSending(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]byte
	l := newLink(func(p *RawParts) error {
		var b []byte
		for _, part := range *p {
			b = append(b, part...)
		}
		mu.Lock()
		batches = append(batches, b)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return nil
	})
	defer l.fail(errors.New("done"))
	if err := l.enqueue(&frame{call: 1, method: "/m"}); err != nil {
		t.Fatal(err)
	}
	for {
		mu.Lock()
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 9 {
		_ = l.enqueue(&frame{call: uint64(2 + i), window: 3})
	}
	close(release)
	for {
		mu.Lock()
		n := len(batches)
		mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var second pluginv1.TunnelBatch
	if err := proto.Unmarshal(batches[1], &second); err != nil {
		t.Fatal(err)
	}
	if len(second.GetFrames()) != 9 {
		t.Fatalf("second batch has %d frames, want the 9 queued while the first was sent", len(second.GetFrames()))
	}
}

// The hand-written encoder and decoder agree with the generated code.
func TestFrameEncodingMatchesGeneratedCode(t *testing.T) {
	msg := []byte{0x0a, 0x03, 'a', 'b', 'c'}
	cases := []struct {
		name string
		in   frame
		want *pluginv1.TunnelFrame
	}{
		{"open with message", frame{call: 1, method: "/a/B", msg: [][]byte{msg[:2], msg[2:]}, msgLen: 5, hasMsg: true},
			&pluginv1.TunnelFrame{Call: 1, Method: "/a/B", Message: msg}},
		{"empty message", frame{call: 2, msg: [][]byte{}, hasMsg: true},
			&pluginv1.TunnelFrame{Call: 2, Message: []byte{}}},
		{"control", frame{call: 300, closeSend: true, window: 8, cancel: true},
			&pluginv1.TunnelFrame{Call: 300, CloseSend: true, Window: 8, Cancel: true}},
		{"end with status", frame{call: 4, end: &endStatus{code: 14, message: "gone"}},
			&pluginv1.TunnelFrame{Call: 4, End: &pluginv1.TunnelStatus{Code: 14, Message: "gone"}}},
		{"end ok", frame{call: 5, end: &endStatus{}},
			&pluginv1.TunnelFrame{Call: 5, End: &pluginv1.TunnelStatus{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.in.encode()
			var b []byte
			for _, p := range e.parts {
				b = append(b, p...)
			}
			if len(b) != e.size {
				t.Fatalf("size %d, encoded %d bytes", e.size, len(b))
			}
			var got pluginv1.TunnelBatch
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Frames) != 1 || !proto.Equal(got.Frames[0], tc.want) {
				t.Fatalf("decoded by protobuf: %v, want %v", got.Frames, tc.want)
			}
			want, _ := proto.Marshal(&pluginv1.TunnelBatch{Frames: []*pluginv1.TunnelFrame{tc.want}})
			var frames []frame
			if err := decodeBatch(want, func(f *frame) { frames = append(frames, *f) }); err != nil {
				t.Fatal(err)
			}
			f := frames[0]
			if len(frames) != 1 || f.call != tc.in.call || f.method != tc.in.method || f.hasMsg != tc.in.hasMsg ||
				f.closeSend != tc.in.closeSend || f.window != tc.in.window || f.cancel != tc.in.cancel ||
				(f.end == nil) != (tc.in.end == nil) || (f.end != nil && *f.end != *tc.in.end) {
				t.Fatalf("decoded %+v, want %+v", f, tc.in)
			}
		})
	}
	if err := decodeBatch([]byte{0x0a, 0x05, 0x08}, func(*frame) {}); err == nil {
		t.Fatal("a truncated batch decoded without error")
	}
}

func TestBufferPoolTiers(t *testing.T) {
	cases := []struct{ n, wantCap int }{
		{1, 256}, {256, 256}, {257, 512}, {100 << 10, 128 << 10}, {1 << 20, 1 << 20}, {4 << 20, 4 << 20}, {4<<20 + 1, 4<<20 + 1},
	}
	for _, tc := range cases {
		b := BufferPool.Get(tc.n)
		if len(*b) != tc.n || cap(*b) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(*b), cap(*b), tc.n, tc.wantCap)
		}
		BufferPool.Put(b)
	}
}
