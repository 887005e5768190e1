package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sluice-gw/sluice/sdk/internal/grpcserver"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/metrics"
)

// parentPollInterval is how often a plugin checks that the core is alive.
const parentPollInterval = time.Second

// orphanDrainTimeout bounds the Drain a plugin runs when the core has died,
// before it exits.
const orphanDrainTimeout = 5 * time.Second

// Option configures Serve.
type Option func(*config)

type config struct {
	grpcOptions []grpc.ServerOption
	test        *goplugin.ServeTestConfig
}

// WithGRPCServerOptions adds gRPC server options (interceptors, keepalive)
// after the SDK's own, so they take precedence.
func WithGRPCServerOptions(opts ...grpc.ServerOption) Option {
	return func(c *config) { c.grpcOptions = append(c.grpcOptions, opts...) }
}

// WithLogLevel sets the level of Logger and of the standard log package
// (default Info). The core filters again by its own level.
func WithLogLevel(l slog.Level) Option {
	return func(c *config) { logLevel.Set(l) }
}

// WithTestConfig runs Serve in go-plugin's test mode, inside a test process:
// the reattach configuration is sent on tc.ReattachConfigCh and Serve returns
// when tc.Context ends. In this mode Serve does not handle DescribeArg,
// redirect logs, watch its parent or exit the process. sdk/plugintest is the
// simpler way to test a plugin; this option tests the real serving path.
func WithTestConfig(tc *goplugin.ServeTestConfig) Option {
	return func(c *config) { c.test = tc }
}

// Serve runs p as a plugin process and does not return (except in test mode).
// Call it from main:
//
//	func main() { serve.Serve(kafka.New()) }
//
// p must implement exactly one of endpoint.Endpoint, entrypoint.Entrypoint
// and policy.Policy; its Metadata is checked at once. Serve then:
//
//  1. redirects slog's default logger and the standard log package to
//     stderr in hclog JSON (see Logger), so nothing reaches stdout, which
//     carries the handshake;
//  2. with the single argument "describe" (DescribeArg), prints the
//     Description as JSON to stdout and exits 0, without starting gRPC;
//  3. otherwise exports the metrics registered with sdk/metrics to the file
//     the core names (metrics.FileEnv), serves gRPC through go-plugin with
//     Handshake and symmetric MaxMessageSize limits, and exits when the core does (its parent process
//     changes), after a bounded Drain if p implements lifecycle.Drainer.
//
// A plugin that fails its checks logs why and exits 1.
func Serve(p lifecycle.Plugin, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.test != nil {
		if err := serveTest(p, &cfg); err != nil {
			Logger().Error("cannot serve plugin", "error", err.Error())
		}
		return
	}

	hc := newHCLogger()
	redirectLogs(hc)
	srv, err := grpcserver.New(p, Logger())
	if err != nil {
		fatal(err)
	}
	if len(os.Args) > 1 && os.Args[1] == DescribeArg {
		if err := describe(os.Stdout, srv); err != nil {
			fatal(err)
		}
		os.Exit(0)
	}
	stopProfile := startProfile()
	// The metrics registered with sdk/metrics reach the core's /metrics
	// through the file the core names in the environment.
	go metrics.ExportFromEnv(context.Background(), func(err error) {
		Logger().Warn("cannot write the metrics file; /metrics will miss this plugin's metrics",
			"path", os.Getenv(metrics.FileEnv), "error", err.Error())
	})
	go watchParent(os.Getppid(), parentPollInterval, os.Getppid, func() {
		Logger().Error("the core process is gone; exiting")
		drainOrphan(p)
		stopProfile()
		os.Exit(1)
	})
	goplugin.Serve(serveConfig(srv, &cfg, hc))
	stopProfile()
}

// fatal logs err and exits 1.
func fatal(err error) {
	Logger().Error("cannot serve plugin", "error", err.Error())
	os.Exit(1)
}

func serveTest(p lifecycle.Plugin, cfg *config) error {
	srv, err := grpcserver.New(p, Logger())
	if err != nil {
		return err
	}
	goplugin.Serve(serveConfig(srv, cfg, newHCLogger()))
	return nil
}

// describe writes srv's Description.
func describe(w io.Writer, srv *grpcserver.Server) error {
	d, err := NewDescription(srv.Metadata())
	if err != nil {
		return err
	}
	return writeDescription(w, d)
}

// serveConfig is the go-plugin configuration of srv.
func serveConfig(srv *grpcserver.Server, cfg *config, hc hclog.Logger) *goplugin.ServeConfig {
	return &goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginSetName: &serverPlugin{srv: srv}},
		GRPCServer: func(base []grpc.ServerOption) *grpc.Server {
			opts := append(base, grpcserver.ServerOptions(MaxMessageSize)...)
			return grpc.NewServer(append(opts, cfg.grpcOptions...)...)
		},
		Logger: hc,
		Test:   cfg.test,
	}
}

// serverPlugin is the plugin side of the plugin set: it registers the
// services.
type serverPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	srv *grpcserver.Server
}

// GRPCServer registers the base service and the kind's service.
func (p *serverPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	p.srv.Register(s)
	return nil
}

// GRPCClient is never called on the plugin side.
func (p *serverPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("serve: the plugin side has no client; the core uses ClientPluginSet")
}

// watchParent calls gone once getppid stops returning ppid, checking every
// interval. A plugin is a child of the core; when the core dies the plugin is
// re-parented, and must not live on as an orphan.
func watchParent(ppid int, interval time.Duration, getppid func() int, gone func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		if getppid() != ppid {
			gone()
			return
		}
	}
}

// drainOrphan gives a Drainer a bounded chance to flush before exiting.
func drainOrphan(p lifecycle.Plugin) {
	d, ok := p.(lifecycle.Drainer)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), orphanDrainTimeout)
	defer cancel()
	if err := d.Drain(ctx); err != nil {
		Logger().Error("drain failed", "error", fmt.Sprint(err))
	}
}
