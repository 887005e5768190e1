// Package admin is the admin listener: a separate fasthttp server for
// operators and orchestrators, never exposed with the data path.
//
//	GET /health   200 {"status":"UP"} while the process serves.
//	GET /ready    200 when every API is deployed, every plugin it uses is
//	              up and every endpoint instance is ready (its backend
//	              reachable, as its plugin last reported; see health.go),
//	              else 503 with the reasons.
//	GET /apis     the deployed APIs, their plans (secrets shown as
//	              "(sensitive)"), entrypoints, endpoint (with its
//	              readiness), flows and plugin instance ids.
//	GET /plugins  the plugins: kind, version, types, up, restarts.
//	GET /metrics  Prometheus metrics.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/server"
)

// PluginInfo describes one plugin process for /plugins and the plugin
// metrics. The plugin host provides it.
type PluginInfo struct {
	// Name is the plugin's name (e.g. "endpoint-kafka").
	Name string `json:"name"`
	// Kind is "endpoint", "entrypoint" or "policy".
	Kind string `json:"kind"`
	// Version is the plugin's own version.
	Version string `json:"version"`
	// Types are the types the plugin provides.
	Types []string `json:"types"`
	// Up is true while the process runs and its instances are configured.
	Up bool `json:"up"`
	// Restarts counts the restarts since the gateway started.
	Restarts int `json:"restarts"`
}

// Options configure the admin listener.
type Options struct {
	// Server is the data path whose deployment /apis and /ready describe.
	Server *server.Server
	// Plugins lists the plugins. Optional: without it /plugins is empty.
	Plugins func() []PluginInfo
	// Registry is where the data path's metrics are registered; the plugin
	// metrics are added to it and /metrics serves it. Optional: without it
	// /metrics serves the plugin metrics only.
	Registry *prometheus.Registry
	// NotReady returns reasons the gateway is not ready that only the caller
	// knows (an API that failed to configure, a reload in progress).
	// Optional.
	NotReady func() []string
	// Logger receives the listener's logs. Optional. Default: discard.
	Logger *slog.Logger
	// Push returns the state of an API's push subscriptions, shown under
	// "push_subscriptions" in /apis. Optional.
	Push func(api string) any
	// PluginMetricsDir is the directory plugins write their own metrics to
	// (one <plugin>.prom file each, in the text format, see sdk/metrics);
	// /metrics serves them beside the core's with the label
	// plugin="<plugin>". Optional. Default: none.
	PluginMetricsDir string
	// HealthInterval is how often the endpoint plugins are asked whether
	// their instances are ready (four times as often while one is not).
	// Optional. Default: DefaultHealthInterval.
	HealthInterval time.Duration
	// HealthTimeout bounds each plugin's answer. Optional. Default:
	// DefaultHealthTimeout.
	HealthTimeout time.Duration
}

// Admin is the admin listener.
type Admin struct {
	opts    Options
	http    *fasthttp.Server
	metrics fasthttp.RequestHandler
	health  *healthCache

	healthOnce   sync.Once
	healthCtx    context.Context
	healthCancel context.CancelFunc
}

// New returns the admin listener. It fails when the plugin metrics cannot be
// registered (a registry already holding them).
func New(opts Options) (*Admin, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Plugins == nil {
		opts.Plugins = func() []PluginInfo { return nil }
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = DefaultHealthInterval
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = DefaultHealthTimeout
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := reg.Register(&pluginCollector{plugins: opts.Plugins}); err != nil {
		return nil, err
	}
	a := &Admin{
		opts:   opts,
		health: newHealthCache(),
		metrics: fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(
			prometheus.Gatherers{reg, &fileGatherer{dir: opts.PluginMetricsDir, log: opts.Logger}}, promhttp.HandlerOpts{})),
	}
	if err := reg.Register(endpointCollector{a}); err != nil {
		return nil, err
	}
	a.healthCtx, a.healthCancel = context.WithCancel(context.Background())
	a.http = &fasthttp.Server{
		Handler:               a.handle,
		Name:                  "sluice-admin",
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
	return a, nil
}

// Serve serves the admin API on ln until Shutdown. The first call also
// polls the endpoints' health once before serving, so /ready is right from
// its first answer, and keeps polling in the background until Shutdown.
func (a *Admin) Serve(ln net.Listener) error {
	a.healthOnce.Do(func() {
		a.PollHealth(a.healthCtx)
		go a.runHealth(a.healthCtx)
	})
	return a.http.Serve(ln)
}

// ListenAndServe listens on the TCP address addr and serves the admin API.
func (a *Admin) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return a.Serve(ln)
}

// Shutdown stops the listener and waits for requests in progress until ctx
// ends.
func (a *Admin) Shutdown(ctx context.Context) error {
	a.healthCancel()
	return a.http.ShutdownWithContext(ctx)
}

// Handler returns the admin API's request handler, for embedding or tests.
func (a *Admin) Handler() fasthttp.RequestHandler { return a.handle }

func (a *Admin) handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		writeJSON(ctx, http.StatusMethodNotAllowed, map[string]any{"message": "the admin API only answers GET", "http_status_code": http.StatusMethodNotAllowed})
		return
	}
	switch string(ctx.Path()) {
	case "/health":
		writeJSON(ctx, http.StatusOK, map[string]string{"status": "UP"})
	case "/ready":
		if reasons := a.notReady(); len(reasons) > 0 {
			writeJSON(ctx, http.StatusServiceUnavailable, map[string]any{"status": "DOWN", "reasons": reasons})
			return
		}
		writeJSON(ctx, http.StatusOK, map[string]string{"status": "UP"})
	case "/apis":
		writeJSON(ctx, http.StatusOK, map[string]any{"apis": a.apis()})
	case "/plugins":
		ps := a.opts.Plugins()
		if ps == nil {
			ps = []PluginInfo{}
		}
		writeJSON(ctx, http.StatusOK, map[string]any{"plugins": ps})
	case "/metrics":
		a.metrics(ctx)
	default:
		writeJSON(ctx, http.StatusNotFound, map[string]any{
			"message":          "unknown admin path; use /health, /ready, /apis, /plugins or /metrics",
			"http_status_code": http.StatusNotFound,
		})
	}
}

// notReady lists why the gateway should not receive traffic yet.
func (a *Admin) notReady() []string {
	var reasons []string
	if a.opts.NotReady != nil {
		reasons = append(reasons, a.opts.NotReady()...)
	}
	s := a.opts.Server
	if s == nil || !s.Deployed() {
		return append(reasons, "no API deployed yet")
	}
	down := map[string][]string{}
	use := func(api string, p server.PluginRef) {
		if p != nil && !p.Up() {
			down[p.Name()] = appendUnique(down[p.Name()], api)
		}
	}
	for _, api := range s.APIs() {
		for _, e := range api.Entrypoints {
			use(api.Name, e.Plugin)
		}
		if api.Endpoint != nil {
			use(api.Name, api.Endpoint.Plugin)
		}
		for _, fl := range api.Flows {
			for _, ps := range [][]*server.PolicyInstance{fl.Request, fl.Publish, fl.Subscribe} {
				for _, p := range ps {
					use(api.Name, p.Plugin)
				}
			}
		}
	}
	names := make([]string, 0, len(down))
	for n := range down {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		reasons = append(reasons, "plugin "+n+" is down (used by "+joinComma(down[n])+")")
	}
	return append(reasons, a.endpointNotReady()...)
}

func appendUnique(ss []string, s string) []string {
	for _, x := range ss {
		if x == s {
			return ss
		}
	}
	return append(ss, s)
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// The /apis document.
type (
	apiDoc struct {
		Name        string          `json:"name"`
		ContextPath string          `json:"context_path"`
		Entrypoints []entrypointDoc `json:"entrypoints"`
		Endpoint    *endpointDoc    `json:"endpoint"`
		Flows       flowsDoc        `json:"flows"`
		// Plans show every secret as "(sensitive)".
		Plans              []plan.PlanDoc `json:"plans"`
		MaxRequestBodySize int            `json:"max_request_body_bytes,omitempty"`
		// Targets are the named endpoints beyond the first.
		Targets []*endpointDoc `json:"targets,omitempty"`
		// Push is the state of the API's push subscriptions.
		Push any `json:"push_subscriptions,omitempty"`
	}
	entrypointDoc struct {
		Type       string    `json:"type"`
		InstanceID string    `json:"instance_id"`
		Plugin     string    `json:"plugin"`
		Up         bool      `json:"up"`
		Match      *matchDoc `json:"match"`
	}
	matchDoc struct {
		Methods       []string `json:"methods"`
		Accept        string   `json:"accept,omitempty"`
		WebSocket     bool     `json:"websocket"`
		CriteriaCount int32    `json:"criteria_count"`
	}
	endpointDoc struct {
		Type       string   `json:"type"`
		Name       string   `json:"name"`
		InstanceID string   `json:"instance_id"`
		Plugin     string   `json:"plugin"`
		Up         bool     `json:"up"`
		QoS        []string `json:"qos"`
		// Ready is Up and, for a plugin that checks health, its last
		// answer for the instance; NotReady says why not.
		Ready    bool   `json:"ready"`
		NotReady string `json:"not_ready,omitempty"`
	}
	flowsDoc struct {
		Request   []policyDoc `json:"request"`
		Response  []policyDoc `json:"response"`
		Publish   []policyDoc `json:"publish"`
		Subscribe []policyDoc `json:"subscribe"`
	}
	policyDoc struct {
		Type       string `json:"type"`
		InstanceID string `json:"instance_id"`
		Plugin     string `json:"plugin"`
		Up         bool   `json:"up"`
	}
)

func pluginName(p server.PluginRef) (string, bool) {
	if p == nil {
		return "", false
	}
	return p.Name(), p.Up()
}

func policies(ps []*server.PolicyInstance) []policyDoc {
	out := []policyDoc{}
	for _, p := range ps {
		name, up := pluginName(p.Plugin)
		out = append(out, policyDoc{Type: p.Type, InstanceID: p.InstanceID, Plugin: name, Up: up})
	}
	return out
}

func (a *Admin) apis() []apiDoc {
	out := []apiDoc{}
	if a.opts.Server == nil {
		return out
	}
	for _, api := range a.opts.Server.APIs() {
		d := apiDoc{Name: api.Name, ContextPath: api.ContextPath, Entrypoints: []entrypointDoc{}, Plans: api.Plans.Describe(), MaxRequestBodySize: api.MaxRequestBodySize}
		for _, e := range api.Entrypoints {
			name, up := pluginName(e.Plugin)
			ed := entrypointDoc{Type: e.Type, InstanceID: e.InstanceID, Plugin: name, Up: up}
			if m := e.Match; m != nil {
				ed.Match = &matchDoc{Methods: append([]string{}, m.GetMethods()...), Accept: m.GetAccept(), WebSocket: m.GetWebsocket(), CriteriaCount: m.GetCriteriaCount()}
			}
			d.Entrypoints = append(d.Entrypoints, ed)
		}
		if ep := api.Endpoint; ep != nil {
			name, up := pluginName(ep.Plugin)
			d.Endpoint = &endpointDoc{Type: ep.Type, Name: ep.Name, InstanceID: ep.InstanceID, Plugin: name, Up: up, QoS: append([]string{}, ep.QoS...)}
			d.Endpoint.Ready, d.Endpoint.NotReady = a.endpointReady(ep)
		}
		for name, t := range api.Targets {
			if api.Endpoint != nil && name == api.Endpoint.Name {
				continue
			}
			tn, up := pluginName(t.Plugin)
			td := &endpointDoc{Type: t.Type, Name: t.Name, InstanceID: t.InstanceID, Plugin: tn, Up: up, QoS: append([]string{}, t.QoS...)}
			td.Ready, td.NotReady = a.endpointReady(t)
			d.Targets = append(d.Targets, td)
		}
		slices.SortFunc(d.Targets, func(a, b *endpointDoc) int { return strings.Compare(a.Name, b.Name) })
		if a.opts.Push != nil {
			d.Push = a.opts.Push(api.Name)
		}
		// Every step of every flow, per phase in file order; which flows
		// run is decided per request.
		var req, resp, pub, sub []*server.PolicyInstance
		for _, fl := range api.Flows {
			req, resp = append(req, fl.Request...), append(resp, fl.Response...)
			pub, sub = append(pub, fl.Publish...), append(sub, fl.Subscribe...)
		}
		d.Flows = flowsDoc{Request: policies(req), Response: policies(resp), Publish: policies(pub), Subscribe: policies(sub)}
		out = append(out, d)
	}
	return out
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"cannot encode the answer","http_status_code":500}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(append(b, '\n'))
}

// pluginCollector exports the plugin host's view at scrape time, so the
// counters are exactly what /plugins says.
type pluginCollector struct {
	plugins func() []PluginInfo
	mu      sync.Mutex
}

var (
	restartsDesc = prometheus.NewDesc("sluice_plugin_restarts_total", "Restarts of a plugin process since the gateway started.", []string{"plugin", "kind"}, nil)
	upDesc       = prometheus.NewDesc("sluice_plugin_up", "1 while a plugin process runs with its instances configured, else 0.", []string{"plugin", "kind"}, nil)
)

// Describe sends the plugin metrics' descriptors.
func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- restartsDesc
	ch <- upDesc
}

// Collect reads the plugins once per scrape.
func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.plugins() {
		up := 0.0
		if p.Up {
			up = 1
		}
		// NewConstMetric only fails on label values that are not UTF-8; such
		// a plugin is left out rather than failing the whole scrape.
		if m, err := prometheus.NewConstMetric(restartsDesc, prometheus.CounterValue, float64(p.Restarts), p.Name, p.Kind); err == nil {
			ch <- m
		}
		if m, err := prometheus.NewConstMetric(upDesc, prometheus.GaugeValue, up, p.Name, p.Kind); err == nil {
			ch <- m
		}
	}
}
