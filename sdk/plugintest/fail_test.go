package plugintest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// recorder stands in for the test when a harness method is expected to fail
// it, and records the message.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// fails runs f with a recorder and returns the message it failed with, or ""
// when it did not fail.
func fails(t *testing.T, f func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

func TestHarnessFailsTheTest(t *testing.T) {
	h := plugintest.Start(t, newEcho())
	h.Configure(t, "i1", "echo", fakeConfig{Prefix: "x"})
	h.Publish(t, "i1", ctxWith(nil), &gateway.Message{Content: []byte("m")})
	tests := map[string]struct {
		run  func(testing.TB)
		want string
	}{
		"ready after failure": {
			func(tb testing.TB) {
				h.Subscribe(t, endpoint.SubscribeRequest{Context: ctxWith(nil), QoS: "fail", LastID: "x"}).Ready(tb, wait)
			},
			"plugintest: subscription ended with failure FAILURE_ENDPOINT_UNAVAILABLE: no x before Ready",
		},
		"ready after clean end": {
			func(tb testing.TB) {
				s := h.Subscribe(t, endpoint.SubscribeRequest{Context: ctxWith(nil), QoS: "end"})
				s.Ready(t, wait)
				s.Ready(tb, wait)
			},
			"plugintest: subscription ended cleanly before Ready",
		},
		"batch before ready": {
			func(tb testing.TB) {
				h.Subscribe(t, endpoint.SubscribeRequest{Context: ctxWith(nil), QoS: "batch-first"}).Ready(tb, wait)
			},
			"plugintest: got a batch of 1 messages before Ready",
		},
		"expect the wrong action": {
			func(tb testing.TB) {
				sse := plugintest.Start(t, newSSE())
				sse.Connect(t, "whole", ctxWith(nil)).Expect(tb, plugintest.ActionWrite, wait)
			},
			"plugintest: expected write, got respond",
		},
		"expect after an error end": {
			func(tb testing.TB) {
				sse := plugintest.Start(t, newSSE())
				sse.Connect(t, "plain-error", ctxWith(nil)).Expect(tb, plugintest.ActionWrite, wait)
			},
			"plugintest: expected write, the exchange ended with rpc error: code = Unknown desc = plain",
		},
		"passes": {
			func(tb testing.TB) {
				h.Subscribe(t, endpoint.SubscribeRequest{Context: ctxWith(nil), QoS: "auto"}).Ready(tb, wait)
			},
			"",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := fails(t, tc.run); got != tc.want {
				t.Fatalf("failed with %q, want %q", got, tc.want)
			}
		})
	}
}
