package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/core/internal/fakeplugin"
	"github.com/sluice-gw/sluice/core/internal/plan"
)

func authenticator(t *testing.T, cfgs ...plan.Config) *plan.Authenticator {
	t.Helper()
	a, err := plan.Build(map[string][]plan.Config{"demo": cfgs}, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a["demo"]
}

// Plans run in the core: a refused request never reaches a plugin, and an
// accepted one reaches it without its API key, identified by its
// subscription.
func TestPlansInTheCore(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"post": postHandler})
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-post", "post", matchPost)},
		Endpoint:    e.endpoint(),
		Plans: authenticator(t, plan.Config{Type: plan.TypeAPIKey, Subscriptions: []plan.Subscription{
			{ID: "acme", APIKey: "acme-secret"},
		}}),
	})

	refused := []struct {
		name    string
		url     string
		headers []string
		status  int
		body    string
	}{
		{"no key", "/demo", []string{"Accept", "application/json"}, 401, `{"message":"Unauthorized","http_status_code":401}`},
		{"wrong key", "/demo", []string{"Accept", "*/*", "X-Gravitee-Api-Key", "nope"}, 401, `{"message":"Unauthorized","http_status_code":401}`},
		{"wrong key in query", "/demo?api-key=nope", []string{"Accept", "application/json"}, 401, `{"message":"Unauthorized","http_status_code":401}`},
		{"no accept", "/demo", nil, 401, `Unauthorized`},
	}
	for _, c := range refused {
		resp, body := do(t, "POST", e.base+c.url, "x", c.headers...)
		if resp.StatusCode != c.status || body != c.body {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.status, c.body)
		}
	}
	if streams, published := e.end.Snapshot(); streams != 0 || len(published) != 0 {
		t.Fatalf("refused requests reached the endpoint: %d streams, %d batches", streams, len(published))
	}

	if resp, body := do(t, "POST", e.base+"/demo/x?a=1", "by header", "X-Gravitee-Api-Key", "acme-secret", "X-Gravitee-Client-Identifier", "mine"); resp.StatusCode != 202 {
		t.Fatalf("with the key: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", e.base+"/demo/x?api-key=acme-secret&a=1", "by query"); resp.StatusCode != 202 {
		t.Fatalf("with the key in the query: %d %s", resp.StatusCode, body)
	}
	_, published := e.end.Snapshot()
	if len(published) != 2 {
		t.Fatalf("%d batches, want 2", len(published))
	}
	for i, wantClient := range []string{"mine-acme", "acme"} {
		ctx := published[i].GetContext()
		req := ctx.GetRequest()
		if req.GetClientIdentifier() != wantClient {
			t.Errorf("batch %d: client identifier %q, want %q", i, req.GetClientIdentifier(), wantClient)
		}
		if v := headerValues(req.GetHeaders(), "X-Gravitee-Api-Key"); len(v) != 0 {
			t.Errorf("batch %d: the API key header reached the plugin", i)
		}
		if v := headerValues(req.GetParams(), "api-key"); len(v) != 0 {
			t.Errorf("batch %d: the API key query parameter reached the plugin", i)
		}
		if v := headerValues(req.GetParams(), "a"); len(v) != 1 {
			t.Errorf("batch %d: other query parameters lost: %v", i, req.GetParams())
		}
		attrs := ctx.GetAttributes()
		for k, want := range map[string]string{plan.AttrPlan: "api-key", plan.AttrSubscription: "acme", plan.AttrApplication: "acme"} {
			if got := attrs[k].GetStringValue(); got != want {
				t.Errorf("batch %d: %s = %q, want %q", i, k, got, want)
			}
		}
	}
}

// Bodies over the API's limit and headers over the gateway's get the
// failure format, and the connection closes; the server goes on serving.
func TestRequestLimits(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"post": postHandler})
	e.srv.http.ReadBufferSize = 2048
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints:        []*EntrypointInstance{e.entrypoint("http-post", "post", matchPost)},
		Endpoint:           e.endpoint(),
		MaxRequestBodySize: 1000,
	})
	resp, body := do(t, "POST", e.base+"/demo", strings.Repeat("x", 1001), "Accept", "application/json")
	if resp.StatusCode != 413 || body != `{"message":"Request Entity Too Large","http_status_code":413}` {
		t.Fatalf("large body: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "POST", e.base+"/demo/x?q=1", strings.Repeat("x", 1001), "Accept", "application/json")
	if resp.StatusCode != 413 {
		t.Fatalf("large body with a query string: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "POST", e.base+"/demo", "x", "X-Big", strings.Repeat("h", 4096))
	if resp.StatusCode != 431 || body != `{"message":"Request Header Fields Too Large","http_status_code":431}` {
		t.Fatalf("large header: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", e.base+"/demo", strings.Repeat("x", 1000)); resp.StatusCode != 202 {
		t.Fatalf("a body at the limit: %d %s", resp.StatusCode, body)
	}
}

func TestConnectionLimits(t *testing.T) {
	srv := New(Options{MaxConnectionsPerIP: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown(t.Context())

	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// A request answered on the first connection proves it holds its slot.
	if _, err := io.WriteString(first, "GET /x HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("first connection: %v %v", resp, err)
	}
	resp.Body.Close()

	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	resp, err = http.ReadResponse(bufio.NewReader(second), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || string(b) != `{"message":"Too many connections","http_status_code":429}` {
		t.Fatalf("second connection: %d %s", resp.StatusCode, b)
	}

	// Closing the first gives its slot back.
	first.Close()
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err == nil && resp.StatusCode == 404 {
			break
		}
		// The server notices the close asynchronously; try again.
	}
}

func TestFasthttpLogRedaction(t *testing.T) {
	args := redactArgs([]any{errors.New(`cannot parse "GET /?api-key=secret HTTP/1.1"`), 3, "plain"})
	if args[0] != "cannot parse (request bytes redacted)" || args[1] != 3 || args[2] != "plain" {
		t.Fatalf("%v", args)
	}
}
