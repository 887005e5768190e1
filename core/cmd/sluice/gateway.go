package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/core/internal/admin"
	"github.com/sluice-gw/sluice/core/internal/config"
	"github.com/sluice-gw/sluice/core/internal/devkafka"
	"github.com/sluice-gw/sluice/core/internal/pluginhost"
	"github.com/sluice-gw/sluice/core/internal/server"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// shutdownGrace bounds the whole shutdown: streams, plugins, broker.
const shutdownGrace = 15 * time.Second

// runGateway loads the configuration, starts everything it names and serves
// until SIGINT or SIGTERM. Every exit path stops the plugin processes.
func runGateway(path string, stderr io.Writer) int {
	log := newLogger(stderr)
	loader := config.NewLoader()
	f, diags := loader.Load(path)
	if diags.HasErrors() {
		loader.WriteDiagnostics(stderr, diags, false)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var cleanups []func(context.Context)
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i](cctx)
		}
	}
	defer cleanup()

	if f.DevKafka != nil {
		b, err := devkafka.Start(ctx, devkafka.Config{Listen: f.DevKafka.Listen, DataDir: f.DevKafka.DataDir, Topics: f.DevKafka.Topics}, log)
		if err != nil {
			log.Error("embedded broker failed to start", "err", err)
			return 1
		}
		log.Info("embedded broker started", "addr", b.Addr(), "data_dir", f.DevKafka.DataDir)
		cleanups = append(cleanups, func(context.Context) {
			if err := b.Close(); err != nil {
				log.Error("embedded broker close", "err", err)
			}
		})
	}

	host := pluginhost.New(pluginhost.Options{Dir: f.Gateway.PluginDir, Pins: f.Gateway.Pins, Logger: log})
	cleanups = append(cleanups, host.Close)
	if err := host.Start(ctx); err != nil {
		// Plugins that did start still serve; the APIs that need a missing
		// one fail below with a diagnostic naming it.
		log.Error("some plugins failed to start", "err", err)
	}

	if d := loader.Decode(ctx, f, host); len(d) > 0 {
		diags = append(diags, d...)
		loader.WriteDiagnostics(stderr, diags, false)
		if diags.HasErrors() {
			return 1
		}
	}

	apis, err := deploy(ctx, f, host, log)
	if err != nil {
		log.Error("configuration rejected", "err", err)
		return 1
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		log.Error("metrics", "err", err)
		return 1
	}
	srv := server.New(server.Options{Logger: log, Metrics: metrics})
	if err := srv.Deploy(apis); err != nil {
		log.Error("deployment rejected", "err", err)
		return 1
	}
	adm, err := admin.New(admin.Options{Server: srv, Registry: reg, Logger: log, Plugins: pluginInfos(host)})
	if err != nil {
		log.Error("admin listener", "err", err)
		return 1
	}

	errs := make(chan error, 2)
	go func() { errs <- fmt.Errorf("gateway listener: %w", srv.ListenAndServe(f.Gateway.Listen)) }()
	go func() { errs <- fmt.Errorf("admin listener: %w", adm.ListenAndServe(f.Gateway.AdminListen)) }()
	cleanups = append(cleanups, func(c context.Context) { _ = adm.Shutdown(c) }, func(c context.Context) { _ = srv.Shutdown(c) })
	log.Info("sluice is serving", "listen", f.Gateway.Listen, "admin", f.Gateway.AdminListen, "apis", len(apis), "version", version)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return 0
	case err := <-errs:
		log.Error("listener failed", "err", err)
		return 1
	}
}

// deploy configures every plugin instance the file names and builds the data
// path's model. Instance ids are stable across restarts of the gateway, so
// plugin logs can be correlated.
func deploy(ctx context.Context, f *config.File, host *pluginhost.Host, log *slog.Logger) ([]*server.API, error) {
	var apis []*server.API
	var problems []string
	configure := func(b *config.PluginBlock, instanceID, apiID string) (*pluginhost.Plugin, *pluginv1.TypeInfo) {
		p, ti, ok := host.Lookup(b.Kind, b.Type)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no plugin provides %s type %q", b.Where, b.Kind, b.Type))
			return nil, nil
		}
		diags, err := p.Configure(ctx, &pluginv1.Configure_Request{InstanceId: instanceID, Type: ti.GetName(), ConfigJson: b.ConfigJSON, ApiId: apiID})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", b.Where, err))
			return nil, nil
		}
		for _, d := range diags {
			msg := fmt.Sprintf("%s: %s", b.Where, d.GetSummary())
			if d.GetDetail() != "" {
				msg += ": " + d.GetDetail()
			}
			if d.GetSeverity() == pluginv1.Diagnostic_WARNING {
				log.Warn(msg)
				continue
			}
			problems = append(problems, msg)
			return nil, nil
		}
		return p, ti
	}
	for _, a := range f.APIs {
		api := &server.API{Name: a.Name, ContextPath: a.ContextPath}
		for _, b := range a.Entrypoints {
			id := fmt.Sprintf("%s/entrypoint/%s", a.Name, b.Type)
			if p, ti := configure(b, id, a.Name); p != nil {
				api.Entrypoints = append(api.Entrypoints, &server.EntrypointInstance{Type: ti.GetName(), InstanceID: id, Plugin: p, Match: ti.GetMatch()})
			}
		}
		for i, b := range a.Endpoints {
			if i > 0 {
				problems = append(problems, fmt.Sprintf("%s: one endpoint per API is supported; %q is the one in use", b.Where, a.Endpoints[0].Name))
				continue
			}
			id := fmt.Sprintf("%s/endpoint/%s/%s", a.Name, b.Type, b.Name)
			if p, ti := configure(b, id, a.Name); p != nil {
				api.Endpoint = &server.EndpointInstance{Type: ti.GetName(), Name: b.Name, InstanceID: id, Plugin: p, QoS: ti.GetQos()}
			}
		}
		for _, fl := range a.Flows {
			for _, phase := range config.Phases {
				for i, b := range fl.Phases[phase] {
					id := fmt.Sprintf("%s/flow/%s/%s/%d/%s", a.Name, fl.Name, phase, i, b.Type)
					p, ti := configure(b, id, a.Name)
					if p == nil {
						continue
					}
					pi := &server.PolicyInstance{Type: ti.GetName(), InstanceID: id, Plugin: p}
					switch phase {
					case config.PhaseRequest:
						api.Flows.Request = append(api.Flows.Request, pi)
					case config.PhasePublish:
						api.Flows.Publish = append(api.Flows.Publish, pi)
					case config.PhaseSubscribe:
						api.Flows.Subscribe = append(api.Flows.Subscribe, pi)
					default:
						problems = append(problems, fmt.Sprintf("%s: the %s phase is not supported for message APIs", b.Where, phase))
					}
				}
			}
		}
		apis = append(apis, api)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return apis, nil
}

// pluginInfos adapts the host's plugins for the admin listener.
func pluginInfos(host *pluginhost.Host) func() []admin.PluginInfo {
	return func() []admin.PluginInfo {
		var out []admin.PluginInfo
		for _, p := range host.Plugins() {
			info := admin.PluginInfo{Name: p.Name(), Kind: string(p.Kind()), Up: p.Up(), Restarts: p.Restarts()}
			if md := p.Metadata(); md != nil {
				info.Version = md.GetVersion()
				for _, t := range md.GetTypes() {
					info.Types = append(info.Types, t.GetName())
				}
			}
			out = append(out, info)
		}
		return out
	}
}
