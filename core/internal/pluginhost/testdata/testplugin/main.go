// Command testplugin is the policy plugin the pluginhost tests launch. It
// reports what the host did to it through OnRequest attributes: the
// configured instances, its pid and the environment it was given.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// rawStderr is file descriptor 2 as it was at start-up. go-plugin later points
// os.Stderr at its stdio stream; lines written here reach the host through
// the plugin's real stderr, which go-plugin parses as hclog JSON.
var rawStderr = os.Stderr

type testPolicy struct {
	mu        sync.Mutex
	instances map[string]bool
}

var (
	_ policy.Policy     = (*testPolicy)(nil)
	_ lifecycle.Drainer = (*testPolicy)(nil)
)

func (t *testPolicy) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindPolicy,
		Name:    "policy-test",
		Version: "0.0.1",
		Types: []lifecycle.TypeInfo{{
			Name:        "test",
			Aliases:     []string{"test-alias"},
			Description: "Reports what the plugin host did.",
			Phases:      []string{policy.PhaseRequest},
		}},
	}
}

// check rejects a configuration with "bad": true.
func check(configJSON []byte) lifecycle.Diagnostics {
	var diags lifecycle.Diagnostics
	var cfg struct {
		Bad bool `json:"bad"`
	}
	if len(configJSON) > 0 {
		if err := json.Unmarshal(configJSON, &cfg); err != nil {
			diags.Errorf(nil, "invalid JSON: %v", err)
			return diags
		}
	}
	if cfg.Bad {
		diags.Errorf([]string{"bad"}, "bad is set")
	}
	return diags
}

func (t *testPolicy) Validate(_ context.Context, req *lifecycle.ValidateRequest, resp *lifecycle.ValidateResponse) {
	resp.Diagnostics = check(req.ConfigJSON)
}

func (t *testPolicy) Configure(_ context.Context, req *lifecycle.ConfigureRequest, resp *lifecycle.ConfigureResponse) {
	resp.Diagnostics = check(req.ConfigJSON)
	if resp.Diagnostics.HasErrors() {
		return
	}
	t.mu.Lock()
	t.instances[req.InstanceID] = true
	t.mu.Unlock()
	serve.Logger().Info("instance configured", "instance", req.InstanceID)
	// Stray output after the handshake: go-plugin forwards it over gRPC.
	fmt.Println("stray stdout " + req.InstanceID)
	// A line that would crash go-plugin's parser if the host passed it on
	// unrepaired: "@message" must be a string.
	fmt.Fprintln(rawStderr, `{"@level":"warn","@message":{"instance":"`+req.InstanceID+`"},"@timestamp":5}`)
}

func (t *testPolicy) Unconfigure(_ context.Context, instanceID string) {
	t.mu.Lock()
	delete(t.instances, instanceID)
	t.mu.Unlock()
}

func (t *testPolicy) OnRequest(_ context.Context, _ *policy.RequestPhase, out *policy.RequestResult) error {
	t.mu.Lock()
	ids := make([]string, 0, len(t.instances))
	for id := range t.instances {
		ids = append(ids, id)
	}
	t.mu.Unlock()
	sort.Strings(ids)
	out.SetAttributes = map[string]any{
		"test.instances":   strings.Join(ids, ","),
		"test.pid":         float64(os.Getpid()),
		"test.env.marker":  os.Getenv("SLUICE_TEST_MARKER"),
		"test.env.aws":     os.Getenv("AWS_TEST_MARKER"),
		"test.env.private": os.Getenv("PLUGINHOST_TEST_PRIVATE"),
	}
	return nil
}

func (t *testPolicy) OnMessages(_ context.Context, in *policy.MessagesPhase) ([]*gateway.Message, error) {
	return in.Messages, nil
}

// Drain leaves a file named after the pid in $SLUICE_TEST_DRAIN_DIR, so the
// test can see that Close drained this process.
func (t *testPolicy) Drain(context.Context) error {
	dir := os.Getenv("SLUICE_TEST_DRAIN_DIR")
	if dir == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, fmt.Sprintf("drained-%d", os.Getpid())), nil, 0o644)
}

func main() {
	serve.Serve(&testPolicy{instances: map[string]bool{}})
}
