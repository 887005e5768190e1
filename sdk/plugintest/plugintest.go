// Package plugintest runs a plugin in-process behind real gRPC, the way the
// core talks to it, so plugin tests exercise the wire conversions and the
// stream handling of sdk/serve with -race and coverage.
//
// A test starts a harness with Start and drives the plugin through it:
//
//	h := plugintest.Start(t, myplugin.New())
//	if d := h.Configure(t, "i1", "kafka", cfg); d.HasErrors() {
//		t.Fatal(d.Err())
//	}
//	if f := h.Publish(t, "i1", ctx, msg); f != nil {
//		t.Fatal(f)
//	}
//
// Every method fails the test (t.Fatal) on transport errors, so tests only
// check what the plugin answered. Timeouts are upper bounds for a plugin that
// misbehaves; tests never depend on how long anything takes.
//
// The plugin is served by the same code as sdk/serve.Serve, on a loopback
// gRPC server with the same message-size limits; only go-plugin's process
// handshake is left out.
package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/grpcserver"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/schema"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// DefaultTimeout is the default of Harness.Timeout.
const DefaultTimeout = 30 * time.Second

// Harness is one plugin served in-process over gRPC. It is safe for
// concurrent use: many publishes, subscriptions and exchanges may run at once,
// as they do in the core.
type Harness struct {
	// Clients are the raw gRPC clients, for tests that need to speak the wire
	// protocol directly.
	Clients *serve.Clients
	// Timeout bounds every call that takes no timeout of its own (the
	// lifecycle calls, Publish, OnRequest, OnMessages) and the wait for the
	// plugin's calls to return when the harness closes. Default DefaultTimeout.
	Timeout time.Duration
	// SkipSchema sends configurations to the plugin as they are. By default
	// Validate and Configure first check them against the type's declared
	// schema, as the core does (unknown attributes and blocks, required
	// ones, value types, enums), and return those diagnostics without
	// calling the plugin, since the core would not call it either. Set it
	// to test the plugin's own decoding of values the core never sends.
	SkipSchema bool

	schemas    map[string]schema.Schema // by type name and alias; nil until needed
	ctx        context.Context          // cancelled when the harness closes
	publish    batchMux[pluginv1.Publish_Request, pluginv1.Publish_Response]
	onMessages batchMux[pluginv1.OnMessages_Request, pluginv1.OnMessages_Response]
}

// Start serves p on a loopback gRPC server with the same services and message
// limits as serve.Serve, and connects to it. p must implement exactly one of
// endpoint.Endpoint, entrypoint.Entrypoint and policy.Policy, and its
// Metadata must pass the checks of serve.Serve. Plugin errors hidden from
// clients (the "unknown error" failures) are logged through t.Log.
//
// Everything is closed at t.Cleanup: open streams are cancelled, and the test
// fails if the plugin's calls have not returned within Timeout after that
// (a Subscribe or Connect that ignores its context).
func Start(t testing.TB, p lifecycle.Plugin) *Harness {
	t.Helper()
	tw := &testWriter{t: t}
	srv, err := grpcserver.New(p, slog.New(slog.NewTextHandler(tw, nil)))
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("plugintest: listen: %v", err)
	}
	gs := grpc.NewServer(append(grpcserver.ServerOptions(serve.MaxMessageSize), grpc.WaitForHandlers(true))...)
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(),
		append(serve.GRPCDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		gs.Stop()
		t.Fatalf("plugintest: dial: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Harness{Clients: serve.NewClients(conn), Timeout: DefaultTimeout, ctx: ctx}
	h.publish.open = func(ctx context.Context) (bidi[pluginv1.Publish_Request, pluginv1.Publish_Response], error) {
		return h.Clients.Endpoint.Publish(ctx)
	}
	h.publish.id = (*pluginv1.Publish_Response).GetBatchId
	h.onMessages.open = func(ctx context.Context) (bidi[pluginv1.OnMessages_Request, pluginv1.OnMessages_Response], error) {
		return h.Clients.Policy.OnMessages(ctx)
	}
	h.onMessages.id = (*pluginv1.OnMessages_Response).GetBatchId

	t.Cleanup(func() {
		cancel()
		_ = conn.Close()
		stopped := make(chan struct{})
		go func() {
			gs.Stop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(h.timeout()):
			t.Errorf("plugintest: the plugin's calls were still running %v after the harness closed; "+
				"Subscribe and Connect must return when their context ends", h.timeout())
		}
		tw.close()
	})
	return h
}

func (h *Harness) timeout() time.Duration {
	if h.Timeout <= 0 {
		return DefaultTimeout
	}
	return h.Timeout
}

// callContext bounds one unary call.
func (h *Harness) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, h.timeout())
}

// Metadata calls GetMetadata and converts the answer back to Go, so a test
// sees what the core will see after the round trip.
func (h *Harness) Metadata(t testing.TB) lifecycle.Metadata {
	t.Helper()
	ctx, cancel := h.callContext()
	defer cancel()
	resp, err := h.Clients.Plugin.GetMetadata(ctx, &pluginv1.GetMetadata_Request{})
	if err != nil {
		t.Fatalf("plugintest: GetMetadata: %v", err)
	}
	md, err := wire.MetadataFromWire(resp)
	if err != nil {
		t.Fatalf("plugintest: GetMetadata: %v", err)
	}
	return md
}

// configJSON encodes a configuration argument; see Validate.
func configJSON(t testing.TB, config any) []byte {
	t.Helper()
	switch c := config.(type) {
	case nil:
		return []byte("{}")
	case []byte:
		return c
	case json.RawMessage:
		return c
	}
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatalf("plugintest: encode config: %v", err)
	}
	return b
}

// Validate calls ValidateConfig. config is marshalled to JSON, except []byte
// and json.RawMessage, which are sent as they are (to test invalid JSON), and
// nil, which is sent as {} (an empty block). The configuration is first
// checked against the type's schema, as the core does (see SkipSchema).
func (h *Harness) Validate(t testing.TB, typ string, config any) lifecycle.Diagnostics {
	t.Helper()
	ctx, cancel := h.callContext()
	defer cancel()
	data := configJSON(t, config)
	if diags := h.checkSchema(t, typ, data); diags.HasErrors() {
		return diags
	}
	resp, err := h.Clients.Plugin.ValidateConfig(ctx, &pluginv1.ValidateConfig_Request{Type: typ, ConfigJson: data})
	if err != nil {
		t.Fatalf("plugintest: ValidateConfig: %v", err)
	}
	return wire.DiagnosticsFromWire(resp.GetDiagnostics())
}

// Configure calls Configure for instanceID with the API id "api"; config is
// encoded as for Validate.
func (h *Harness) Configure(t testing.TB, instanceID, typ string, config any) lifecycle.Diagnostics {
	t.Helper()
	return h.ConfigureAPI(t, instanceID, typ, "api", config)
}

// ConfigureAPI is Configure with an explicit API id.
func (h *Harness) ConfigureAPI(t testing.TB, instanceID, typ, apiID string, config any) lifecycle.Diagnostics {
	t.Helper()
	ctx, cancel := h.callContext()
	defer cancel()
	data := configJSON(t, config)
	if diags := h.checkSchema(t, typ, data); diags.HasErrors() {
		return diags
	}
	resp, err := h.Clients.Plugin.Configure(ctx, &pluginv1.Configure_Request{
		InstanceId: instanceID,
		Type:       typ,
		ApiId:      apiID,
		ConfigJson: data,
	})
	if err != nil {
		t.Fatalf("plugintest: Configure: %v", err)
	}
	return wire.DiagnosticsFromWire(resp.GetDiagnostics())
}

// checkSchema checks data against the declared schema of typ, as the core
// does before it calls the plugin. A type the plugin does not declare is
// left to the plugin, which reports it.
func (h *Harness) checkSchema(t testing.TB, typ string, data []byte) lifecycle.Diagnostics {
	t.Helper()
	// Bytes that are not JSON at all are a test of the plugin's own
	// decoding (the core never sends them): they go through as they are.
	if h.SkipSchema || !json.Valid(data) {
		return nil
	}
	if h.schemas == nil {
		h.schemas = map[string]schema.Schema{}
		for _, ti := range h.Metadata(t).Types {
			h.schemas[ti.Name] = ti.Schema
			for _, a := range ti.Aliases {
				h.schemas[a] = ti.Schema
			}
		}
	}
	s, ok := h.schemas[typ]
	if !ok {
		return nil
	}
	var diags lifecycle.Diagnostics
	for _, p := range s.CheckJSON(data) {
		diags = append(diags, lifecycle.Diagnostic{Severity: lifecycle.Error, Summary: p.Summary, Detail: p.Detail, Path: p.Path})
	}
	return diags
}

// Unconfigure calls Unconfigure for instanceID.
func (h *Harness) Unconfigure(t testing.TB, instanceID string) {
	t.Helper()
	ctx, cancel := h.callContext()
	defer cancel()
	if _, err := h.Clients.Plugin.Unconfigure(ctx, &pluginv1.Unconfigure_Request{InstanceId: instanceID}); err != nil {
		t.Fatalf("plugintest: Unconfigure: %v", err)
	}
}

// Drain calls Drain with the given deadline and returns the plugin's error as
// a gRPC status error (nil when it drained, or does not implement
// lifecycle.Drainer).
func (h *Harness) Drain(t testing.TB, deadline time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, deadline+h.timeout())
	defer cancel()
	_, err := h.Clients.Plugin.Drain(ctx, &pluginv1.Drain_Request{DeadlineMs: deadline.Milliseconds()})
	return err
}

// CheckHealth calls CheckHealth and returns the plugin's answer, as the
// core reads it. A plugin that does not implement lifecycle.HealthChecker
// answers Unimplemented: the error is returned (a gRPC status error), and
// the core would count its instances as ready.
func (h *Harness) CheckHealth(t testing.TB) ([]lifecycle.InstanceHealth, error) {
	t.Helper()
	ctx, cancel := h.callContext()
	defer cancel()
	resp, err := h.Clients.Plugin.CheckHealth(ctx, &pluginv1.CheckHealth_Request{})
	if err != nil {
		return nil, err
	}
	out := make([]lifecycle.InstanceHealth, 0, len(resp.GetInstances()))
	for _, i := range resp.GetInstances() {
		out = append(out, lifecycle.InstanceHealth{InstanceID: i.GetInstanceId(), Ready: i.GetReady(), Reason: i.GetReason()})
	}
	return out, nil
}

// Publish sends one batch through the harness's shared, multiplexed Publish
// stream (as the core does) and waits for its result: nil when every message
// was accepted, the plugin's failure otherwise.
func (h *Harness) Publish(t testing.TB, instanceID string, c *gateway.Context, msgs ...*gateway.Message) *gateway.Failure {
	t.Helper()
	resp, err := h.publish.call(h.ctx, h.timeout(), func(id uint64) (*pluginv1.Publish_Request, error) {
		ctxW, err := wire.ContextToWire(c)
		if err != nil {
			return nil, err
		}
		ms, err := wire.MessagesToWire(msgs)
		if err != nil {
			return nil, err
		}
		return &pluginv1.Publish_Request{BatchId: id, InstanceId: instanceID, Context: ctxW, Messages: ms}, nil
	})
	if err != nil {
		t.Fatalf("plugintest: Publish: %v", err)
	}
	return wire.FailureFromWire(resp.GetFailure())
}

// OnRequest calls the policy's OnRequest and returns the attributes it sets
// (a nil value removes one) and its interrupt failure.
func (h *Harness) OnRequest(t testing.TB, instanceID string, c *gateway.Context) (map[string]any, *gateway.Failure) {
	t.Helper()
	req, err := wire.RequestPhaseToWire(&policy.RequestPhase{InstanceID: instanceID, Context: c})
	if err != nil {
		t.Fatalf("plugintest: OnRequest: %v", err)
	}
	ctx, cancel := h.callContext()
	defer cancel()
	resp, err := h.Clients.Policy.OnRequest(ctx, req)
	if err != nil {
		t.Fatalf("plugintest: OnRequest: %v", err)
	}
	out := wire.RequestResultFromWire(resp)
	return out.SetAttributes, out.Interrupt
}

// OnPhase calls the policy's OnRequest with in as the core sends it, in
// either per-request phase, and returns the whole result: attributes,
// header changes and interrupt. in.Phase empty is the request phase.
func (h *Harness) OnPhase(t testing.TB, in *policy.RequestPhase) *policy.RequestResult {
	t.Helper()
	req, err := wire.RequestPhaseToWire(in)
	if err != nil {
		t.Fatalf("plugintest: OnRequest: %v", err)
	}
	ctx, cancel := h.callContext()
	defer cancel()
	resp, err := h.Clients.Policy.OnRequest(ctx, req)
	if err != nil {
		t.Fatalf("plugintest: OnRequest: %v", err)
	}
	return wire.RequestResultFromWire(resp)
}

// OnResponse runs the policy in the response phase on a response with this
// status and headers, and returns what it changes.
func (h *Harness) OnResponse(t testing.TB, instanceID string, c *gateway.Context, status int, headers gateway.Headers) *policy.RequestResult {
	t.Helper()
	return h.OnPhase(t, &policy.RequestPhase{
		InstanceID:      instanceID,
		Phase:           policy.PhaseResponse,
		Context:         c,
		ResponseStatus:  status,
		ResponseHeaders: headers,
	})
}

// OnMessages sends one batch through the harness's shared, multiplexed
// OnMessages stream and returns the messages passed on (empty, not nil, when
// the policy dropped them all), or the interrupt.
func (h *Harness) OnMessages(t testing.TB, instanceID, phase string, c *gateway.Context, msgs ...*gateway.Message) ([]*gateway.Message, *gateway.Failure) {
	t.Helper()
	resp, err := h.onMessages.call(h.ctx, h.timeout(), func(id uint64) (*pluginv1.OnMessages_Request, error) {
		return wire.MessagesPhaseToWire(id, &policy.MessagesPhase{InstanceID: instanceID, Phase: phase, Context: c, Messages: msgs})
	})
	if err != nil {
		t.Fatalf("plugintest: OnMessages: %v", err)
	}
	if f := wire.FailureFromWire(resp.GetInterrupt()); f != nil {
		return nil, f
	}
	out := wire.MessagesFromWire(resp.GetMessages())
	if out == nil {
		out = []*gateway.Message{}
	}
	return out, nil
}

// bidi is the client side of a bidirectional stream.
type bidi[Req, Resp any] interface {
	Send(*Req) error
	Recv() (*Resp, error)
}

// batchMux shares one multiplexed stream between concurrent callers,
// matching responses to requests by batch id as the core does. It also
// checks the server's side of the contract: exactly one response per batch.
type batchMux[Req, Resp any] struct {
	open func(context.Context) (bidi[Req, Resp], error)
	id   func(*Resp) uint64

	once    sync.Once
	stream  bidi[Req, Resp]
	openErr error

	sendMu sync.Mutex

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *Resp
	err     error // why the stream ended, or a contract violation
}

func (m *batchMux[Req, Resp]) start(ctx context.Context) error {
	m.once.Do(func() {
		m.pending = map[uint64]chan *Resp{}
		m.stream, m.openErr = m.open(ctx)
		if m.openErr == nil {
			go m.receive()
		}
	})
	return m.openErr
}

func (m *batchMux[Req, Resp]) receive() {
	for {
		r, err := m.stream.Recv()
		m.mu.Lock()
		if err != nil {
			if m.err == nil {
				m.err = fmt.Errorf("stream ended: %w", err)
			}
			for id, ch := range m.pending {
				close(ch)
				delete(m.pending, id)
			}
			m.mu.Unlock()
			return
		}
		id := m.id(r)
		ch, ok := m.pending[id]
		delete(m.pending, id)
		if !ok && m.err == nil {
			m.err = fmt.Errorf("unexpected response for batch %d: unknown, or answered twice", id)
		}
		m.mu.Unlock()
		if ok {
			ch <- r
		}
	}
}

// call sends the request build makes for a fresh batch id and waits for its
// response.
func (m *batchMux[Req, Resp]) call(ctx context.Context, timeout time.Duration, build func(uint64) (*Req, error)) (*Resp, error) {
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return nil, err
	}
	m.nextID++
	id := m.nextID
	ch := make(chan *Resp, 1)
	m.pending[id] = ch
	m.mu.Unlock()
	forget := func() {
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}

	req, err := build(id)
	if err != nil {
		forget()
		return nil, err
	}
	m.sendMu.Lock()
	err = m.stream.Send(req)
	m.sendMu.Unlock()
	if err != nil {
		forget()
		return nil, fmt.Errorf("send: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r, ok := <-ch:
		if !ok {
			m.mu.Lock()
			defer m.mu.Unlock()
			return nil, m.err
		}
		return r, nil
	case <-timer.C:
		forget()
		return nil, fmt.Errorf("no response for batch %d within %v", id, timeout)
	}
}

// testWriter sends the plugin's hidden errors to the test log, until the test
// is over (logging after that panics).
type testWriter struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log("plugin: " + strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
