package admin

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluice-gw/sluice/core/internal/server"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// fakeHealth is a plugin's base service answering CheckHealth as a test
// sets it, on a real gRPC connection.
type fakeHealth struct {
	pluginv1.UnimplementedPluginServer
	mu        sync.Mutex
	instances []*pluginv1.CheckHealth_InstanceHealth
	err       error
	hanging   chan struct{} // non-nil: calls wait for it or their deadline
	calls     int
}

func (f *fakeHealth) CheckHealth(ctx context.Context, _ *pluginv1.CheckHealth_Request) (*pluginv1.CheckHealth_Response, error) {
	f.mu.Lock()
	f.calls++
	hang, err, is := f.hanging, f.err, f.instances
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return &pluginv1.CheckHealth_Response{Instances: is}, nil
}

// set makes the fixture's endpoint instance answer ready and reason, or err.
func (f *fakeHealth) set(err error, ready bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	f.instances = []*pluginv1.CheckHealth_InstanceHealth{{InstanceId: "demo/endpoint/default", Ready: ready, Reason: reason}}
}

func (f *fakeHealth) hang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case on && f.hanging == nil:
		f.hanging = make(chan struct{})
	case !on && f.hanging != nil:
		close(f.hanging)
		f.hanging = nil
	}
}

// startFakeHealth serves a fakeHealth and gives p its clients, announcing
// features.
func startFakeHealth(t *testing.T, p *fakePlugin, features []string) *fakeHealth {
	t.Helper()
	fh := &fakeHealth{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pluginv1.RegisterPluginServer(gs, fh)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fh.hang(false)
		_ = conn.Close()
		gs.Stop()
	})
	c := serve.NewClients(conn)
	c.Features = features
	p.mu.Lock()
	p.clients = c
	p.mu.Unlock()
	return fh
}

// Serve polls once before it answers, then in the background, faster while
// an endpoint is not ready; /apis and the metric show the same state as
// /ready; Shutdown stops the polls.
func TestHealthPollsInTheBackground(t *testing.T) {
	f := newFixture(t, nil)
	fh := startFakeHealth(t, f.endpoint, []string{lifecycle.FeatureHealth})
	fh.set(nil, false, "brokers unreachable: k:9092: connection refused")
	// A named target beyond the first endpoint is checked too.
	f.apis[0].Targets = map[string]*server.EndpointInstance{
		"default": f.apis[0].Endpoint,
		"dlq":     {Type: "kafka", Name: "dlq", InstanceID: "demo/endpoint/dlq", Plugin: f.endpoint},
	}
	if err := f.srv.Deploy(f.apis); err != nil {
		t.Fatal(err)
	}
	f.admin.opts.HealthInterval = 40 * time.Millisecond
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.admin.Serve(lis) }()
	t.Cleanup(func() { _ = f.admin.Shutdown(context.Background()) })

	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, body := get(t, f.admin, "/ready")
		if status == 503 && strings.Contains(body, `endpoint \"default\": brokers unreachable`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready = %d %s, want 503 naming the endpoint", status, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, _, apis := get(t, f.admin, "/apis")
	for _, want := range []string{
		`"qos":["auto"],"ready":false,"not_ready":"brokers unreachable: k:9092: connection refused"}`,
		`"name":"dlq","instance_id":"demo/endpoint/dlq","plugin":"endpoint-kafka","up":true,"qos":[],"ready":true}`,
	} {
		if !strings.Contains(apis, want) {
			t.Errorf("/apis lacks %s:\n%s", want, apis)
		}
	}
	_, _, metrics := get(t, f.admin, "/metrics")
	for _, want := range []string{`sluice_endpoint_ready{api="demo",endpoint="default"} 0`, `sluice_endpoint_ready{api="demo",endpoint="dlq"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	fh.set(nil, true, "")
	for {
		status, _, body := get(t, f.admin, "/ready")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready = %d %s, want 200 once the endpoint is ready", status, body)
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := f.admin.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	fh.mu.Lock()
	calls := fh.calls
	fh.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if fh.calls != calls {
		t.Errorf("%d polls after Shutdown", fh.calls-calls)
	}
}
