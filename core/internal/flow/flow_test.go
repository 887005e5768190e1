package flow

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
	"google.golang.org/protobuf/types/known/structpb"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

const waitLimit = 10 * time.Second

func TestTransportFailure(t *testing.T) {
	detailed, _ := status.New(codes.Internal, "x").WithDetails(&pluginv1.Failure{Status: 412, Key: "K", Message: "An error occurred"})
	noStatus, _ := status.New(codes.Internal, "x").WithDetails(&pluginv1.Failure{Message: "bare"})
	tests := map[string]struct {
		err  error
		want *pluginv1.Failure
	}{
		"nil": {nil, nil},
		"unavailable": {status.Error(codes.Unavailable, "conn reset"),
			&pluginv1.Failure{Status: 502, Key: KeyPluginNoResponse, Message: "plugin p did not respond", Retriable: true, RequestLevel: true}},
		"eof": {io.EOF,
			&pluginv1.Failure{Status: 502, Key: KeyPluginNoResponse, Message: "plugin p did not respond", Retriable: true, RequestLevel: true}},
		"deadline status": {status.Error(codes.DeadlineExceeded, "slow"),
			&pluginv1.Failure{Status: 504, Key: KeyPluginTimeout, Message: "plugin p did not respond in time", Retriable: true, RequestLevel: true}},
		"deadline context": {fmt.Errorf("call: %w", context.DeadlineExceeded),
			&pluginv1.Failure{Status: 504, Key: KeyPluginTimeout, Message: "plugin p did not respond in time", Retriable: true, RequestLevel: true}},
		"canceled": {status.Error(codes.Canceled, "restart"),
			&pluginv1.Failure{Status: 503, Key: KeyPluginUnavailable, Message: "plugin p is unavailable", Retriable: true, RequestLevel: true}},
		"failure detail":                {detailed.Err(), &pluginv1.Failure{Status: 412, Key: "K", Message: "An error occurred"}},
		"failure detail without status": {noStatus.Err(), &pluginv1.Failure{Status: 500, Message: "bare"}},
		"other status": {status.Error(codes.Unimplemented, "unknown service"),
			&pluginv1.Failure{Status: 500, Key: KeyPluginError, Message: "plugin p failed: unknown service", RequestLevel: true}},
		"plain error": {errors.New("boom"),
			&pluginv1.Failure{Status: 500, Key: KeyPluginError, Message: "plugin p failed: boom", RequestLevel: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := TransportFailure("p", tc.err); !proto.Equal(got, tc.want) {
				t.Fatalf("TransportFailure = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := map[string]struct {
		in, want *pluginv1.Failure
	}{
		"nil":          {nil, nil},
		"valid":        {&pluginv1.Failure{Status: 412, Message: "m"}, &pluginv1.Failure{Status: 412, Message: "m"}},
		"no status":    {&pluginv1.Failure{Message: "m", Retriable: true}, &pluginv1.Failure{Status: 500, Message: "m", Retriable: true}},
		"out of range": {&pluginv1.Failure{Status: 1000}, &pluginv1.Failure{Status: 500, Message: "Internal Server Error"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Normalize(tc.in); !proto.Equal(got, tc.want) {
				t.Fatalf("Normalize = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApplyAttributes(t *testing.T) {
	tests := map[string]struct {
		start map[string]*structpb.Value
		set   map[string]*structpb.Value
		want  map[string]string
	}{
		"nothing":           {nil, nil, map[string]string{}},
		"set on empty":      {nil, map[string]*structpb.Value{"a": structpb.NewStringValue("1")}, map[string]string{"a": "1"}},
		"overwrite":         {map[string]*structpb.Value{"a": structpb.NewStringValue("0")}, map[string]*structpb.Value{"a": structpb.NewStringValue("1")}, map[string]string{"a": "1"}},
		"null removes":      {map[string]*structpb.Value{"a": structpb.NewStringValue("0"), "b": structpb.NewStringValue("2")}, map[string]*structpb.Value{"a": structpb.NewNullValue()}, map[string]string{"b": "2"}},
		"nil value removes": {map[string]*structpb.Value{"a": structpb.NewStringValue("0")}, map[string]*structpb.Value{"a": nil}, map[string]string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &pluginv1.Context{Attributes: tc.start}
			ApplyAttributes(c, tc.set)
			if len(c.GetAttributes()) != len(tc.want) {
				t.Fatalf("attributes %v, want %v", c.GetAttributes(), tc.want)
			}
			for k, v := range tc.want {
				if got := c.GetAttributes()[k].GetStringValue(); got != v {
					t.Fatalf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// ---------------------------------------------------------------- fakes

type fakePlugin struct {
	name     string
	register func(*grpc.Server)

	mu       sync.Mutex
	clients  *serve.Clients
	down     bool
	restarts []func()
	stops    []func()
}

func startFakePlugin(t *testing.T, name string, register func(*grpc.Server)) *fakePlugin {
	p := &fakePlugin{name: name, register: register}
	p.clients = p.launch(t)
	t.Cleanup(func() {
		for _, s := range p.stops {
			s()
		}
	})
	return p
}

func (p *fakePlugin) launch(t *testing.T) *serve.Clients {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	p.register(gs)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p.stops = append(p.stops, func() { _ = conn.Close(); gs.Stop() })
	return serve.NewClients(conn)
}

func (p *fakePlugin) restart(t *testing.T) {
	c := p.launch(t)
	p.mu.Lock()
	p.clients = c
	fs := p.restarts
	p.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (p *fakePlugin) Name() string { return p.name }
func (p *fakePlugin) Up() bool     { return true }
func (p *fakePlugin) OnRestart(f func()) {
	p.mu.Lock()
	p.restarts = append(p.restarts, f)
	p.mu.Unlock()
}
func (p *fakePlugin) Clients() (*serve.Clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, errors.New("down")
	}
	return p.clients, nil
}

// heldPolicy answers OnMessages batches only when told to, in any order, so
// tests can hold batches in flight and check the correlation by id.
type heldPolicy struct {
	pluginv1.UnimplementedPolicyServer
	received chan *pluginv1.OnMessages_Request
	mu       sync.Mutex
	streams  []pluginv1.Policy_OnMessagesServer
}

func newHeldPolicy() *heldPolicy {
	return &heldPolicy{received: make(chan *pluginv1.OnMessages_Request, 16)}
}

func (h *heldPolicy) OnMessages(stream pluginv1.Policy_OnMessagesServer) error {
	h.mu.Lock()
	h.streams = append(h.streams, stream)
	h.mu.Unlock()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		h.received <- req
	}
}

// answer replies to req on the latest stream, tagging the content with the
// instance it was meant for.
func (h *heldPolicy) answer(req *pluginv1.OnMessages_Request) error {
	h.mu.Lock()
	s := h.streams[len(h.streams)-1]
	h.mu.Unlock()
	msgs := []*pluginv1.Message{{Content: []byte(req.GetInstanceId() + ":" + string(req.GetMessages()[0].GetContent()))}}
	return s.Send(&pluginv1.OnMessages_Response{BatchId: req.GetBatchId(), Messages: msgs})
}

func (h *heldPolicy) streamCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

func (h *heldPolicy) next(t *testing.T) *pluginv1.OnMessages_Request {
	t.Helper()
	select {
	case r := <-h.received:
		return r
	case <-time.After(waitLimit):
		t.Fatal("no batch reached the policy")
		return nil
	}
}

type result struct {
	msgs []*pluginv1.Message
	f    *pluginv1.Failure
}

func call(e *Engine, p *PolicyInstance, content string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		msgs, f := e.OnMessages(context.Background(), PhasePublish, []*PolicyInstance{p}, &pluginv1.Context{}, []*pluginv1.Message{{Content: []byte(content)}})
		ch <- result{msgs, f}
	}()
	return ch
}

func TestOnMessagesMultiplexesOneStream(t *testing.T) {
	h := newHeldPolicy()
	p := startFakePlugin(t, "pol", func(s *grpc.Server) { pluginv1.RegisterPolicyServer(s, h) })
	e := NewEngine()
	defer e.Close()
	a := call(e, &PolicyInstance{InstanceID: "a", Plugin: p}, "1")
	ra := h.next(t)
	b := call(e, &PolicyInstance{InstanceID: "b", Plugin: p}, "2")
	rb := h.next(t)
	if ra.GetBatchId() == rb.GetBatchId() || ra.GetPhase() != PhasePublish {
		t.Fatalf("batches %v and %v", ra, rb)
	}
	// Answer out of order: each caller still gets its own result.
	if err := h.answer(rb); err != nil {
		t.Fatal(err)
	}
	if err := h.answer(ra); err != nil {
		t.Fatal(err)
	}
	for want, ch := range map[string]<-chan result{"a:1": a, "b:2": b} {
		r := <-ch
		if r.f != nil || len(r.msgs) != 1 || string(r.msgs[0].GetContent()) != want {
			t.Fatalf("result %v %v, want %q", r.msgs, r.f, want)
		}
	}
	if n := h.streamCount(); n != 1 {
		t.Fatalf("%d streams, want 1 for both batches", n)
	}
}

func TestOnMessagesRestart(t *testing.T) {
	h := newHeldPolicy()
	p := startFakePlugin(t, "pol", func(s *grpc.Server) { pluginv1.RegisterPolicyServer(s, h) })
	e := NewEngine()
	defer e.Close()
	pi := &PolicyInstance{InstanceID: "a", Plugin: p}

	inflight := call(e, pi, "lost")
	h.next(t)
	p.restart(t)
	r := <-inflight
	want := &pluginv1.Failure{Status: 503, Key: KeyPluginUnavailable, Message: "plugin pol is unavailable", Retriable: true, RequestLevel: true}
	if !proto.Equal(r.f, want) {
		t.Fatalf("in-flight batch after restart: %v, want %v", r.f, want)
	}

	// The next batch opens a stream on the new process.
	next := call(e, pi, "again")
	if err := h.answer(h.next(t)); err != nil {
		t.Fatal(err)
	}
	if r := <-next; r.f != nil || string(r.msgs[0].GetContent()) != "a:again" {
		t.Fatalf("after restart: %v %v", r.msgs, r.f)
	}
	if n := h.streamCount(); n != 2 {
		t.Fatalf("%d streams, want 2 (one per process)", n)
	}
}

// brokenPolicy ends its stream with an error after receiving one batch.
type brokenPolicy struct {
	pluginv1.UnimplementedPolicyServer
	mu      sync.Mutex
	streams int
}

func (b *brokenPolicy) OnMessages(stream pluginv1.Policy_OnMessagesServer) error {
	b.mu.Lock()
	b.streams++
	b.mu.Unlock()
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return status.Error(codes.Unavailable, "crashed")
}

func TestOnMessagesBrokenStream(t *testing.T) {
	b := &brokenPolicy{}
	p := startFakePlugin(t, "pol", func(s *grpc.Server) { pluginv1.RegisterPolicyServer(s, b) })
	e := NewEngine()
	defer e.Close()
	pi := &PolicyInstance{InstanceID: "a", Plugin: p}
	for i := range 2 {
		r := <-call(e, pi, "x")
		if r.f.GetStatus() != 503 || !r.f.GetRetriable() {
			t.Fatalf("call %d: %v, want a retriable 503", i, r.f)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams != 2 {
		t.Fatalf("%d streams, want a new one after the broken one", b.streams)
	}
}

func TestOnMessagesNoPolicyNoCall(t *testing.T) {
	p := &fakePlugin{name: "pol", down: true}
	e := NewEngine()
	defer e.Close()
	in := []*pluginv1.Message{{Content: []byte("x")}}
	out, f := e.OnMessages(context.Background(), PhaseSubscribe, nil, &pluginv1.Context{}, in)
	if f != nil || len(out) != 1 || out[0] != in[0] {
		t.Fatalf("empty chain: %v %v", out, f)
	}
	_, f = e.OnMessages(context.Background(), PhaseSubscribe, []*PolicyInstance{{Plugin: p}}, &pluginv1.Context{}, in)
	if f.GetStatus() != 503 || f.GetMessage() != "plugin pol is unavailable" {
		t.Fatalf("down plugin: %v", f)
	}
	if f := e.OnRequest(context.Background(), []*PolicyInstance{{Plugin: p}}, &pluginv1.Context{}); f.GetStatus() != 503 {
		t.Fatalf("down plugin on request: %v", f)
	}
	if f := e.OnRequest(context.Background(), []*PolicyInstance{nil}, &pluginv1.Context{}); f.GetStatus() != 500 {
		t.Fatalf("nil policy: %v", f)
	}
}
