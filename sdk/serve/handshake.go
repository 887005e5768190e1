package serve

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"

	"github.com/sluice-gw/sluice/sdk/internal/grpcserver"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// ProtocolVersion is the major version of the plugin protocol (sdk/proto/v1).
// It is go-plugin's handshake ProtocolVersion: a core and a plugin of different
// majors refuse each other at start-up.
const ProtocolVersion = 1

// MaxMessageSize is the gRPC message-size limit set on both sides, so a large
// batch fails the same way in both directions instead of at gRPC's 4 MiB
// default on one side only.
const MaxMessageSize = 64 << 20

// PluginSetName is the single entry of the go-plugin plugin set.
const PluginSetName = "sluice"

// Handshake is shared by the core and every plugin. The magic cookie only
// stops a plugin binary from being run by hand by mistake; it is not security.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "SLUICE_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "d6a3b1c4-sluice-plugin-protocol",
}

// Clients are the gRPC clients of one plugin process, as the core uses them.
// Only the clients of the plugin's kind are served; the others fail with
// Unimplemented.
type Clients struct {
	// Conn is the underlying connection.
	Conn *grpc.ClientConn
	// Plugin is the base service every plugin serves.
	Plugin pluginv1.PluginClient
	// Endpoint is served by endpoint plugins.
	Endpoint pluginv1.EndpointClient
	// Entrypoint is served by entrypoint plugins.
	Entrypoint pluginv1.EntrypointClient
	// Policy is served by policy plugins.
	Policy pluginv1.PolicyClient
	// Features are the protocol features the plugin announced in its
	// metadata (GetMetadata.Response.features).
	Features []string
}

// ClientPlugin is the go-plugin plugin the core dispenses; Dispense returns
// *Clients.
type ClientPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

// GRPCServer is never called on the core side.
func (ClientPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return nil }

// GRPCClient wraps the connection in the per-service clients.
func (ClientPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClients(c), nil
}

// UseTunnel routes the data-path services (Endpoint, Entrypoint, Policy)
// through one Tunnel stream on the connection. The core calls it when the
// plugin's metadata announces tunnel.Feature. Close the returned client when
// the connection is dropped.
func (c *Clients) UseTunnel() *tunnel.Client {
	t := tunnel.NewClient(c.Conn)
	c.Endpoint = pluginv1.NewEndpointClient(t)
	c.Entrypoint = pluginv1.NewEntrypointClient(t)
	c.Policy = pluginv1.NewPolicyClient(t)
	return t
}

// NewClients wraps a connection to a plugin in the per-service clients.
func NewClients(c *grpc.ClientConn) *Clients {
	return &Clients{
		Conn:       c,
		Plugin:     pluginv1.NewPluginClient(c),
		Endpoint:   pluginv1.NewEndpointClient(c),
		Entrypoint: pluginv1.NewEntrypointClient(c),
		Policy:     pluginv1.NewPolicyClient(c),
	}
}

// ClientPluginSet is the plugin set the core passes to go-plugin.
var ClientPluginSet = goplugin.PluginSet{PluginSetName: ClientPlugin{}}

// GRPCDialOptions are the dial options the core passes to go-plugin
// (ClientConfig.GRPCDialOptions): go-plugin sets no message-size limit on the
// client side, so without them a batch over gRPC's 4 MiB default would fail
// in one direction only. The flow-control windows and buffer sizes are the
// plugin server's (see sdk/internal/grpcserver): fixed windows large enough
// for a batch, which also stop gRPC's BDP pings.
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
		grpc.WithInitialWindowSize(grpcserver.StreamWindowSize),
		grpc.WithInitialConnWindowSize(grpcserver.ConnWindowSize),
		grpc.WithWriteBufferSize(grpcserver.BufferSize),
		grpc.WithReadBufferSize(grpcserver.BufferSize),
		experimental.WithBufferPool(tunnel.BufferPool),
	}
}
