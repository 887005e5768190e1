package flow

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Stream is the client side of a bidirectional gRPC stream, as the generated
// clients return it.
type Stream[Req, Resp any] interface {
	Send(Req) error
	Recv() (Resp, error)
	CloseSend() error
}

// MuxSpec tells a Mux how to open its stream and how requests and responses
// carry their correlation id.
type MuxSpec[Req, Resp any] struct {
	// Open opens the long-lived stream on the plugin's current clients.
	Open func(ctx context.Context, c *serve.Clients) (Stream[Req, Resp], error)
	// SetID stamps a request with its correlation id.
	SetID func(Req, uint64)
	// ID reads the correlation id of a response.
	ID func(Resp) uint64
}

// Mux multiplexes calls over one long-lived stream per plugin process: every
// call sends one request stamped with a fresh id and waits for the response
// with the same id. This is how publish batches and policy batches of every
// request share a single stream (docs/architecture.md, "Data path": never one RPC per message).
//
// The stream is opened on the first call and reopened lazily when the plugin
// was restarted (its clients changed, or OnRestart fired) or the stream
// broke; calls in flight on a broken stream fail with a retriable 503. A Mux
// is safe for concurrent use.
type Mux[Req, Resp any] struct {
	plugin PluginRef
	spec   MuxSpec[Req, Resp]

	mu     sync.Mutex
	cur    *muxStream[Req, Resp]
	nextID uint64
	closed bool
}

type muxResult[Resp any] struct {
	resp    Resp
	failure *pluginv1.Failure
}

type muxStream[Req, Resp any] struct {
	clients *serve.Clients
	stream  Stream[Req, Resp]
	cancel  context.CancelFunc
	sendMu  sync.Mutex
	// pending is nil once the stream is dead (guarded by Mux.mu).
	pending map[uint64]chan muxResult[Resp]
}

// NewMux returns a Mux for plugin. It registers for the plugin's restarts, so
// create one per plugin and keep it.
func NewMux[Req, Resp any](plugin PluginRef, spec MuxSpec[Req, Resp]) *Mux[Req, Resp] {
	m := &Mux[Req, Resp]{plugin: plugin, spec: spec}
	plugin.OnRestart(m.restarted)
	return m
}

// Call sends req on the shared stream and waits for its response, or for ctx.
// The failure is set when the plugin is unavailable, the stream broke, or ctx
// ended first.
func (m *Mux[Req, Resp]) Call(ctx context.Context, req Req) (Resp, *pluginv1.Failure) {
	var zero Resp
	name := m.plugin.Name()
	clients, err := m.plugin.Clients()
	if err != nil || clients == nil {
		return zero, Unavailable(name)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return zero, Unavailable(name)
	}
	s := m.cur
	if s == nil || s.pending == nil || s.clients != clients {
		if s != nil && s.pending != nil {
			// The process was replaced: the old stream is gone with it.
			m.failLocked(s, Unavailable(name))
		}
		sctx, cancel := context.WithCancel(context.Background())
		st, err := m.spec.Open(sctx, clients)
		if err != nil {
			cancel()
			m.mu.Unlock()
			return zero, TransportFailure(name, err)
		}
		s = &muxStream[Req, Resp]{clients: clients, stream: st, cancel: cancel, pending: map[uint64]chan muxResult[Resp]{}}
		m.cur = s
		go m.recvLoop(s)
	}
	m.nextID++
	id := m.nextID
	ch := make(chan muxResult[Resp], 1)
	s.pending[id] = ch
	m.mu.Unlock()

	m.spec.SetID(req, id)
	s.sendMu.Lock()
	err = s.stream.Send(req)
	s.sendMu.Unlock()
	if err != nil {
		// The receive loop reports the stream's real error and fails every
		// pending call, this one included.
		m.fail(s, m.brokenFailure(err))
	}
	select {
	case r := <-ch:
		return r.resp, r.failure
	case <-ctx.Done():
		m.mu.Lock()
		if s.pending != nil {
			delete(s.pending, id)
		}
		m.mu.Unlock()
		return zero, TransportFailure(name, ctx.Err())
	}
}

func (m *Mux[Req, Resp]) recvLoop(s *muxStream[Req, Resp]) {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			m.fail(s, m.brokenFailure(err))
			return
		}
		id := m.spec.ID(resp)
		m.mu.Lock()
		var ch chan muxResult[Resp]
		if s.pending != nil {
			ch = s.pending[id]
			delete(s.pending, id)
		}
		m.mu.Unlock()
		if ch != nil {
			ch <- muxResult[Resp]{resp: resp}
		}
	}
}

// brokenFailure is what calls in flight get when the stream breaks: a
// transport hiccup or a restart is retriable (503); a plugin that does not
// serve the stream at all is a configuration problem and says so.
func (m *Mux[Req, Resp]) brokenFailure(err error) *pluginv1.Failure {
	if errors.Is(err, io.EOF) {
		return Unavailable(m.plugin.Name())
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.Canceled, codes.Aborted:
			return Unavailable(m.plugin.Name())
		}
	}
	return TransportFailure(m.plugin.Name(), err)
}

func (m *Mux[Req, Resp]) fail(s *muxStream[Req, Resp], f *pluginv1.Failure) {
	m.mu.Lock()
	m.failLocked(s, f)
	m.mu.Unlock()
}

func (m *Mux[Req, Resp]) failLocked(s *muxStream[Req, Resp], f *pluginv1.Failure) {
	if m.cur == s {
		m.cur = nil
	}
	pending := s.pending
	s.pending = nil
	if pending == nil {
		return
	}
	s.cancel()
	for _, ch := range pending {
		ch <- muxResult[Resp]{failure: f}
	}
}

// restarted drops a stream opened on the previous process. A stream already
// reopened on the new process (a call may come between the plugin being up
// again and this callback) is kept.
func (m *Mux[Req, Resp]) restarted() {
	clients, err := m.plugin.Clients()
	m.mu.Lock()
	if s := m.cur; s != nil && (err != nil || s.clients != clients) {
		m.failLocked(s, Unavailable(m.plugin.Name()))
	}
	m.mu.Unlock()
}

// Close tears the stream down and fails calls in flight; later calls answer
// 503.
func (m *Mux[Req, Resp]) Close() {
	m.mu.Lock()
	m.closed = true
	if s := m.cur; s != nil {
		m.failLocked(s, Unavailable(m.plugin.Name()))
	}
	m.mu.Unlock()
}
