package admin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/server"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

type fakePlugin struct {
	name    string
	mu      sync.Mutex
	up      bool
	clients *serve.Clients // nil: Clients fails
}

func (p *fakePlugin) Name() string { return p.name }
func (p *fakePlugin) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}
func (p *fakePlugin) setUp(up bool) {
	p.mu.Lock()
	p.up = up
	p.mu.Unlock()
}
func (p *fakePlugin) OnRestart(func()) {}
func (p *fakePlugin) Clients() (*serve.Clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil || !p.up {
		return nil, errors.New("not in this test")
	}
	return p.clients, nil
}

func get(t *testing.T, a *Admin, path string) (int, string, string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetMethod("GET")
	a.Handler()(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Header.ContentType()), string(ctx.Response.Body())
}

type fixture struct {
	admin    *Admin
	srv      *server.Server
	ep, pol  *fakePlugin
	endpoint *fakePlugin
	apis     []*server.API
}

func newFixture(t *testing.T, notReady func() []string) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		srv:      server.New(server.Options{Metrics: m}),
		ep:       &fakePlugin{name: "entrypoint-sse", up: true},
		pol:      &fakePlugin{name: "policy-assign-attributes", up: true},
		endpoint: &fakePlugin{name: "endpoint-kafka", up: true},
	}
	f.apis = []*server.API{{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*server.EntrypointInstance{{Type: "sse", InstanceID: "demo/entrypoint/sse", Plugin: f.ep,
			Match: &pluginv1.Match{Methods: []string{"GET"}, Accept: "text/event-stream", CriteriaCount: 2}}},
		Endpoint: &server.EndpointInstance{Type: "kafka", Name: "default", InstanceID: "demo/endpoint/default", Plugin: f.endpoint, QoS: []string{"auto"}},
		Flows:    flow.Flows{{Name: "keys", Publish: []*server.PolicyInstance{{Type: "assign-attributes", InstanceID: "demo/flow/keys/publish/0", Plugin: f.pol}}}},
	}}
	plugins := func() []PluginInfo {
		return []PluginInfo{
			{Name: "endpoint-kafka", Kind: "endpoint", Version: "1.2.3", Types: []string{"kafka"}, Up: f.endpoint.Up(), Restarts: 2},
			{Name: "entrypoint-sse", Kind: "entrypoint", Version: "1.0.0", Types: []string{"sse"}, Up: f.ep.Up()},
		}
	}
	f.admin, err = New(Options{Server: f.srv, Plugins: plugins, Registry: reg, NotReady: notReady, HealthTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHealthAndReady(t *testing.T) {
	var extra []string
	f := newFixture(t, func() []string { return extra })
	fh := startFakeHealth(t, f.endpoint, []string{lifecycle.FeatureHealth})
	poll := func() { f.admin.PollHealth(context.Background()) }
	const down = `{"reasons":["api \"demo\" endpoint \"default\": brokers unreachable: k:9092: connection refused"],"status":"DOWN"}` + "\n"
	tests := []struct {
		name   string
		setup  func()
		path   string
		status int
		body   string
	}{
		{"health", nil, "/health", 200, `{"status":"UP"}` + "\n"},
		{"not deployed", nil, "/ready", 503, `{"reasons":["no API deployed yet"],"status":"DOWN"}` + "\n"},
		{"deployed and up", func() {
			if err := f.srv.Deploy(f.apis); err != nil {
				t.Fatal(err)
			}
		}, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"plugins down", func() { f.endpoint.setUp(false); f.pol.setUp(false) }, "/ready", 503,
			`{"reasons":["plugin endpoint-kafka is down (used by demo)","plugin policy-assign-attributes is down (used by demo)"],"status":"DOWN"}` + "\n"},
		{"caller's reasons first", func() { f.endpoint.setUp(true); f.pol.setUp(true); extra = []string{"api other failed to configure"} }, "/ready", 503,
			`{"reasons":["api other failed to configure"],"status":"DOWN"}` + "\n"},
		{"health stays up", nil, "/health", 200, `{"status":"UP"}` + "\n"},
		{"endpoint not ready", func() {
			extra = nil
			fh.set(nil, false, "brokers unreachable: k:9092: connection refused")
			poll()
		}, "/ready", 503, down},
		{"endpoint ready again", func() { fh.set(nil, true, ""); poll() }, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"instances the answer leaves out are ready", func() {
			fh.mu.Lock()
			fh.instances = []*pluginv1.CheckHealth_InstanceHealth{{InstanceId: "other/endpoint/default", Reason: "gone"}}
			fh.mu.Unlock()
			poll()
		}, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"unimplemented is ready", func() {
			fh.set(status.Error(codes.Unimplemented, "no"), false, "ignored")
			poll()
		}, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"a plugin down is reported as down only", func() {
			fh.set(nil, false, "brokers unreachable: k:9092: connection refused")
			poll()
			f.endpoint.setUp(false)
		}, "/ready", 503, `{"reasons":["plugin endpoint-kafka is down (used by demo)"],"status":"DOWN"}` + "\n"},
		{"up again, still not ready", func() { f.endpoint.setUp(true); poll() }, "/ready", 503, down},
		// A plugin that misses its deadline keeps its last state for
		// healthFailuresTolerated polls, then counts as not ready; /ready
		// never waits for it.
		{"a hanging plugin keeps its last state", func() {
			fh.set(nil, true, "")
			poll()
			fh.hang(true)
			for range healthFailuresTolerated {
				poll()
			}
		}, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"then is not ready", poll, "/ready", 503,
			`{"reasons":["api \"demo\" endpoint \"default\": plugin endpoint-kafka did not answer the health check: context deadline exceeded"],"status":"DOWN"}` + "\n"},
		{"answering again", func() { fh.hang(false); poll() }, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"a plugin without the feature is not asked", func() {
			f.endpoint.mu.Lock()
			f.endpoint.clients.Features = nil
			f.endpoint.mu.Unlock()
			fh.set(nil, false, "not asked")
			poll()
		}, "/ready", 200, `{"status":"UP"}` + "\n"},
		{"unknown path", nil, "/nope", 404, `{"http_status_code":404,"message":"unknown admin path; use /health, /ready, /apis, /plugins or /metrics"}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			status, ct, body := get(t, f.admin, tc.path)
			if status != tc.status || ct != "application/json" || body != tc.body {
				t.Fatalf("GET %s = %d %s %q, want %d %q", tc.path, status, ct, body, tc.status, tc.body)
			}
		})
	}
}

func TestAPIsAndPlugins(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.srv.Deploy(f.apis); err != nil {
		t.Fatal(err)
	}
	_, _, body := get(t, f.admin, "/apis")
	want := `{"apis":[{"name":"demo","context_path":"/demo",` +
		`"entrypoints":[{"type":"sse","instance_id":"demo/entrypoint/sse","plugin":"entrypoint-sse","up":true,"match":{"methods":["GET"],"accept":"text/event-stream","websocket":false,"criteria_count":2}}],` +
		`"endpoint":{"type":"kafka","name":"default","instance_id":"demo/endpoint/default","plugin":"endpoint-kafka","up":true,"qos":["auto"],"ready":true},` +
		`"flows":{"request":[],"response":[],"publish":[{"type":"assign-attributes","instance_id":"demo/flow/keys/publish/0","plugin":"policy-assign-attributes","up":true}],"subscribe":[]},` +
		`"plans":[{"type":"keyless"}]}]}` + "\n"
	if body != want {
		t.Fatalf("/apis:\n%s\nwant:\n%s", body, want)
	}
	_, _, body = get(t, f.admin, "/plugins")
	want = `{"plugins":[{"name":"endpoint-kafka","kind":"endpoint","version":"1.2.3","types":["kafka"],"up":true,"restarts":2},` +
		`{"name":"entrypoint-sse","kind":"entrypoint","version":"1.0.0","types":["sse"],"up":true,"restarts":0}]}` + "\n"
	if body != want {
		t.Fatalf("/plugins:\n%s\nwant:\n%s", body, want)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.srv.Deploy(f.apis); err != nil {
		t.Fatal(err)
	}
	// A request the data path answers itself (no context path) is counted.
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/nothing")
	f.srv.Handler()(&ctx)
	if ctx.Response.StatusCode() != 404 {
		t.Fatalf("data path answered %d", ctx.Response.StatusCode())
	}
	status, _, body := get(t, f.admin, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d", status)
	}
	for _, want := range []string{
		`sluice_plugin_restarts_total{kind="endpoint",plugin="endpoint-kafka"} 2`,
		`sluice_plugin_up{kind="entrypoint",plugin="entrypoint-sse"} 1`,
		`sluice_requests_total{api="",entrypoint="",status="404"} 1`,
		`sluice_endpoint_ready{api="demo",endpoint="default"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, nil)
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/health")
	ctx.Request.Header.SetMethod("POST")
	f.admin.Handler()(&ctx)
	if ctx.Response.StatusCode() != 405 {
		t.Fatalf("POST /health = %d", ctx.Response.StatusCode())
	}
}

// /apis shows which plans an API has, never their secrets.
func TestAPIsHideSecrets(t *testing.T) {
	f := newFixture(t, nil)
	const key, secret = "acme-api-key-value", "0123456789abcdef0123456789abcdef-hmac"
	auths, err := plan.Build(map[string][]plan.Config{"demo": {
		{Type: plan.TypeAPIKey, Subscriptions: []plan.Subscription{{ID: "acme", APIKey: key}}},
		{Type: plan.TypeJWT, JWT: &plan.JWTConfig{Signature: "HS256", Secret: secret}, Subscriptions: []plan.Subscription{{ID: "m", ClientID: "mobile"}}},
	}}, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.apis[0].Plans = auths["demo"]
	if err := f.srv.Deploy(f.apis); err != nil {
		t.Fatal(err)
	}
	_, _, body := get(t, f.admin, "/apis")
	if strings.Contains(body, key) || strings.Contains(body, secret) {
		t.Fatalf("/apis shows a secret:\n%s", body)
	}
	for _, want := range []string{
		`{"type":"api-key","header":"X-Gravitee-Api-Key","query_param":"api-key","subscriptions":[{"id":"acme","application":"acme","api_key":"(sensitive)"}]}`,
		`"jwt":{"signature":"HS256","secret":"(sensitive)","clock_skew_seconds":0}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/apis lacks %s:\n%s", want, body)
		}
	}
}
