package tunnel

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Server serves tunnelled calls with the handlers of ordinary gRPC
// services: register them here as on a grpc.Server, then register the
// Server itself on the grpc.Server as the Tunnel service.
type Server struct {
	pluginv1.UnimplementedTunnelServer

	mu      sync.RWMutex
	unary   map[string]unaryMethod
	streams map[string]streamMethod
}

type unaryMethod struct {
	impl    any
	handler grpc.MethodHandler
}

type streamMethod struct {
	impl    any
	handler grpc.StreamHandler
}

var (
	_ grpc.ServiceRegistrar    = (*Server)(nil)
	_ pluginv1.TunnelServer    = (*Server)(nil)
	_ grpc.ServerStream        = (*serverStream)(nil)
	_ grpc.ClientConnInterface = (*Client)(nil)
	_ grpc.ClientStream        = (*clientStream)(nil)
)

// NewServer returns a server with no service registered.
func NewServer() *Server {
	return &Server{unary: map[string]unaryMethod{}, streams: map[string]streamMethod{}}
}

// RegisterService makes the methods of a generated service reachable
// through the tunnel, by their full names.
func (s *Server) RegisterService(sd *grpc.ServiceDesc, impl any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range sd.Methods {
		s.unary["/"+sd.ServiceName+"/"+m.MethodName] = unaryMethod{impl: impl, handler: m.Handler}
	}
	for _, m := range sd.Streams {
		s.streams["/"+sd.ServiceName+"/"+m.StreamName] = streamMethod{impl: impl, handler: m.Handler}
	}
}

// Open serves one tunnel: it runs until the core ends the stream, and ends
// every call still running then.
func (s *Server) Open(stream pluginv1.Tunnel_OpenServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	l := newLink(func(p *RawParts) error { return stream.SendMsg(p) })
	for {
		var b RawFrame
		if err := stream.RecvMsg(&b); err != nil {
			l.fail(status.Error(codes.Canceled, "tunnel closed by the core"))
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := decodeBatch(b, func(f *frame) { s.dispatch(ctx, l, f) }); err != nil {
			l.fail(status.Error(codes.Internal, err.Error()))
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
}

// dispatch hands one frame from the core to its call, starting the call on
// its first frame.
func (s *Server) dispatch(ctx context.Context, l *link, f *frame) {
	c := l.lookup(f.call)
	if c == nil {
		if f.method == "" || f.cancel {
			return // a frame of a call that has ended
		}
		sc := s.start(ctx, l, f)
		if sc == nil {
			return
		}
		c = sc.call
	}
	var end error
	if f.closeSend {
		end = io.EOF
	}
	if f.cancel {
		end = status.Error(codes.Canceled, "the core cancelled the call")
	}
	c.deliver(f, end)
	if f.cancel && c.stop != nil {
		c.stop()
	}
}

// serverCall is the plugin's side of one tunnelled call.
type serverCall struct {
	*call
	cancel context.CancelFunc
}

func (s *Server) start(ctx context.Context, l *link, f *frame) *serverCall {
	s.mu.RLock()
	um, isUnary := s.unary[f.method]
	sm, isStream := s.streams[f.method]
	s.mu.RUnlock()
	if !isUnary && !isStream {
		_ = l.enqueue(&frame{call: f.call, end: &endStatus{
			code: int32(codes.Unimplemented), message: "unknown method " + f.method}})
		return nil
	}
	cctx, cancel := context.WithCancel(grpc.NewContextWithServerTransportStream(ctx, methodStream(f.method)))
	c := &serverCall{call: newCall(f.call, l, cctx), cancel: cancel}
	c.stop = cancel
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		cancel()
		return nil
	}
	l.calls[f.call] = c.call
	l.mu.Unlock()
	if isUnary {
		go c.runUnary(um)
	} else {
		go c.runStream(sm)
	}
	return c
}

func (c *serverCall) runUnary(m unaryMethod) {
	dec := func(v any) error {
		p, err := c.recv(ctxStatus)
		if err != nil {
			if err == io.EOF {
				return status.Error(codes.Internal, "tunnel: unary call without a request")
			}
			return err
		}
		return unmarshalPayload(p, v)
	}
	resp, err := m.handler(m.impl, c.ctx, dec, nil)
	f := &frame{call: c.id}
	if err == nil {
		parts, n, merr := marshalParts(resp)
		if merr != nil {
			err = status.Errorf(codes.Internal, "tunnel: encode response: %v", merr)
		} else {
			f.msg, f.msgLen, f.hasMsg = parts, n, true
		}
	}
	c.end(f, err)
}

func (c *serverCall) runStream(m streamMethod) {
	err := m.handler(m.impl, &serverStream{c: c})
	c.end(&frame{call: c.id}, err)
}

// end sends the call's last frame, with its status.
func (c *serverCall) end(f *frame, err error) {
	st := status.Convert(err)
	f.end = &endStatus{code: int32(st.Code()), message: st.Message()}
	c.mu.Lock()
	c.sendDone, c.ended = true, true
	c.mu.Unlock()
	c.link.remove(c.id)
	_ = c.link.enqueue(f)
	c.cancel()
}

// serverStream is the grpc.ServerStream a stream handler sees.
type serverStream struct{ c *serverCall }

func (ss *serverStream) SendMsg(m any) error {
	return ss.c.send(m, status.Error(codes.Canceled, "call ended"), ctxStatus, nil)
}

func (ss *serverStream) RecvMsg(m any) error {
	p, err := ss.c.recv(ctxStatus)
	if err != nil {
		return err
	}
	return unmarshalPayload(p, m)
}

func (ss *serverStream) Context() context.Context     { return ss.c.ctx }
func (ss *serverStream) SetHeader(metadata.MD) error  { return nil }
func (ss *serverStream) SendHeader(metadata.MD) error { return nil }
func (ss *serverStream) SetTrailer(metadata.MD)       {}

// methodStream lets grpc.Method(ctx) name the tunnelled method, as it would
// for a direct call.
type methodStream string

func (m methodStream) Method() string             { return string(m) }
func (methodStream) SetHeader(metadata.MD) error  { return nil }
func (methodStream) SendHeader(metadata.MD) error { return nil }
func (methodStream) SetTrailer(metadata.MD) error { return nil }
