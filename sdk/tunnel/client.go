// Package tunnel carries the data-path calls between the core and a plugin
// process on one long-lived gRPC stream (the Tunnel service of
// sdk/proto/v1).
//
// Without it every client exchange opened an HTTP/2 stream of its own, and
// every message was a gRPC message of its own: a POST cost six process
// crossings of separate gRPC messages. Through a tunnel, opening a call is
// one frame, and the frames of all calls that are ready when a side writes
// travel in one gRPC message. Both ends keep the ordinary generated client
// and server code: Client is a grpc.ClientConnInterface and Server a
// grpc.ServiceRegistrar, so a service works the same tunnelled or not.
package tunnel

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Feature is the GetMetadata feature a plugin announces when it serves the
// Tunnel service.
const Feature = "tunnel"

// FeatureSameContext is the GetMetadata feature of a plugin that reads
// Publish.Request.same_context: the core then sends an exchange's context
// once on the exchange's own Publish call. It lives here, beside Feature,
// because the core and the sdk's server both name it.
const FeatureSameContext = "same-context"

// Client opens calls through a tunnel on conn. The tunnel stream opens on
// the first call and again after it broke; Close ends it.
type Client struct {
	conn grpc.ClientConnInterface

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	link   *link
	nextID atomic.Uint64
}

var _ grpc.ClientConnInterface = (*Client)(nil)

// NewClient returns a client whose calls travel in a tunnel on conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{conn: conn, ctx: ctx, cancel: cancel}
}

// Close ends the tunnel; calls in flight fail with Unavailable.
func (t *Client) Close() {
	t.cancel()
	t.mu.Lock()
	l := t.link
	t.mu.Unlock()
	if l != nil {
		l.fail(status.Error(codes.Unavailable, "tunnel closed"))
	}
}

// current returns the working link, opening a new tunnel stream when there
// is none.
func (t *Client) current() (*link, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.link != nil {
		select {
		case <-t.link.done:
		default:
			return t.link, nil
		}
	}
	if err := t.ctx.Err(); err != nil {
		return nil, status.Error(codes.Unavailable, "tunnel closed")
	}
	stream, err := pluginv1.NewTunnelClient(t.conn).Open(t.ctx, grpc.ForceCodecV2(Codec))
	if err != nil {
		return nil, err
	}
	l := newLink(func(p *RawParts) error { return stream.SendMsg(p) })
	go func() {
		for {
			var b RawFrame
			if err := stream.RecvMsg(&b); err != nil {
				l.fail(status.Errorf(codes.Unavailable, "plugin connection lost: %v", err))
				return
			}
			if err := decodeBatch(b, func(f *frame) { clientDispatch(l, f) }); err != nil {
				l.fail(status.Error(codes.Internal, err.Error()))
				return
			}
		}
	}()
	t.link = l
	return l, nil
}

// clientDispatch hands one frame from the plugin to its call. Frames of
// calls already given up are dropped.
func clientDispatch(l *link, f *frame) {
	c := l.lookup(f.call)
	if c == nil {
		return
	}
	var end error
	if f.end != nil {
		end = statusOf(f.end)
		l.remove(f.call)
	}
	c.deliver(f, end)
	if f.end != nil {
		c.mu.Lock()
		c.sendDone, c.ended = true, true
		c.mu.Unlock()
		signal(c.creditMore)
	}
}

func (t *Client) open(ctx context.Context, method string) (*clientStream, error) {
	l, err := t.current()
	if err != nil {
		return nil, err
	}
	id := t.nextID.Add(1)
	cs := &clientStream{call: newCall(id, l, ctx), method: method}
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return nil, err
	}
	l.calls[id] = cs.call
	l.mu.Unlock()
	cs.stopCancel = context.AfterFunc(ctx, cs.cancelled)
	return cs, nil
}

// NewStream opens a call. Options are ignored: the tunnel always uses
// Codec, and its limits are the tunnel stream's.
func (t *Client) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return t.open(ctx, method)
}

// Invoke makes a unary call: one frame out (method, request, close-send),
// one frame back (response and status).
func (t *Client) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	cs, err := t.open(ctx, method)
	if err != nil {
		return err
	}
	defer cs.stopCancel()
	if err := cs.sendFirst(args, true); err != nil {
		if err == io.EOF {
			_, err = cs.call.recv(ctxStatus)
		}
		return err
	}
	p, err := cs.call.recv(ctxStatus)
	if err == io.EOF {
		return status.Error(codes.Internal, "tunnel: unary call ended without a response")
	}
	if err != nil {
		return err
	}
	return unmarshalPayload(p, reply)
}

// clientStream is the core's side of one tunnelled call.
type clientStream struct {
	*call
	method     string
	opened     bool // the method was sent (under call.mu)
	stopCancel func() bool
}

func ctxStatus(err error) error { return status.FromContextError(err).Err() }

func (cs *clientStream) sendFirst(m any, closeSend bool) error {
	return cs.call.send(m, io.EOF, ctxStatus, func(f *frame) {
		if !cs.opened {
			cs.opened = true
			f.method = cs.method
		}
		if closeSend {
			f.closeSend = true
			cs.sendDone = true
		}
	})
}

// SendMsg queues m; like gRPC's, it returns io.EOF once the call is over
// (RecvMsg then says how it ended), and m must not change afterwards.
func (cs *clientStream) SendMsg(m any) error { return cs.sendFirst(m, false) }

// RecvMsg reads the next message into m; io.EOF after a clean end.
func (cs *clientStream) RecvMsg(m any) error {
	cs.ensureOpen()
	p, err := cs.call.recv(ctxStatus)
	if err != nil {
		cs.stopCancel()
		return err
	}
	return unmarshalPayload(p, m)
}

// ensureOpen sends the opening frame of a call that reads before it writes.
func (cs *clientStream) ensureOpen() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.opened || cs.ended {
		return
	}
	cs.opened = true
	_ = cs.link.enqueue(&frame{call: cs.id, method: cs.method})
}

// CloseSend tells the plugin no more messages come.
func (cs *clientStream) CloseSend() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.sendDone {
		return nil
	}
	cs.sendDone = true
	f := &frame{call: cs.id, closeSend: true}
	if !cs.opened {
		cs.opened = true
		f.method = cs.method
	}
	_ = cs.link.enqueue(f)
	return nil
}

// cancelled runs when the call's context ends first: the plugin hears
// cancel, and reads fail with the context's status.
func (cs *clientStream) cancelled() {
	cs.mu.Lock()
	tell := cs.opened && !cs.ended
	cs.mu.Unlock()
	cs.link.remove(cs.id)
	if tell {
		_ = cs.link.enqueue(&frame{call: cs.id, cancel: true})
	}
	cs.finish(ctxStatus(cs.ctx.Err()))
}

func (cs *clientStream) Header() (metadata.MD, error) { return nil, nil }
func (cs *clientStream) Trailer() metadata.MD         { return nil }
func (cs *clientStream) Context() context.Context     { return cs.ctx }
