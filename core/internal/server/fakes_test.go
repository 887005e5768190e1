package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// waitLimit is an upper bound for things that happen promptly; tests never
// depend on how long anything takes, they only give up eventually.
const waitLimit = 10 * time.Second

// fakePlugin is a plugin process served in-process over real gRPC on a
// loopback listener, as the plugin host would hand it to the data path.
type fakePlugin struct {
	name     string
	register func(*grpc.Server)
	opts     []grpc.ServerOption
	features []string

	mu       sync.Mutex
	clients  *serve.Clients
	down     bool
	restarts []func()
	stops    []func()
}

func startFakePlugin(t *testing.T, name string, register func(*grpc.Server), opts ...grpc.ServerOption) *fakePlugin {
	t.Helper()
	return startFakePluginWith(t, name, nil, register, opts...)
}

// startFakePluginWith is startFakePlugin for a plugin announcing protocol
// features.
func startFakePluginWith(t *testing.T, name string, features []string, register func(*grpc.Server), opts ...grpc.ServerOption) *fakePlugin {
	t.Helper()
	p := &fakePlugin{name: name, register: register, opts: opts, features: features}
	p.clients = p.launch(t)
	t.Cleanup(func() {
		p.mu.Lock()
		stops := p.stops
		p.mu.Unlock()
		for _, s := range stops {
			s()
		}
	})
	return p
}

// launch serves a new "process" and connects to it.
func (p *fakePlugin) launch(t *testing.T) *serve.Clients {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append([]grpc.ServerOption{grpc.MaxRecvMsgSize(serve.MaxMessageSize), grpc.MaxSendMsgSize(serve.MaxMessageSize)}, p.opts...)...)
	p.register(gs)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(serve.MaxMessageSize), grpc.MaxCallSendMsgSize(serve.MaxMessageSize)))
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.stops = append(p.stops, func() { _ = conn.Close(); gs.Stop() })
	p.mu.Unlock()
	c := serve.NewClients(conn)
	c.Features = p.features
	return c
}

// restart replaces the process, as the supervisor does after a crash.
func (p *fakePlugin) restart(t *testing.T) {
	c := p.launch(t)
	p.mu.Lock()
	p.clients = c
	fs := append([]func(){}, p.restarts...)
	p.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (p *fakePlugin) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *fakePlugin) Name() string { return p.name }

func (p *fakePlugin) Clients() (*serve.Clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, errors.New("plugin " + p.name + " is unavailable")
	}
	return p.clients, nil
}

func (p *fakePlugin) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down
}

func (p *fakePlugin) OnRestart(f func()) {
	p.mu.Lock()
	p.restarts = append(p.restarts, f)
	p.mu.Unlock()
}

// ---------------------------------------------------------------- entrypoint

// epConn is the fake entrypoint's side of one exchange.
type epConn struct {
	open   *pluginv1.Connect_Open
	stream pluginv1.Entrypoint_ConnectServer
	events chan *pluginv1.Connect_Request
}

func (c *epConn) send(r *pluginv1.Connect_Response) error { return c.stream.Send(r) }

func (c *epConn) respond(status int32, body []byte, headers ...*pluginv1.Header) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Respond{Respond: &pluginv1.Connect_Respond{Status: status, Headers: headers, Body: body}}})
}

func (c *epConn) write(text bool, ack uint64, chunks ...[]byte) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Write{Write: &pluginv1.Connect_Write{Chunks: chunks, Text: text, AckThrough: ack}}})
}

func (c *epConn) subscribe(qos string) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Subscribe{Subscribe: &pluginv1.Connect_SubscribeStart{Qos: qos}}})
}

func (c *epConn) publish(id uint64, msgs ...*pluginv1.Message) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Publish{Publish: &pluginv1.Connect_PublishBatch{BatchId: id, Messages: msgs}}})
}

func (c *epConn) finish(f *pluginv1.Connect_Finish) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Finish{Finish: f}})
}

func (c *epConn) attr(name string) string {
	return c.open.GetContext().GetAttributes()[name].GetStringValue()
}

// fakeEntrypoint runs the handler named by the instance id.
type fakeEntrypoint struct {
	pluginv1.UnimplementedEntrypointServer
	handlers map[string]func(*epConn) error

	mu   sync.Mutex
	ends []*pluginv1.Connect_End
}

func (e *fakeEntrypoint) Connect(stream pluginv1.Entrypoint_ConnectServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	h := e.handlers[open.GetInstanceId()]
	if h == nil {
		return errors.New("no handler for " + open.GetInstanceId())
	}
	c := &epConn{open: open, stream: stream, events: make(chan *pluginv1.Connect_Request, 16)}
	go func() {
		defer close(c.events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			if end := ev.GetEnd(); end != nil {
				e.mu.Lock()
				e.ends = append(e.ends, end)
				e.mu.Unlock()
			}
			select {
			case c.events <- ev:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	return h(c)
}

func (e *fakeEntrypoint) clientGoneEnds() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, end := range e.ends {
		if end.GetClientGone() {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- endpoint

type fakeEndpoint struct {
	pluginv1.UnimplementedEndpointServer
	subscribe func(stream pluginv1.Endpoint_SubscribeServer, start *pluginv1.Subscribe_Start) error
	// feed, when set, receives every published message (for round trips).
	feed chan *pluginv1.Message

	mu             sync.Mutex
	publishStreams int
	published      []*pluginv1.Publish_Request
}

func (e *fakeEndpoint) Publish(stream pluginv1.Endpoint_PublishServer) error {
	e.mu.Lock()
	e.publishStreams++
	e.mu.Unlock()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		e.mu.Lock()
		e.published = append(e.published, req)
		e.mu.Unlock()
		if e.feed != nil {
			for _, m := range req.GetMessages() {
				e.feed <- m
			}
		}
		if err := stream.Send(&pluginv1.Publish_Response{BatchId: req.GetBatchId()}); err != nil {
			return err
		}
	}
}

func (e *fakeEndpoint) Subscribe(stream pluginv1.Endpoint_SubscribeServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	return e.subscribe(stream, req.GetStart())
}

func (e *fakeEndpoint) snapshot() (streams int, published []*pluginv1.Publish_Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.publishStreams, append([]*pluginv1.Publish_Request(nil), e.published...)
}

// ---------------------------------------------------------------- policy

type fakePolicy struct {
	pluginv1.UnimplementedPolicyServer
	onRequest func(*pluginv1.OnRequest_Request) *pluginv1.OnRequest_Response

	mu      sync.Mutex
	streams int
}

func (p *fakePolicy) OnRequest(_ context.Context, req *pluginv1.OnRequest_Request) (*pluginv1.OnRequest_Response, error) {
	return p.onRequest(req), nil
}

// OnMessages upper-cases every message and tags it with the phase.
func (p *fakePolicy) OnMessages(stream pluginv1.Policy_OnMessagesServer) error {
	p.mu.Lock()
	p.streams++
	p.mu.Unlock()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		for _, m := range req.GetMessages() {
			m.Content = bytes.ToUpper(m.GetContent())
		}
		if err := stream.Send(&pluginv1.OnMessages_Response{BatchId: req.GetBatchId(), Messages: req.GetMessages()}); err != nil {
			return err
		}
	}
}

// ---------------------------------------------------------------- socket

// recordingListener records every byte the server wrote successfully to any
// connection, so a test can check what was on the wire when something else
// happened.
type recordingListener struct {
	net.Listener
	mu      sync.Mutex
	written bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

func (l *recordingListener) wrote(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.written.Bytes(), []byte(s))
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.mu.Lock()
	c.l.written.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// streamReader reads a response progressively: until returns everything up
// to and including the next occurrence of want, keeping the rest for later.
type streamReader struct {
	r   io.Reader
	buf []byte
}

func (s *streamReader) until(t *testing.T, want string) string {
	t.Helper()
	chunk := make([]byte, 4096)
	for !bytes.Contains(s.buf, []byte(want)) {
		n, err := s.r.Read(chunk)
		s.buf = append(s.buf, chunk[:n]...)
		if err != nil {
			t.Fatalf("reading until %q: %v (got %q)", want, err, s.buf)
		}
	}
	i := bytes.Index(s.buf, []byte(want)) + len(want)
	out := string(s.buf[:i])
	s.buf = s.buf[i:]
	return out
}

// dechunk returns the data of an HTTP/1.1 chunked body read so far.
func dechunk(t *testing.T, raw string) string {
	t.Helper()
	var out strings.Builder
	for raw != "" {
		raw = strings.TrimPrefix(raw, "\r\n")
		i := strings.Index(raw, "\r\n")
		if i < 0 {
			t.Fatalf("chunked body: no size line in %q", raw)
		}
		n, err := strconv.ParseInt(raw[:i], 16, 64)
		if err != nil || int(n) > len(raw)-i-2 {
			t.Fatalf("chunked body: bad chunk %q", raw)
		}
		out.WriteString(raw[i+2 : i+2+int(n)])
		raw = raw[i+2+int(n):]
	}
	return out.String()
}
