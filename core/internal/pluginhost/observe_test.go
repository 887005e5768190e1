package pluginhost

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// ObserveRPC hears every unary call the core makes, named by plugin and
// method: what the plugin RPC latency histogram is built on.
func TestObserveRPCTimesUnaryCalls(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	h := New(Options{Dir: pluginDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ObserveRPC: func(plugin, method string, d time.Duration) {
			if d <= 0 {
				t.Errorf("%s %s observed with duration %v", plugin, method, d)
			}
			mu.Lock()
			seen[plugin+" "+method]++
			mu.Unlock()
		}})
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	p := h.Plugins()[0]
	if _, err := p.Configure(ctx, &pluginv1.Configure_Request{InstanceId: "i", Type: "test", ConfigJson: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{testPluginName + " GetMetadata", testPluginName + " Configure"} {
		if seen[want] == 0 {
			t.Errorf("no observation of %q; saw %v", want, seen)
		}
	}
}
