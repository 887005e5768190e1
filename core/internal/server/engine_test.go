package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/core/internal/fakeplugin"
	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// env is a data path on a loopback port with one fake plugin of each kind.
type env struct {
	srv  *Server
	base string
	ln   *recordingListener
	// reg holds the data path's metrics.
	reg *prometheus.Registry

	entry       *fakeplugin.Entrypoint
	entryPlugin *fakeplugin.Plugin
	end         *fakeplugin.Endpoint
	endPlugin   *fakeplugin.Plugin
	pol         *fakeplugin.Policy
	polPlugin   *fakeplugin.Plugin
}

var (
	matchPost = &pluginv1.Match{Methods: []string{"POST"}, CriteriaCount: 1}
	matchGet  = &pluginv1.Match{Methods: []string{"GET"}, CriteriaCount: 1}
	matchSSE  = &pluginv1.Match{Methods: []string{"GET"}, Accept: "text/event-stream", CriteriaCount: 2}
	matchWS   = &pluginv1.Match{Websocket: true, CriteriaCount: 4}
)

func newEnv(t *testing.T, handlers map[string]func(*fakeplugin.Conn) error) *env {
	t.Helper()
	e := &env{
		entry: &fakeplugin.Entrypoint{Handlers: handlers},
		end:   &fakeplugin.Endpoint{},
		pol:   &fakeplugin.Policy{},
	}
	e.entryPlugin = fakeplugin.Start(t, "fake-entrypoint", func(s *grpc.Server) { pluginv1.RegisterEntrypointServer(s, e.entry) })
	e.endPlugin = fakeplugin.Start(t, "fake-endpoint", func(s *grpc.Server) { pluginv1.RegisterEndpointServer(s, e.end) })
	e.polPlugin = fakeplugin.Start(t, "fake-policy", func(s *grpc.Server) { pluginv1.RegisterPolicyServer(s, e.pol) })

	e.reg = prometheus.NewRegistry()
	m, err := NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = New(Options{StopGrace: waitLimit, Metrics: m})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.ln = &recordingListener{Listener: ln}
	go func() { _ = e.srv.Serve(e.ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_ = e.srv.Shutdown(ctx)
	})
	e.base = "http://" + ln.Addr().String()
	return e
}

// counter is the value of the counter name for api in reg, 0 when it has
// not counted anything.
func counter(t *testing.T, reg *prometheus.Registry, name, api string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "api" && l.GetValue() == api {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (e *env) entrypoint(typ, instance string, m *pluginv1.Match) *EntrypointInstance {
	return &EntrypointInstance{Type: typ, InstanceID: instance, Plugin: e.entryPlugin, Match: m}
}

func (e *env) endpoint() *EndpointInstance {
	return &EndpointInstance{Type: "fake", Name: "default", InstanceID: "ep-1", Plugin: e.endPlugin, QoS: []string{"auto", "at-least-once"}}
}

func (e *env) policy(id string) *PolicyInstance {
	return &PolicyInstance{Type: "fake-policy", InstanceID: id, Plugin: e.polPlugin}
}

func (e *env) deploy(t *testing.T, apis ...*API) {
	t.Helper()
	if err := e.srv.Deploy(apis); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// postHandler is http-post: the body becomes one message; 202 once the
// endpoint accepted it, the failure otherwise.
func postHandler(c *fakeplugin.Conn) error {
	if err := c.Publish(1, &pluginv1.Message{Content: c.Open.GetContext().GetRequest().GetBody()}); err != nil {
		return err
	}
	for ev := range c.Events {
		if p := ev.GetPublished(); p != nil {
			if f := p.GetFailure(); f != nil {
				return c.Finish(&pluginv1.Connect_Finish{Respond: &pluginv1.Connect_Respond{Status: f.GetStatus(), Body: []byte(f.GetMessage())}})
			}
			if err := c.Respond(202, nil); err != nil {
				return err
			}
			return c.Finish(&pluginv1.Connect_Finish{})
		}
	}
	return nil
}

func TestPostPublishes(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"post": postHandler})
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-post", "post", matchPost)},
		Endpoint:    e.endpoint(),
		Flows:       flow.Flows{{Name: "f", Publish: []*PolicyInstance{e.policy("upper")}}},
	})

	for i := range 3 {
		resp, body := do(t, "POST", e.base+"/demo/items?x=1", "hello "+strconv.Itoa(i), "X-Test", "v")
		if resp.StatusCode != 202 || body != "" || resp.ContentLength != 0 {
			t.Fatalf("POST #%d: %d %q (length %d), want 202 with an empty body", i, resp.StatusCode, body, resp.ContentLength)
		}
		if resp.Header.Get(plan.HeaderClientIdentifier) != shaLoopback || resp.Header.Get(plan.HeaderRequestID) == "" ||
			resp.Header.Get(plan.HeaderTransactionID) != resp.Header.Get(plan.HeaderRequestID) {
			t.Fatalf("identification headers: %v", resp.Header)
		}
	}

	streams, published := e.end.Snapshot()
	if streams != 1 {
		t.Fatalf("the endpoint saw %d Publish streams, want 1 shared by every request", streams)
	}
	if len(published) != 3 {
		t.Fatalf("the endpoint got %d batches, want 3", len(published))
	}
	for i, b := range published {
		if got := string(b.GetMessages()[0].GetContent()); got != "HELLO "+strconv.Itoa(i) {
			t.Fatalf("batch %d content %q: publish-phase policy not applied", i, got)
		}
		req := b.GetContext().GetRequest()
		if b.GetInstanceId() != "ep-1" || req.GetMethod() != "POST" || req.GetPath() != "/demo/items" ||
			req.GetContextPath() != "/demo" || req.GetPathInfo() != "/items" || req.GetRemoteAddress() != "127.0.0.1" ||
			req.GetClientIdentifier() != shaLoopback || b.GetContext().GetApiId() != "demo" {
			t.Fatalf("publish context: %v", b.GetContext())
		}
		if v := headerValues(req.GetHeaders(), "x-test"); len(v) != 1 || v[0] != "v" {
			t.Fatalf("request headers in the snapshot: %v", req.GetHeaders())
		}
		if v := headerValues(req.GetParams(), "x"); len(v) != 1 || v[0] != "1" {
			t.Fatalf("request params in the snapshot: %v", req.GetParams())
		}
	}
	polStreams := e.pol.Streams()
	if polStreams != 1 {
		t.Fatalf("the policy saw %d OnMessages streams, want 1", polStreams)
	}

	// A restarted endpoint gets a new Publish stream on the next request.
	e.endPlugin.Restart(t)
	if resp, body := do(t, "POST", e.base+"/demo", "after restart"); resp.StatusCode != 202 {
		t.Fatalf("POST after restart: %d %q", resp.StatusCode, body)
	}
	if streams, published := e.end.Snapshot(); streams != 2 || string(published[3].GetMessages()[0].GetContent()) != "AFTER RESTART" {
		t.Fatalf("after restart: %d streams, %d batches", streams, len(published))
	}
}

// sha256 of "127.0.0.1": the keyless client identifier of local clients.
const shaLoopback = "12ca17b49af2289436f303e0166030a21e525d266e209267433801a8fd4071a0"

func TestFailures(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{
		"post":   postHandler,
		"crash":  func(*fakeplugin.Conn) error { return status.Error(codes.Unavailable, "connection lost") },
		"silent": func(*fakeplugin.Conn) error { return nil },
		"failure": func(*fakeplugin.Conn) error {
			st, _ := status.New(codes.Internal, "x").WithDetails(&pluginv1.Failure{Status: 500, Message: "Invalid configuration", RequestLevel: true})
			return st.Err()
		},
		// Subscribes before answering and leaves endpoint failures to the core.
		"subscribe-first": func(c *fakeplugin.Conn) error {
			if err := c.Subscribe(string(c.Open.GetContext().GetRequest().GetPathInfo()[1:])); err != nil {
				return err
			}
			for ev := range c.Events {
				if ev.GetEnd() != nil {
					return nil
				}
			}
			return nil
		},
	})
	e.end.OnSubscribe = func(stream pluginv1.Endpoint_SubscribeServer, start *pluginv1.Subscribe_Start) error {
		return stream.Send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Failure{Failure: &pluginv1.Failure{
			Status: 500, Key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID", Message: "Invalid configuration", RequestLevel: true,
		}}})
	}
	e.deploy(t,
		&API{Name: "sub", ContextPath: "/sub", Endpoint: e.endpoint(),
			Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "subscribe-first", matchGet)}},
		&API{Name: "demo", ContextPath: "/demo", Endpoint: e.endpoint(),
			Entrypoints: []*EntrypointInstance{e.entrypoint("http-post", "post", matchPost)}},
		&API{Name: "crash", ContextPath: "/crash",
			Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "crash", matchGet)}},
		&API{Name: "silent", ContextPath: "/silent",
			Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "silent", matchGet)}},
		&API{Name: "failure", ContextPath: "/failure",
			Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "failure", matchGet)}},
	)

	tests := map[string]struct {
		setup       func()
		method, url string
		accept      string
		status      int
		body        string
		close       bool
	}{
		"no context path": {
			method: "GET", url: "/nothing", accept: "application/json", status: 404,
			body: `{"message":"No context-path matches the request URI.","http_status_code":404}`,
		},
		"no entrypoint, text": {
			method: "PUT", url: "/demo", status: 404, body: "No entrypoint matches the incoming request",
		},
		"plugin unavailable": {
			setup:  func() { e.entryPlugin.SetDown(true) },
			method: "POST", url: "/demo", accept: "*/*", status: 503, close: true,
			body: `{"message":"plugin fake-entrypoint is unavailable","http_status_code":503}`,
		},
		"endpoint unavailable": {
			setup:  func() { e.endPlugin.SetDown(true) },
			method: "POST", url: "/demo", status: 503, body: "plugin fake-endpoint is unavailable",
		},
		"unavailable mid-request": {
			method: "GET", url: "/crash", status: 502, close: true, body: "plugin fake-entrypoint did not respond",
		},
		"ended without answering": {
			method: "GET", url: "/silent", status: 502, close: true, body: "plugin fake-entrypoint did not respond",
		},
		"request-level endpoint failure answered by the core": {
			method: "GET", url: "/sub/auto", accept: "application/json", status: 500, close: true,
			body: `{"message":"Invalid configuration","http_status_code":500}`,
		},
		"unsupported qos": {
			method: "GET", url: "/sub/none", status: 500, close: true,
			body: `endpoint fake does not support qos none; use one of "auto", "at-least-once"`,
		},
		"plugin failure detail": {
			method: "GET", url: "/failure", accept: "application/json", status: 500, close: true,
			body: `{"message":"Invalid configuration","http_status_code":500}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e.entryPlugin.SetDown(false)
			e.endPlugin.SetDown(false)
			if tc.setup != nil {
				tc.setup()
			}
			var hdr []string
			if tc.accept != "" {
				hdr = []string{"Accept", tc.accept}
			}
			resp, body := do(t, tc.method, e.base+tc.url, "x", hdr...)
			if resp.StatusCode != tc.status || body != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if resp.Close != tc.close {
				t.Fatalf("Connection: close = %v, want %v", resp.Close, tc.close)
			}
		})
	}
}

func TestRequestPhase(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{
		"echo": func(c *fakeplugin.Conn) error {
			body := c.Attr("test.attr") + "|" + c.Attr(plan.AttrClientIdentifier) + "|" + c.Attr(plan.AttrPlan)
			return c.Respond(200, []byte(body), &pluginv1.Header{Name: "Content-Type", Values: []string{"text/plain"}})
		},
	})
	e.pol.Decide = func(req *pluginv1.OnRequest_Request) *pluginv1.OnRequest_Response {
		if len(headerValues(req.GetContext().GetRequest().GetHeaders(), "X-Deny")) > 0 {
			return &pluginv1.OnRequest_Response{Interrupt: &pluginv1.Failure{Status: 412, Message: "An error occurred"}}
		}
		if req.GetInstanceId() == "second" {
			// The second policy sees what the first set, and removes it.
			prev := req.GetContext().GetAttributes()["test.attr"].GetStringValue()
			return &pluginv1.OnRequest_Response{SetAttributes: map[string]*structpb.Value{
				"test.attr": structpb.NewStringValue(prev + "+second"),
				"test.gone": structpb.NewNullValue(),
			}}
		}
		return &pluginv1.OnRequest_Response{SetAttributes: map[string]*structpb.Value{
			"test.attr": structpb.NewStringValue("first"),
			"test.gone": structpb.NewStringValue("x"),
		}}
	}
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "echo", matchGet)},
		Flows:       flow.Flows{{Name: "f", Request: []*PolicyInstance{e.policy("first"), e.policy("second")}}},
	})

	tests := map[string]struct {
		headers []string
		status  int
		body    string
		ct      string
		hdrID   string
	}{
		"attributes reach the entrypoint": {
			status: 200, body: "first+second|" + shaLoopback + "|keyless", ct: "text/plain", hdrID: shaLoopback,
		},
		"client identifier prefix": {
			headers: []string{plan.HeaderClientIdentifier, "me"},
			status:  200, body: "first+second|me-" + shaLoopback + "|keyless", ct: "text/plain", hdrID: "me",
		},
		"interrupt, text": {
			headers: []string{"X-Deny", "1"},
			status:  412, body: "An error occurred", ct: "text/plain", hdrID: shaLoopback,
		},
		"interrupt, json": {
			headers: []string{"X-Deny", "1", "Accept", "application/json"},
			status:  412, body: `{"message":"An error occurred","http_status_code":412}`, ct: "application/json", hdrID: shaLoopback,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := do(t, "GET", e.base+"/demo", "", tc.headers...)
			if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("Content-Type") != tc.ct {
				t.Fatalf("got %d %q (%s), want %d %q (%s)", resp.StatusCode, body, resp.Header.Get("Content-Type"), tc.status, tc.body, tc.ct)
			}
			if got := resp.Header.Get(plan.HeaderClientIdentifier); got != tc.hdrID {
				t.Fatalf("%s = %q, want %q", plan.HeaderClientIdentifier, got, tc.hdrID)
			}
		})
	}
}

// sseHandler is a minimal SSE entrypoint: one event per message, each Write
// acknowledging what it carries.
func sseHandler(c *fakeplugin.Conn) error {
	if err := c.Respond(200, nil, &pluginv1.Header{Name: "Content-Type", Values: []string{"text/event-stream"}}); err != nil {
		return err
	}
	if err := c.Write(false, 0, []byte("retry: 1000\n\n")); err != nil {
		return err
	}
	if err := c.Subscribe("at-least-once"); err != nil {
		return err
	}
	for ev := range c.Events {
		switch {
		case ev.GetDeliver() != nil:
			var chunks [][]byte
			var last uint64
			for _, m := range ev.GetDeliver().GetMessages() {
				chunks = append(chunks, []byte("event: message\ndata: "+string(m.GetContent())+"\n\n"))
				last = m.GetTag()
			}
			if err := c.Write(false, last, chunks...); err != nil {
				return err
			}
		case ev.GetEnd() != nil:
			return nil
		}
	}
	return nil
}

func TestSSEStreamAcksAndDisconnect(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{"sse": sseHandler})
	type ackSeen struct {
		tag     uint64
		written bool
	}
	acks := make(chan ackSeen, 1024)
	clientClosed := make(chan struct{})
	subEnded := make(chan struct{})
	batch := func(tag uint64) *pluginv1.Subscribe_Response {
		msg := &pluginv1.Message{Content: []byte("m" + strconv.FormatUint(tag, 10)), Tag: tag}
		return &pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Batch{Batch: &pluginv1.Subscribe_Batch{Messages: []*pluginv1.Message{msg}}}}
	}
	e.end.OnSubscribe = func(stream pluginv1.Endpoint_SubscribeServer, start *pluginv1.Subscribe_Start) error {
		defer close(subEnded)
		if start.GetQos() != "at-least-once" || start.GetContext().GetRequest().GetClientIdentifier() != shaLoopback {
			return errors.New("unexpected start")
		}
		if err := stream.Send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Ready{Ready: &pluginv1.Subscribe_Ready{Cursor: "c0"}}}); err != nil {
			return err
		}
		// Every acknowledgement is checked against what the socket carried
		// when it arrived.
		recvDone := make(chan struct{})
		ackSignal := make(chan struct{}, 1024)
		go func() {
			defer close(recvDone)
			for {
				req, err := stream.Recv()
				if err != nil {
					return // half-closed by the core: the client went away
				}
				got := req.GetAck().GetThroughTag()
				acks <- ackSeen{tag: got, written: e.ln.wrote("data: M" + strconv.FormatUint(got, 10) + "\n\n")}
				ackSignal <- struct{}{}
			}
		}()
		// Three messages, each only once the previous one was acknowledged.
		for tag := uint64(1); tag <= 3; tag++ {
			if err := stream.Send(batch(tag)); err != nil {
				return err
			}
			select {
			case <-ackSignal:
			case <-recvDone:
				return errors.New("subscription closed early")
			}
		}
		// Then, once the client is gone, messages until the core closes the
		// subscription.
		<-clientClosed
		for tag := uint64(4); ; tag++ {
			select {
			case <-recvDone:
				return nil
			default:
			}
			if err := stream.Send(batch(tag)); err != nil {
				return nil
			}
		}
	}
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "never", matchGet), e.entrypoint("sse", "sse", matchSSE)},
		Endpoint:    e.endpoint(),
		Flows:       flow.Flows{{Name: "f", Subscribe: []*PolicyInstance{e.policy("upper")}}},
	})

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /demo HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
	r := &streamReader{r: conn}
	head := r.until(t, "\r\n\r\n")
	for _, want := range []string{"HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream\r\n", "Cache-Control: no-cache\r\n",
		"X-Accel-Buffering: no\r\n", "Transfer-Encoding: chunked\r\n", plan.HeaderClientIdentifier + ": " + shaLoopback + "\r\n"} {
		if !strings.Contains(head, want) {
			t.Fatalf("response head lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(head, "Content-Encoding") || strings.Contains(head, "Content-Length") {
		t.Fatalf("a stream is neither compressed nor sized:\n%s", head)
	}
	// Every Write is flushed as it comes; writes that were waiting together
	// may share one HTTP chunk, so the body is compared without its chunk
	// framing.
	raw := r.until(t, "retry: 1000\n\n")
	want := "retry: 1000\n\n"
	for tag := 1; tag <= 3; tag++ {
		raw += r.until(t, "data: M"+strconv.Itoa(tag)+"\n\n")
		want += "event: message\ndata: M" + strconv.Itoa(tag) + "\n\n"
		a := <-acks
		if a.tag != uint64(tag) || !a.written {
			t.Fatalf("ack %+v: want tag %d, acknowledged only once written", a, tag)
		}
	}
	if got := dechunk(t, raw); got != want {
		t.Fatalf("stream body %q, want %q (subscribe-phase policy applied)", got, want)
	}

	// The client goes away: writes fail, the entrypoint hears
	// End{client_gone} and the subscription is closed.
	conn.Close()
	close(clientClosed)
	select {
	case <-subEnded:
	case <-time.After(waitLimit):
		t.Fatal("the subscription was not closed after the client went away")
	}
	for len(acks) > 0 {
		if a := <-acks; !a.written {
			t.Fatalf("ack %d reached the endpoint before its message was written", a.tag)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for e.entry.ClientGoneEnds() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the entrypoint never heard End{client_gone}")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWebSocketRoundTrip(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{
		"ws": func(c *fakeplugin.Conn) error {
			if !c.Open.GetContext().GetRequest().GetWebsocket() {
				return errors.New("not a websocket request")
			}
			if err := c.Subscribe("auto"); err != nil {
				return err
			}
			var batch uint64
			delivered := 0
			for ev := range c.Events {
				switch {
				case ev.GetInbound() != nil:
					var msgs []*pluginv1.Message
					for _, f := range ev.GetInbound().GetFrames() {
						msgs = append(msgs, &pluginv1.Message{Content: f.GetData()})
					}
					batch++
					if err := c.Publish(batch, msgs...); err != nil {
						return err
					}
				case ev.GetPublished().GetFailure() != nil:
					return c.Finish(&pluginv1.Connect_Finish{CloseCode: 1011, Reason: ev.GetPublished().GetFailure().GetMessage()})
				case ev.GetDeliver() != nil:
					var chunks [][]byte
					var last uint64
					for _, m := range ev.GetDeliver().GetMessages() {
						chunks = append(chunks, m.GetContent())
						last = m.GetTag()
						delivered++
					}
					if err := c.Write(false, last, chunks...); err != nil {
						return err
					}
					if delivered >= 3 {
						return c.Finish(&pluginv1.Connect_Finish{CloseCode: 1000, Reason: "Bye"})
					}
				case ev.GetEnd() != nil:
					return nil
				}
			}
			return nil
		},
	})
	e.end.Feed = make(chan *pluginv1.Message, 16)
	acked := make(chan uint64, 16)
	e.end.OnSubscribe = func(stream pluginv1.Endpoint_SubscribeServer, start *pluginv1.Subscribe_Start) error {
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			for {
				req, err := stream.Recv()
				if err != nil {
					return
				}
				acked <- req.GetAck().GetThroughTag()
			}
		}()
		var tag uint64
		for {
			select {
			case <-closed:
				return nil // the core closed the subscription
			case m := <-e.end.Feed:
				tag++
				m.Tag = tag
				if err := stream.Send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Batch{Batch: &pluginv1.Subscribe_Batch{Messages: []*pluginv1.Message{m}}}}); err != nil {
					return nil
				}
			case <-stream.Context().Done():
				return nil
			}
		}
	}
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("http-get", "never", matchGet), e.entrypoint("websocket", "ws", matchWS)},
		Endpoint:    e.endpoint(),
	})

	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/demo", http.Header{"Origin": {"https://elsewhere.example"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if resp.StatusCode != 101 || resp.Header.Get(plan.HeaderClientIdentifier) != shaLoopback {
		t.Fatalf("upgrade response: %d %v", resp.StatusCode, resp.Header)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	sent := []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "one"}, {websocket.BinaryMessage, "two"}, {websocket.TextMessage, "three"}}
	for _, s := range sent {
		if err := c.WriteMessage(s.typ, []byte(s.data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sent {
		typ, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.BinaryMessage || string(data) != s.data {
			t.Fatalf("got frame %d %q, want binary %q", typ, data, s.data)
		}
	}
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 || ce.Text != "Bye" {
		t.Fatalf("close: %v, want 1000 Bye", err)
	}
	for want := uint64(1); want <= 3; want++ {
		select {
		case got := <-acked:
			if got != want {
				t.Fatalf("ack %d, want %d", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no ack %d", want)
		}
	}
	_, published := e.end.Snapshot()
	var contents []string
	for _, b := range published {
		for _, m := range b.GetMessages() {
			contents = append(contents, string(m.GetContent()))
		}
	}
	if strings.Join(contents, ",") != "one,two,three" {
		t.Fatalf("published %q, want one,two,three in order", contents)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, map[string]func(*fakeplugin.Conn) error{
		// Like the SSE entrypoint: on End{stopping}, a goaway event, then
		// Finish.
		"sse": func(c *fakeplugin.Conn) error {
			if err := c.Respond(200, nil, &pluginv1.Header{Name: "Content-Type", Values: []string{"text/event-stream"}}); err != nil {
				return err
			}
			if err := c.Write(false, 0, []byte("retry: 1000\n\n")); err != nil {
				return err
			}
			if err := c.Subscribe("auto"); err != nil {
				return err
			}
			for ev := range c.Events {
				if end := ev.GetEnd(); end != nil {
					if !end.GetStopping() || end.GetClientGone() {
						return errors.New("end without stopping")
					}
					if err := c.Write(false, 0, []byte("event: goaway\ndata: Stopping, please reconnect\n\n")); err != nil {
						return err
					}
					return c.Finish(&pluginv1.Connect_Finish{})
				}
			}
			return nil
		},
		"ws": func(c *fakeplugin.Conn) error {
			if err := c.Subscribe("auto"); err != nil {
				return err
			}
			for ev := range c.Events {
				if ev.GetEnd() != nil {
					return nil // ends without Finish: the core picks the close code
				}
			}
			return nil
		},
	})
	subscribed := make(chan struct{}, 2)
	e.end.OnSubscribe = func(stream pluginv1.Endpoint_SubscribeServer, start *pluginv1.Subscribe_Start) error {
		subscribed <- struct{}{}
		for {
			if _, err := stream.Recv(); err != nil {
				return nil
			}
		}
	}
	e.deploy(t, &API{
		Name: "demo", ContextPath: "/demo",
		Entrypoints: []*EntrypointInstance{e.entrypoint("sse", "sse", matchSSE), e.entrypoint("websocket", "ws", matchWS)},
		Endpoint:    e.endpoint(),
	})

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(conn, "GET /demo HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := &streamReader{r: conn}
	r.until(t, "retry: 1000\n\n")

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(waitLimit))
	<-subscribed
	<-subscribed

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()

	// The SSE entrypoint hears End{stopping} while the client is still
	// there: its goaway event goes out, then the stream ends cleanly with
	// the last chunk.
	if got, want := r.until(t, "0\r\n\r\n"), "\r\n30\r\nevent: goaway\ndata: Stopping, please reconnect\n\n\r\n0\r\n\r\n"; got != want {
		t.Fatalf("end of stream %q, want %q", got, want)
	}
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1013 || ce.Text != "Try Again Later" {
		t.Fatalf("websocket close: %v, want 1013 Try Again Later", err)
	}
	ws.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Each entrypoint heard exactly one End, saying the gateway stops.
	ends := e.entry.Ends()
	if len(ends) != 2 {
		t.Fatalf("%d ends, want 2: %v", len(ends), ends)
	}
	for _, end := range ends {
		if !end.GetStopping() || end.GetClientGone() {
			t.Fatalf("end %v, want stopping only", end)
		}
	}
}
