package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/schema"
	"github.com/sluice-gw/sluice/sdk/serve"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// helperEnv makes the test binary act as a plugin binary (see TestMain).
const helperEnv = "SLUICE_SERVE_TEST_PLUGIN"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
	case "none":
		serve.Serve(notAPlugin{})
		return
	default:
		serve.Serve(&testEndpoint{})
		return
	}
	os.Exit(m.Run())
}

// testEndpoint is a small endpoint with a schema using every feature.
type testEndpoint struct {
	mu        sync.Mutex
	published []string
}

func (e *testEndpoint) Metadata() lifecycle.Metadata {
	// Logging here happens after the logs are redirected and before the
	// handshake: it must not break it.
	log.Printf("[WARN] metadata read")
	slog.Info("slog works", "answer", 42)
	return lifecycle.Metadata{
		Kind:    lifecycle.KindEndpoint,
		Name:    "endpoint-test",
		Version: "1.0.0",
		Types: []lifecycle.TypeInfo{{
			Name:        "test",
			Aliases:     []string{"t"},
			Description: "A test endpoint.",
			Schema: schema.Schema{
				Attributes: []schema.Attribute{
					{Name: "bootstrap_servers", Type: schema.String, Required: true, Description: "Brokers.", EL: true},
					{Name: "auto_offset_reset", Type: schema.String, Enum: []string{"latest", "earliest", "none"}, Default: "latest"},
					{Name: "timeout_ms", Type: schema.Number, Default: 5000},
					{Name: "enabled", Type: schema.Bool, Default: true},
					{Name: "topics", Type: schema.ListOfString},
					{Name: "labels", Type: schema.MapOfString},
					{Name: "weights", Type: schema.MapOfNumber, Default: map[string]float64{"a": 0.5}},
				},
				Blocks: []schema.Block{
					{Name: "consumer", Nesting: schema.Single, Required: true, Description: "Consumer.", Schema: schema.Schema{
						Attributes: []schema.Attribute{{Name: "enabled", Type: schema.Bool}},
					}},
					{Name: "attribute", Nesting: schema.List},
				},
			},
			QoS:          []string{"none", "auto", "at-least-once"},
			Modes:        []string{"publish", "subscribe"},
			Capabilities: []string{"resume"},
		}},
	}
}

func (e *testEndpoint) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}

func (e *testEndpoint) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}

func (e *testEndpoint) Unconfigure(context.Context, string) {}

func (e *testEndpoint) Publish(_ context.Context, req *endpoint.PublishRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range req.Messages {
		e.published = append(e.published, string(m.Content))
	}
	if len(req.Messages) == 0 {
		return &gateway.Failure{Status: 400, Key: "EMPTY", Message: "empty batch"}
	}
	return nil
}

func (e *testEndpoint) Subscribe(ctx context.Context, _ *endpoint.SubscribeRequest, sub endpoint.Subscription) error {
	if err := sub.Ready("c"); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func helperCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	return cmd
}

func TestDescribeProcess(t *testing.T) {
	cmd := helperCommand(t, serve.DescribeArg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("describe: %v\nstderr: %s", err, stderr.String())
	}
	golden := "testdata/describe.json"
	if *update {
		if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Fatalf("describe output differs from %s (run with -update to accept):\n%s", golden, stdout.String())
	}
	// The log lines went to stderr, as hclog JSON.
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		if _, ok := entry["@message"].(string); !ok {
			t.Fatalf("stderr line has no @message: %q", line)
		}
	}
}

func TestDescriptionRoundTrip(t *testing.T) {
	want, err := os.ReadFile("testdata/describe.json")
	if err != nil {
		t.Fatal(err)
	}
	var d serve.Description
	if err := json.Unmarshal(want, &d); err != nil {
		t.Fatal(err)
	}
	md, err := d.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	orig := (&testEndpoint{}).Metadata()
	// Defaults come back as JSON decodes them: integral numbers as int64,
	// objects as map[string]any.
	orig.Types[0].Schema.Attributes[2].Default = int64(5000)
	orig.Types[0].Schema.Attributes[6].Default = map[string]any{"a": 0.5}
	if !reflect.DeepEqual(md, orig) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", md, orig)
	}
	d2, err := serve.Describe(&testEndpoint{})
	if err != nil {
		t.Fatal(err)
	}
	if d2.ProtocolVersion != serve.ProtocolVersion || d2.Kind != "endpoint" {
		t.Fatalf("Describe = %+v", d2)
	}
}

func TestDescriptionErrors(t *testing.T) {
	tests := map[string]struct {
		json string
		want string
	}{
		"kind":    {`{"kind":"gizmo"}`, `unknown plugin kind "gizmo"`},
		"type":    {`{"kind":"policy","types":[{"name":"p","schema":{"attributes":[{"name":"a","type":"list(number)"}]}}]}`, `type "p": attribute "a": unknown type "list(number)"`},
		"nesting": {`{"kind":"policy","types":[{"name":"p","schema":{"blocks":[{"name":"b","nesting":"set","schema":{}}]}}]}`, `type "p": block "b": unknown nesting "set"`},
		"nested":  {`{"kind":"policy","types":[{"name":"p","schema":{"blocks":[{"name":"b","nesting":"list","schema":{"attributes":[{"name":"x","type":"?"}]}}]}}]}`, `type "p": block "b": attribute "x": unknown type "?"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var d serve.Description
			if err := json.Unmarshal([]byte(tc.json), &d); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Metadata(); err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	bad := lifecycle.Metadata{Types: []lifecycle.TypeInfo{{Name: "x", Schema: schema.Schema{Attributes: []schema.Attribute{{Name: "a", Type: 42}}}}}}
	if _, err := serve.NewDescription(bad); err == nil || err.Error() != `type "x": attribute "a": unknown type 42` {
		t.Fatalf("err = %v", err)
	}
	bad.Types[0].Schema = schema.Schema{Blocks: []schema.Block{{Name: "b", Nesting: 9}}}
	if _, err := serve.NewDescription(bad); err == nil || err.Error() != `type "x": block "b": unknown nesting 9` {
		t.Fatalf("err = %v", err)
	}
	bad.Types[0].Schema = schema.Schema{Attributes: []schema.Attribute{{Name: "a", Type: schema.String, Default: func() {}}}}
	if _, err := serve.NewDescription(bad); err == nil || !strings.HasPrefix(err.Error(), `type "x": attribute "a": default: `) {
		t.Fatalf("err = %v", err)
	}
}

// logSink collects what go-plugin's host logs on behalf of the plugin.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *logSink) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func newClient(t *testing.T, cfg *goplugin.ClientConfig, sink *logSink) *serve.Clients {
	t.Helper()
	cfg.HandshakeConfig = serve.Handshake
	cfg.Plugins = serve.ClientPluginSet
	cfg.AllowedProtocols = []goplugin.Protocol{goplugin.ProtocolGRPC}
	cfg.GRPCDialOptions = serve.GRPCDialOptions()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: sink, JSONFormat: true, Level: hclog.Trace})
	client := goplugin.NewClient(cfg)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	raw, err := rpc.Dispense(serve.PluginSetName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return raw.(*serve.Clients)
}

func exercise(t *testing.T, c *serve.Clients) {
	t.Helper()
	md, err := c.Plugin.GetMetadata(t.Context(), &pluginv1.GetMetadata_Request{})
	if err != nil {
		t.Fatal(err)
	}
	if md.GetName() != "endpoint-test" || md.GetKind() != pluginv1.Kind_ENDPOINT {
		t.Fatalf("metadata = %v", md)
	}
	stream, err := c.Endpoint.Publish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 8<<20) // past gRPC's 4 MiB default
	for id, msgs := range map[uint64][]*pluginv1.Message{1: {{Content: big}}, 2: nil} {
		if err := stream.Send(&pluginv1.Publish_Request{BatchId: id, Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint64]string{}
	for range 2 {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got[r.GetBatchId()] = r.GetFailure().GetKey()
	}
	if want := map[uint64]string{1: "", 2: "EMPTY"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("results = %v, want %v", got, want)
	}
	if _, err := c.Policy.OnRequest(t.Context(), &pluginv1.OnRequest_Request{}); err == nil {
		t.Fatal("an endpoint served the policy service")
	}
}

// TestServeProcess runs the test binary as a real plugin process, through
// go-plugin's handshake: logging during start-up must not break it, and the
// plugin's log lines must reach the host as hclog entries at their level.
func TestServeProcess(t *testing.T) {
	sink := &logSink{}
	c := newClient(t, &goplugin.ClientConfig{Cmd: helperCommand(t)}, sink)
	exercise(t, c)

	found := map[string]string{}
	for _, l := range sink.lines() {
		if msg, _ := l["@message"].(string); msg == "metadata read" || msg == "slog works" {
			found[msg], _ = l["@level"].(string)
		}
	}
	if want := map[string]string{"metadata read": "warn", "slog works": "info"}; !reflect.DeepEqual(found, want) {
		t.Fatalf("plugin log lines seen by the host at levels %v, want %v", found, want)
	}
}

// TestServeTestMode serves in-process through go-plugin's test mode.
func TestServeTestMode(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	reattach := make(chan *goplugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go serve.Serve(&testEndpoint{}, serve.WithTestConfig(&goplugin.ServeTestConfig{
		Context: ctx, ReattachConfigCh: reattach, CloseCh: closed,
	}), serve.WithGRPCServerOptions(grpc.MaxConcurrentStreams(64)), serve.WithLogLevel(slog.LevelDebug))
	c := newClient(t, &goplugin.ClientConfig{Reattach: <-reattach}, &logSink{})
	exercise(t, c)
	cancel()
	<-closed
}

func TestServeRefusesNonPlugins(t *testing.T) {
	cmd := exec.Command(os.Args[0], serve.DescribeArg)
	cmd.Env = append(os.Environ(), helperEnv+"=none")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout = %q, want nothing", stdout.String())
	}
	var entry map[string]any
	if err := json.Unmarshal(stderr.Bytes(), &entry); err != nil {
		t.Fatalf("stderr is not one JSON line: %q", stderr.String())
	}
	if entry["@level"] != "error" || entry["@message"] != "cannot serve plugin" ||
		!strings.Contains(entry["error"].(string), "serve_test.notAPlugin implements none of") {
		t.Fatalf("stderr entry = %v", entry)
	}
	if _, err := serve.Describe(notAPlugin{}); err == nil || !strings.Contains(err.Error(), "implements none of") {
		t.Fatalf("Describe err = %v", err)
	}
}

type notAPlugin struct{}

func (notAPlugin) Metadata() lifecycle.Metadata { return lifecycle.Metadata{} }
func (notAPlugin) Validate(context.Context, *lifecycle.ValidateRequest, *lifecycle.ValidateResponse) {
}
func (notAPlugin) Configure(context.Context, *lifecycle.ConfigureRequest, *lifecycle.ConfigureResponse) {
}
func (notAPlugin) Unconfigure(context.Context, string) {}
