// Package grpcserver adapts the author interfaces of sdk/endpoint,
// sdk/entrypoint and sdk/policy to the gRPC services of sdk/proto/v1. It is
// shared by sdk/serve (the real plugin process) and sdk/plugintest (the
// in-process harness), so tests run exactly the code that production runs.
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// MaxConcurrentBatches bounds the batches of one multiplexed stream (Publish,
// OnMessages) handled at once. Past it the stream stops reading, and gRPC flow
// control pushes back on the core.
const MaxConcurrentBatches = 256

// The failures sent for errors that are not *gateway.Failure. Their text is
// generic on purpose: the error itself may hold internal details, so it goes
// to the plugin's log instead of to the client.
var (
	endpointUnknown = gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_UNKNOWN_ERROR", Message: "Endpoint unknown error"}
	policyUnknown   = gateway.Failure{Status: 500, Key: "FAILURE_POLICY_UNKNOWN_ERROR", Message: "Policy unknown error"}
)

// Server serves one plugin.
type Server struct {
	plugin lifecycle.Plugin
	kind   lifecycle.Kind
	md     lifecycle.Metadata
	mdWire *pluginv1.GetMetadata_Response
	log    *slog.Logger
}

// KindOf returns the kind of p from the author interface it implements, and
// fails unless it implements exactly one of endpoint.Endpoint,
// entrypoint.Entrypoint and policy.Policy.
func KindOf(p lifecycle.Plugin) (lifecycle.Kind, error) {
	if p == nil {
		return "", errors.New("plugin is nil")
	}
	var kinds []lifecycle.Kind
	if _, ok := p.(endpoint.Endpoint); ok {
		kinds = append(kinds, lifecycle.KindEndpoint)
	}
	if _, ok := p.(entrypoint.Entrypoint); ok {
		kinds = append(kinds, lifecycle.KindEntrypoint)
	}
	if _, ok := p.(policy.Policy); ok {
		kinds = append(kinds, lifecycle.KindPolicy)
	}
	switch len(kinds) {
	case 1:
		return kinds[0], nil
	case 0:
		return "", fmt.Errorf("%T implements none of endpoint.Endpoint, entrypoint.Entrypoint and policy.Policy; a plugin implements exactly one", p)
	}
	return "", fmt.Errorf("%T implements %v; a plugin implements exactly one of endpoint.Endpoint, entrypoint.Entrypoint and policy.Policy", p, kinds)
}

// New prepares p for serving. It calls p.Metadata once and checks it: the
// kind must agree with the interface p implements (an empty Kind is filled
// in), every type needs a name, entrypoint types need a Match, and schema
// defaults must encode as JSON. log receives errors that are hidden from
// clients; nil discards them.
func New(p lifecycle.Plugin, log *slog.Logger) (*Server, error) {
	kind, err := KindOf(p)
	if err != nil {
		return nil, err
	}
	md := p.Metadata()
	if md.Kind == "" {
		md.Kind = kind
	}
	if md.Kind != kind {
		return nil, fmt.Errorf("%T is an %s plugin but its Metadata says kind %q", p, kind, md.Kind)
	}
	if md.Name == "" {
		return nil, errors.New("metadata: Name is empty")
	}
	if len(md.Types) == 0 {
		return nil, fmt.Errorf("metadata of %s: no types", md.Name)
	}
	for i, t := range md.Types {
		if t.Name == "" {
			return nil, fmt.Errorf("metadata of %s: type %d has no name", md.Name, i)
		}
		if kind == lifecycle.KindEntrypoint && t.Match == nil {
			return nil, fmt.Errorf("metadata of %s: entrypoint type %q has no Match", md.Name, t.Name)
		}
	}
	mdWire, err := wire.MetadataToWire(md)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", md.Name, err)
	}
	mdWire.Features = append(mdWire.Features, tunnel.Feature, tunnel.FeatureSameContext)
	if _, ok := p.(lifecycle.HealthChecker); ok {
		mdWire.Features = append(mdWire.Features, lifecycle.FeatureHealth)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{plugin: p, kind: kind, md: md, mdWire: mdWire, log: log}, nil
}

// Kind is the plugin's kind.
func (s *Server) Kind() lifecycle.Kind { return s.kind }

// Metadata is the plugin's metadata as checked by New.
func (s *Server) Metadata() lifecycle.Metadata { return s.md }

// Flow control and buffers of the connection between the core and a plugin,
// the same on both sides (sdk/serve.GRPCDialOptions uses them too).
//
// gRPC's defaults (64 KiB windows grown by BDP estimation, 32 KiB buffers)
// suit the internet, not a loopback hop: a subscribe batch (256 records of
// 256 B are about 90 KiB on the wire) waited for window updates in the
// middle of every send, and the estimation's pings added a wake-up of both
// processes to most requests. Fixed windows turn the estimation off. A
// stream's window bounds what it buffers while its reader is slow (a slow
// client's subscription holds at most StreamWindowSize in the core), so
// memory still does not grow with the backlog; 256 KiB measured as fast as
// 1 MiB.
const (
	StreamWindowSize = 256 << 10
	ConnWindowSize   = 8 << 20
	// BufferSize is the size of each connection's read and write buffers: a
	// batch goes out in a few writes instead of one per 32 KiB.
	BufferSize = 256 << 10
)

// ServerOptions are the gRPC server options every plugin server needs: the
// symmetric message-size limit, the windows and buffers above, and the
// codec of the direct message paths (see passThrough), which serves every
// other message as the standard proto codec does.
func ServerOptions(maxMessageSize int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.ForceServerCodecV2(codec),
		grpc.InitialWindowSize(StreamWindowSize),
		grpc.InitialConnWindowSize(ConnWindowSize),
		grpc.WriteBufferSize(BufferSize),
		grpc.ReadBufferSize(BufferSize),
		experimental.BufferPool(tunnel.BufferPool),
	}
}

// Register registers the base Plugin service, the service of the plugin's
// kind and the Tunnel service on g. The kind's service is also served
// through the tunnel, which the core prefers for the data path.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	pluginv1.RegisterPluginServer(g, &pluginServer{s: s})
	ts := tunnel.NewServer()
	s.registerKind(g)
	s.registerKind(ts)
	pluginv1.RegisterTunnelServer(g, ts)
}

func (s *Server) registerKind(g grpc.ServiceRegistrar) {
	switch p := s.plugin.(type) {
	case endpoint.Endpoint:
		pluginv1.RegisterEndpointServer(g, &endpointServer{ep: p, log: s.log})
	case entrypoint.Entrypoint:
		pluginv1.RegisterEntrypointServer(g, &entrypointServer{ep: p, log: s.log})
	case policy.Policy:
		pluginv1.RegisterPolicyServer(g, &policyServer{po: p, log: s.log})
	}
}

// pluginServer serves the base service.
type pluginServer struct {
	pluginv1.UnimplementedPluginServer
	s *Server
}

func (ps *pluginServer) GetMetadata(context.Context, *pluginv1.GetMetadata_Request) (*pluginv1.GetMetadata_Response, error) {
	return ps.s.mdWire, nil
}

func (ps *pluginServer) ValidateConfig(ctx context.Context, req *pluginv1.ValidateConfig_Request) (*pluginv1.ValidateConfig_Response, error) {
	var resp lifecycle.ValidateResponse
	ps.s.plugin.Validate(ctx, &lifecycle.ValidateRequest{Type: req.GetType(), ConfigJSON: req.GetConfigJson()}, &resp)
	return &pluginv1.ValidateConfig_Response{Diagnostics: wire.DiagnosticsToWire(resp.Diagnostics)}, nil
}

func (ps *pluginServer) Configure(ctx context.Context, req *pluginv1.Configure_Request) (*pluginv1.Configure_Response, error) {
	var resp lifecycle.ConfigureResponse
	ps.s.plugin.Configure(ctx, &lifecycle.ConfigureRequest{
		InstanceID: req.GetInstanceId(),
		Type:       req.GetType(),
		APIID:      req.GetApiId(),
		ConfigJSON: req.GetConfigJson(),
	}, &resp)
	return &pluginv1.Configure_Response{Diagnostics: wire.DiagnosticsToWire(resp.Diagnostics)}, nil
}

func (ps *pluginServer) Unconfigure(ctx context.Context, req *pluginv1.Unconfigure_Request) (*pluginv1.Unconfigure_Response, error) {
	ps.s.plugin.Unconfigure(ctx, req.GetInstanceId())
	return &pluginv1.Unconfigure_Response{}, nil
}

func (ps *pluginServer) Drain(ctx context.Context, req *pluginv1.Drain_Request) (*pluginv1.Drain_Response, error) {
	d, ok := ps.s.plugin.(lifecycle.Drainer)
	if !ok {
		return &pluginv1.Drain_Response{}, nil
	}
	if ms := req.GetDeadlineMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	if err := d.Drain(ctx); err != nil {
		code := codes.Unknown
		if errors.Is(err, context.DeadlineExceeded) {
			code = codes.DeadlineExceeded
		}
		return nil, status.Errorf(code, "drain: %v", err)
	}
	return &pluginv1.Drain_Response{}, nil
}

// CheckHealth answers from lifecycle.HealthChecker; a plugin without it
// answers Unimplemented, which the core takes as every instance ready (the
// core does not even ask, since the plugin does not announce the feature).
func (ps *pluginServer) CheckHealth(ctx context.Context, _ *pluginv1.CheckHealth_Request) (*pluginv1.CheckHealth_Response, error) {
	hc, ok := ps.s.plugin.(lifecycle.HealthChecker)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the plugin does not check its instances' health")
	}
	hs := hc.CheckHealth(ctx)
	resp := &pluginv1.CheckHealth_Response{Instances: make([]*pluginv1.CheckHealth_InstanceHealth, 0, len(hs))}
	for _, h := range hs {
		resp.Instances = append(resp.Instances, &pluginv1.CheckHealth_InstanceHealth{InstanceId: h.InstanceID, Ready: h.Ready, Reason: h.Reason})
	}
	return resp, nil
}

// failureOf converts an error returned by plugin code to a wire failure: a
// *gateway.Failure as is, anything else as unknown (logged, since the client
// only sees the generic text). A nil *gateway.Failure inside a non-nil error
// is the classic typed-nil mistake; it means success.
func failureOf(err error, unknown *gateway.Failure, log *slog.Logger, what string) *pluginv1.Failure {
	if err == nil {
		return nil
	}
	var f *gateway.Failure
	if errors.As(err, &f) {
		return wire.FailureToWire(f)
	}
	log.Error(what+" failed", "error", err.Error())
	return wire.FailureToWire(unknown)
}
