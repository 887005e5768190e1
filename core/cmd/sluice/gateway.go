package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sluice-gw/sluice/core/internal/cors"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/core/internal/admin"
	"github.com/sluice-gw/sluice/core/internal/config"
	"github.com/sluice-gw/sluice/core/internal/devkafka"
	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/pluginhost"
	"github.com/sluice-gw/sluice/core/internal/push"
	"github.com/sluice-gw/sluice/core/internal/server"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// shutdownGrace bounds the whole shutdown: streams, plugins, broker.
const shutdownGrace = 15 * time.Second

// runGateway loads the configuration, starts everything it names and serves
// until SIGINT or SIGTERM. Every exit path stops the plugin processes.
func runGateway(path string, stderr io.Writer) int {
	loader := config.NewLoader()
	f, diags := loader.Load(path)
	if diags.HasErrors() {
		loader.WriteDiagnostics(stderr, diags, false)
		return 1
	}
	// The log block is read at start-up only: a reload cannot switch the
	// format of a stream a collector is already parsing.
	log := newLogger(stderr, f.Gateway.Log)

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

	// Plugins write their own metrics (sdk/metrics) as files in a directory
	// of this process's, one file per plugin named by the host; /metrics
	// serves them with the core's, labelled by plugin.
	metricsDir, err := os.MkdirTemp("", "sluice-metrics-")
	if err != nil {
		log.Error("plugin metrics directory", "err", err)
		return 1
	}
	cleanups = append(cleanups, func(context.Context) { _ = os.RemoveAll(metricsDir) })

	rpcDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "sluice", Name: "plugin_rpc_duration_seconds",
		Help: "Duration of the core's unary calls to plugins (Configure, request-phase policies, ...), by plugin and method.",
		// A loopback gRPC call costs about 100 µs; a request-phase policy
		// that calls out may take seconds.
		Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
	}, []string{"plugin", "method"})
	host := pluginhost.New(pluginhost.Options{Dirs: f.Gateway.PluginDirs, Pins: f.Gateway.Pins, Logger: log, MetricsDir: metricsDir,
		ObserveRPC: func(plugin, method string, d time.Duration) {
			rpcDuration.WithLabelValues(plugin, method).Observe(d.Seconds())
		}})
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

	apis, current, err := deploy(ctx, f, host, nil, log)
	if err != nil {
		logProblems(log, "configuration rejected", err)
		return 1
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), rpcDuration)
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		log.Error("metrics", "err", err)
		return 1
	}
	opts := serverOptions(f.Gateway.Limits)
	opts.Logger, opts.Metrics = log, metrics
	if f.Gateway.Log.AccessLog {
		opts.AccessLog = log
	}
	var certs *certStore
	if t := f.Gateway.TLS; t != nil {
		if certs, err = newCertStore(t); err != nil {
			log.Error("gateway tls", "err", err)
			return 1
		}
		opts.TLS = certs.config()
	}
	srv := server.New(opts)
	if err := srv.Deploy(apis); err != nil {
		log.Error("deployment rejected", "err", err)
		return 1
	}
	pushMetrics, err := push.NewMetrics(reg)
	if err != nil {
		log.Error("metrics", "err", err)
		return 1
	}
	pushes := push.New(push.Options{Server: srv, Metrics: pushMetrics, Logger: log})
	adm, err := admin.New(admin.Options{Server: srv, Registry: reg, Logger: log, Plugins: pluginInfos(host), PluginMetricsDir: metricsDir,
		Push: func(api string) any {
			if st := pushes.Status(api); len(st) > 0 {
				return st
			}
			return nil
		}})
	if err != nil {
		log.Error("admin listener", "err", err)
		return 1
	}

	errs := make(chan error, 2)
	go func() { errs <- fmt.Errorf("gateway listener: %w", srv.ListenAndServe(f.Gateway.Listen)) }()
	go func() { errs <- fmt.Errorf("admin listener: %w", adm.ListenAndServe(f.Gateway.AdminListen)) }()
	// Cleanups run last first: the push subscriptions stop (committing
	// what their callbacks acknowledged) before the data path shuts down,
	// so none is started again meanwhile.
	cleanups = append(cleanups, func(c context.Context) { _ = adm.Shutdown(c) }, func(c context.Context) { _ = srv.Shutdown(c) },
		pushes.Close)
	pushes.Sync(pushSpecs(f))
	log.Info("sluice is serving", "listen", f.Gateway.Listen, "admin", f.Gateway.AdminListen, "apis", len(apis), "version", version)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// The file watch and SIGHUP run the same reload.
	watch, changed := startWatch(f, log)
	if watch != nil {
		defer watch.Close()
	}
	reloadNow := func() {
		if next, nf, ok := reload(ctx, path, f, loader, host, srv, current, certs, stderr, log); ok {
			current, f = next, nf
			pushes.Sync(pushSpecs(f))
			if watch != nil {
				watch.Set(f.Sources())
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return 0
		case err := <-errs:
			log.Error("listener failed", "err", err)
			return 1
		case <-hup:
			reloadNow()
		case files := <-changed:
			log.Info("configuration files changed", "files", files)
			reloadNow()
		}
	}
}

// reload re-reads the configuration on SIGHUP and swaps the deployment
// atomically. A file with errors changes nothing: the diagnostics are printed
// and the running APIs keep serving. Listeners, the plugin directory and the
// embedded broker are read at start-up only; a change to them is reported.
func reload(ctx context.Context, path string, running *config.File, loader *config.Loader, host *pluginhost.Host,
	srv *server.Server, current instances, certs *certStore, stderr io.Writer, log *slog.Logger) (instances, *config.File, bool) {
	log.Info("reloading configuration", "file", path)
	f, diags := loader.Load(path)
	if !diags.HasErrors() {
		diags = append(diags, loader.Decode(ctx, f, host)...)
	}
	logDiagnostics(log, diags)
	if diags.HasErrors() {
		log.Error("reload rejected: the configuration has errors; the running APIs are unchanged", "errors", len(diags.Errs()))
		return nil, nil, false
	}
	if f.Gateway.Listen != running.Gateway.Listen || f.Gateway.AdminListen != running.Gateway.AdminListen ||
		!slices.Equal(f.Gateway.PluginDirs, running.Gateway.PluginDirs) || (f.DevKafka == nil) != (running.DevKafka == nil) {
		log.Warn("reload: listen, admin_listen, plugin_dir(s) and dev_kafka take effect at the next start")
	}
	if f.Gateway.Log != running.Gateway.Log {
		log.Warn("reload: gateway log takes effect at the next start")
	}
	if f.Gateway.Reload != running.Gateway.Reload {
		log.Warn("reload: gateway reload takes effect at the next start")
	}
	if f.Gateway.Limits != running.Gateway.Limits {
		log.Warn("reload: gateway limits take effect at the next start")
	}
	// The certificate files are read again on every SIGHUP (renewed
	// certificates); turning TLS on or off needs a restart.
	switch {
	case (f.Gateway.TLS == nil) != (certs == nil):
		log.Warn("reload: adding or removing gateway tls takes effect at the next start")
	case certs != nil:
		if err := certs.reload(f.Gateway.TLS); err != nil {
			log.Error("reload: the certificates were not reloaded; the loaded ones stay", "err", err)
		} else {
			log.Info("gateway certificates reloaded")
		}
	}
	apis, next, err := deploy(ctx, f, host, current, log)
	if err == nil {
		err = srv.Deploy(apis)
	}
	if err != nil {
		logProblems(log, "reload rejected; the running APIs are unchanged", err)
		// Instances new to this file were configured; remove them again.
		unconfigureAbsent(ctx, next, current, log)
		return nil, nil, false
	}
	// Requests already running keep the instances they started with; give
	// them time before those instances go.
	time.AfterFunc(reloadGrace, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		unconfigureAbsent(cctx, current, next, log)
	})
	log.Info("configuration reloaded", "apis", len(apis))
	return next, f, true
}

// reloadGrace is how long instances replaced by a reload stay configured, so
// requests that started before the reload finish on them.
const reloadGrace = 30 * time.Second

// deploy configures every plugin instance the file names and builds the data
// path's model. An instance id names where the block is and a digest of its
// configuration: a block that did not change keeps its instance across a
// reload (instances in running are reused, not configured again), and a
// changed one gets a new instance beside the old, so the running deployment
// is untouched until the new one is swapped in.
func deploy(ctx context.Context, f *config.File, host *pluginhost.Host, running instances, log *slog.Logger) ([]*server.API, instances, error) {
	var apis []*server.API
	var problems []string
	configured := instances{}
	configure := func(b *config.PluginBlock, where, apiID string) (*pluginhost.Plugin, *pluginv1.TypeInfo, string) {
		p, ti, ok := host.Lookup(b.Kind, b.Type)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no plugin provides %s type %q", b.Where, b.Kind, b.Type))
			return nil, nil, ""
		}
		digest := sha256.Sum256(b.ConfigJSON)
		instanceID := where + "@" + hex.EncodeToString(digest[:4])
		if rp, ok := running[instanceID]; ok && rp == p {
			configured[instanceID] = p
			return p, ti, instanceID
		}
		diags, err := p.Configure(ctx, &pluginv1.Configure_Request{InstanceId: instanceID, Type: ti.GetName(), ConfigJson: b.ConfigJSON, ApiId: apiID})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", b.Where, err))
			return nil, nil, ""
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
			return nil, nil, ""
		}
		configured[instanceID] = p
		return p, ti, instanceID
	}
	plans := map[string][]plan.Config{}
	for _, a := range f.APIs {
		plans[a.Name] = a.Plans
	}
	auths, err := plan.Build(plans, plan.Options{Logger: log})
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, a := range f.APIs {
		api := &server.API{Name: a.Name, ContextPath: a.ContextPath, Plans: auths[a.Name], MaxRequestBodySize: a.MaxRequestBodyBytes}
		if c := a.CORS; c != nil {
			policy, err := cors.New(c.Options)
			if err != nil {
				problems = append(problems, fmt.Sprintf("api %q > cors: %v", a.Name, err))
			}
			api.CORS = policy
		}
		for _, b := range a.Entrypoints {
			if p, ti, id := configure(b, fmt.Sprintf("%s/entrypoint/%s", a.Name, b.Type), a.Name); p != nil {
				api.Entrypoints = append(api.Entrypoints, &server.EntrypointInstance{Type: ti.GetName(), InstanceID: id, Plugin: p, Match: ti.GetMatch(),
					InboundCredit: slices.Contains(ti.GetCapabilities(), entrypoint.CapabilityInboundCredit)})
			}
		}
		// The first endpoint serves the API; every endpoint, the first
		// included, is a named target (a push subscription's dlq).
		for i, b := range a.Endpoints {
			if p, ti, id := configure(b, fmt.Sprintf("%s/endpoint/%s/%s", a.Name, b.Type, b.Name), a.Name); p != nil {
				ep := &server.EndpointInstance{Type: ti.GetName(), Name: b.Name, InstanceID: id, Plugin: p, QoS: ti.GetQos(),
					OmitBody: !lifecycle.ReadsRequestBody(ti.GetCapabilities(), b.ConfigJSON)}
				if i == 0 {
					api.Endpoint = ep
				}
				if api.Targets == nil {
					api.Targets = map[string]*server.EndpointInstance{}
				}
				api.Targets[b.Name] = ep
			}
		}
		for _, fl := range a.Flows {
			cf := &flow.Flow{Name: fl.Name, Selector: fl.Selector}
			for _, phase := range config.Phases {
				for i, b := range fl.Phases[phase] {
					if b.Disabled {
						// enabled = false: checked by the loader, never
						// configured, never run.
						continue
					}
					p, ti, id := configure(b, fmt.Sprintf("%s/flow/%s/%s/%d/%s", a.Name, fl.Name, phase, i, b.Type), a.Name)
					if p == nil {
						continue
					}
					pi := &server.PolicyInstance{Type: ti.GetName(), InstanceID: id, Plugin: p,
						Condition: b.Condition, MessageCondition: b.MessageCondition,
						OmitBody: !lifecycle.ReadsRequestBody(ti.GetCapabilities(), b.ConfigJSON)}
					// config.Phases holds the phases a flow can have; the
					// loader rejects the others.
					switch phase {
					case config.PhaseRequest:
						cf.Request = append(cf.Request, pi)
					case config.PhaseResponse:
						cf.Response = append(cf.Response, pi)
					case config.PhasePublish:
						cf.Publish = append(cf.Publish, pi)
					case config.PhaseSubscribe:
						cf.Subscribe = append(cf.Subscribe, pi)
					}
				}
			}
			api.Flows = append(api.Flows, cf)
		}
		apis = append(apis, api)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, configured, problemsError(problems)
	}
	return apis, configured, nil
}

// problemsError is what deploy found wrong, one entry per problem.
type problemsError []string

func (p problemsError) Error() string {
	return fmt.Sprintf("%d problem(s):\n  %s", len(p), strings.Join(p, "\n  "))
}

// logProblems logs each of a failed deployment's problems as one record, and
// any other error as itself.
func logProblems(log *slog.Logger, msg string, err error) {
	var p problemsError
	if !errors.As(err, &p) {
		log.Error(msg, "err", err)
		return
	}
	for _, problem := range p {
		log.Error("deployment problem", "problem", problem)
	}
	log.Error(msg, "problems", len(p))
}

// instances maps the instance ids a deployment configured to their plugins,
// so a reload can remove the instances it no longer names.
type instances map[string]*pluginhost.Plugin

// unconfigureAbsent removes from old's plugins every instance next lacks.
func unconfigureAbsent(ctx context.Context, old, next instances, log *slog.Logger) {
	for id, p := range old {
		if _, kept := next[id]; kept {
			continue
		}
		if err := p.Unconfigure(ctx, id); err != nil {
			log.Warn("unconfigure instance", "instance", id, "plugin", p.Name(), "err", err)
		}
	}
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

// serverOptions turns the gateway's limits into the data path's options.
func serverOptions(l config.Limits) server.Options {
	return server.Options{
		MaxRequestBodySize:  l.MaxRequestBodyBytes,
		MaxHeaderBytes:      l.MaxHeaderBytes,
		MaxConnections:      l.MaxConnections,
		MaxConnectionsPerIP: l.MaxConnectionsPerIP,
		ReadTimeout:         l.ReadTimeout,
		WriteTimeout:        l.WriteTimeout,
		IdleTimeout:         l.IdleTimeout,
		WebSocket:           server.WebSocketOptions{ReadLimit: int64(l.WebSocketMaxMessageBytes)},
		PluginCallTimeout:   l.PluginCallTimeout,
	}
}

// pushSpecs lists the push subscriptions of f. A subscription's version
// digests everything its exchange depends on (the subscription, the API's
// webhook entrypoint and endpoints), so a reload that changes any of them
// restarts it and one that changes none leaves it running.
func pushSpecs(f *config.File) []push.Spec {
	var out []push.Spec
	for _, a := range f.APIs {
		if len(a.Push) == 0 {
			continue
		}
		h := sha256.New()
		for _, b := range a.Entrypoints {
			if b.Type == config.PushEntrypoint {
				h.Write(b.ConfigJSON)
			}
		}
		for _, b := range a.Endpoints {
			h.Write([]byte(b.Name))
			h.Write(b.ConfigJSON)
		}
		shared := h.Sum(nil)
		for _, ps := range a.Push {
			d := sha256.New()
			d.Write(shared)
			d.Write(ps.ConfigJSON)
			out = append(out, push.Spec{API: a.Name, ID: ps.ID, Config: ps.ConfigJSON, Version: hex.EncodeToString(d.Sum(nil)[:8])})
		}
	}
	return out
}
