// Package fakeplugin serves fake entrypoint, endpoint and policy plugins
// in-process over real gRPC on loopback, as the plugin host hands plugins to
// the data path, for the tests of the server and the relay: the exchanges
// under test open the same streams they open on real plugin processes.
package fakeplugin

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Plugin is a plugin process served in-process over real gRPC on a loopback
// listener. It satisfies flow.PluginRef, so it goes wherever the data path
// takes a supervised plugin.
type Plugin struct {
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

// Start serves the plugin whose services register adds, until the test
// ends.
func Start(t *testing.T, name string, register func(*grpc.Server), opts ...grpc.ServerOption) *Plugin {
	t.Helper()
	return StartWith(t, name, nil, register, opts...)
}

// StartWith is Start for a plugin announcing protocol features.
func StartWith(t *testing.T, name string, features []string, register func(*grpc.Server), opts ...grpc.ServerOption) *Plugin {
	t.Helper()
	p := &Plugin{name: name, register: register, opts: opts, features: features}
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
func (p *Plugin) launch(t *testing.T) *serve.Clients {
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

// Restart replaces the process, as the supervisor does after a crash.
func (p *Plugin) Restart(t *testing.T) {
	c := p.launch(t)
	p.mu.Lock()
	p.clients = c
	fs := append([]func(){}, p.restarts...)
	p.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// SetDown makes the plugin unavailable (Clients fails), as one the
// supervisor is restarting, or available again.
func (p *Plugin) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// Name is the plugin's name, as the data path logs and fails it.
func (p *Plugin) Name() string { return p.name }

// Clients returns the connection to the current process, or fails while
// the plugin is down.
func (p *Plugin) Clients() (*serve.Clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, errors.New("plugin " + p.name + " is unavailable")
	}
	return p.clients, nil
}

// Up reports whether the plugin is available.
func (p *Plugin) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down
}

// OnRestart registers f to run after each Restart.
func (p *Plugin) OnRestart(f func()) {
	p.mu.Lock()
	p.restarts = append(p.restarts, f)
	p.mu.Unlock()
}

// ---------------------------------------------------------------- entrypoint

// Conn is the fake entrypoint's side of one exchange.
type Conn struct {
	// Open is the exchange's first frame.
	Open *pluginv1.Connect_Open
	// Events are the core's later frames, closed when the stream ends.
	Events chan *pluginv1.Connect_Request
	stream pluginv1.Entrypoint_ConnectServer
}

// Send sends one action to the core.
func (c *Conn) Send(r *pluginv1.Connect_Response) error { return c.stream.Send(r) }

// Respond sends a Respond action.
func (c *Conn) Respond(status int32, body []byte, headers ...*pluginv1.Header) error {
	return c.Send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Respond{Respond: &pluginv1.Connect_Respond{Status: status, Headers: headers, Body: body}}})
}

// Write sends a Write action.
func (c *Conn) Write(text bool, ack uint64, chunks ...[]byte) error {
	return c.Send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Write{Write: &pluginv1.Connect_Write{Chunks: chunks, Text: text, AckThrough: ack}}})
}

// Subscribe asks the core to start the endpoint subscription.
func (c *Conn) Subscribe(qos string) error {
	return c.Send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Subscribe{Subscribe: &pluginv1.Connect_SubscribeStart{Qos: qos}}})
}

// Publish sends a publish batch.
func (c *Conn) Publish(id uint64, msgs ...*pluginv1.Message) error {
	return c.Send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Publish{Publish: &pluginv1.Connect_PublishBatch{BatchId: id, Messages: msgs}}})
}

// Finish ends the exchange's answer.
func (c *Conn) Finish(f *pluginv1.Connect_Finish) error {
	return c.Send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Finish{Finish: f}})
}

// Attr is the string value of an attribute of the exchange's context.
func (c *Conn) Attr(name string) string {
	return c.Open.GetContext().GetAttributes()[name].GetStringValue()
}

// Entrypoint is an entrypoint plugin that runs, for each exchange, the
// handler named by its instance id.
type Entrypoint struct {
	pluginv1.UnimplementedEntrypointServer
	// Handlers are the exchanges' handlers by instance id; the exchange
	// ends when its handler returns.
	Handlers map[string]func(*Conn) error

	mu   sync.Mutex
	ends []*pluginv1.Connect_End
}

// Connect serves one exchange.
func (e *Entrypoint) Connect(stream pluginv1.Entrypoint_ConnectServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	h := e.Handlers[open.GetInstanceId()]
	if h == nil {
		return errors.New("no handler for " + open.GetInstanceId())
	}
	c := &Conn{Open: open, stream: stream, Events: make(chan *pluginv1.Connect_Request, 16)}
	go func() {
		defer close(c.Events)
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
			case c.Events <- ev:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	return h(c)
}

// Ends are the End events the exchanges heard so far.
func (e *Entrypoint) Ends() []*pluginv1.Connect_End {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pluginv1.Connect_End(nil), e.ends...)
}

// ClientGoneEnds counts the End events that said the client was gone.
func (e *Entrypoint) ClientGoneEnds() int {
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

// Endpoint is an endpoint plugin that accepts every publish batch and
// serves subscriptions with a test's function.
type Endpoint struct {
	pluginv1.UnimplementedEndpointServer
	// OnSubscribe serves one subscription after its start request.
	OnSubscribe func(stream pluginv1.Endpoint_SubscribeServer, start *pluginv1.Subscribe_Start) error
	// Feed, when set, receives every published message (for round trips).
	Feed chan *pluginv1.Message

	mu             sync.Mutex
	publishStreams int
	published      []*pluginv1.Publish_Request
}

// Publish records every request and accepts it.
func (e *Endpoint) Publish(stream pluginv1.Endpoint_PublishServer) error {
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
		if e.Feed != nil {
			for _, m := range req.GetMessages() {
				e.Feed <- m
			}
		}
		if err := stream.Send(&pluginv1.Publish_Response{BatchId: req.GetBatchId()}); err != nil {
			return err
		}
	}
}

// Subscribe hands the subscription to OnSubscribe.
func (e *Endpoint) Subscribe(stream pluginv1.Endpoint_SubscribeServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	return e.OnSubscribe(stream, req.GetStart())
}

// Snapshot returns how many Publish streams were opened and every publish
// request received so far.
func (e *Endpoint) Snapshot() (streams int, published []*pluginv1.Publish_Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.publishStreams, append([]*pluginv1.Publish_Request(nil), e.published...)
}

// ---------------------------------------------------------------- policy

// Policy is a policy plugin: its request phase is a test's function, its
// message phases upper-case every message.
type Policy struct {
	pluginv1.UnimplementedPolicyServer
	// Decide answers each OnRequest call.
	Decide func(*pluginv1.OnRequest_Request) *pluginv1.OnRequest_Response

	mu      sync.Mutex
	streams int
}

// OnRequest answers with Decide.
func (p *Policy) OnRequest(_ context.Context, req *pluginv1.OnRequest_Request) (*pluginv1.OnRequest_Response, error) {
	return p.Decide(req), nil
}

// OnMessages upper-cases every message.
func (p *Policy) OnMessages(stream pluginv1.Policy_OnMessagesServer) error {
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

// Streams counts the OnMessages streams opened so far.
func (p *Policy) Streams() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.streams
}
