package config

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// loadAndDecode runs both stages the way `sluice validate` does: stage 2
// runs whenever stage 1 produced a File, so all problems come out together.
func loadAndDecode(t *testing.T, l *Loader, path string, s Schemas) (*File, hcl.Diagnostics) {
	t.Helper()
	f, diags := l.Load(path)
	if f != nil {
		diags = append(diags, l.Decode(context.Background(), f, s)...)
	}
	return f, diags
}

func render(l *Loader, diags hcl.Diagnostics) string {
	var b bytes.Buffer
	l.WriteDiagnostics(&b, diags, false)
	return b.String()
}

func setTestEnv(t *testing.T) {
	t.Setenv("SLUICE_CONFIG_TEST_SERVERS", "kafka-1:9092,kafka-2:9092")
	t.Setenv("SLUICE_CONFIG_TEST_API", "from-env")
	t.Setenv("SLUICE_CONFIG_TEST_DEFINITELY_UNSET", "")
	os.Unsetenv("SLUICE_CONFIG_TEST_DEFINITELY_UNSET")
	t.Setenv("SLUICE_CONFIG_TEST_PLUGIN_DIR", "")
	os.Unsetenv("SLUICE_CONFIG_TEST_PLUGIN_DIR")
}

func TestValidFiles(t *testing.T) {
	setTestEnv(t)
	files, err := filepath.Glob("testdata/valid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid fixtures: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			l := NewLoader()
			f, diags := loadAndDecode(t, l, path, newFakeSchemas())
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", render(l, diags))
			}
			if f == nil || len(f.APIs) == 0 {
				t.Fatalf("no APIs loaded")
			}
			for _, api := range f.APIs {
				for _, pb := range allBlocks(api) {
					if !jsonValid(pb.ConfigJSON) {
						t.Errorf("%s: ConfigJSON %q is not a JSON object", pb.Where, pb.ConfigJSON)
					}
				}
			}
		})
	}
}

func allBlocks(api *API) []*PluginBlock {
	out := append(append([]*PluginBlock(nil), api.Entrypoints...), api.Endpoints...)
	for _, fl := range api.Flows {
		for _, p := range Phases {
			out = append(out, fl.Phases[p]...)
		}
	}
	return out
}

func jsonValid(b []byte) bool {
	return len(b) > 1 && b[0] == '{' && strings.HasSuffix(string(b), "}")
}

// expectations reads the `# ERROR: <substring>` markers of a fixture, by line.
func expectations(t *testing.T, path string) map[int][]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{}
	for i, line := range strings.Split(string(src), "\n") {
		parts := strings.Split(line, "# ERROR:")
		for _, p := range parts[1:] {
			if p = strings.TrimSpace(p); p != "" {
				want[i+1] = append(want[i+1], p)
			}
		}
	}
	return want
}

func TestInvalidFiles(t *testing.T) {
	setTestEnv(t)
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid fixtures: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := expectations(t, path)
			if len(want) == 0 {
				t.Fatalf("fixture has no # ERROR: markers")
			}
			l := NewLoader()
			_, diags := loadAndDecode(t, l, path, newFakeSchemas())
			if !diags.HasErrors() && !hasWarnings(diags) {
				t.Fatalf("no diagnostics")
			}
			matched := map[int]map[string]bool{}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a source range: %s: %s", d.Summary, d.Detail)
					continue
				}
				if d.Subject.Filename != path {
					t.Errorf("diagnostic in %q, want %q: %s", d.Subject.Filename, path, d.Summary)
				}
				line := d.Subject.Start.Line
				text := d.Summary + "\n" + d.Detail
				ok := false
				for _, sub := range want[line] {
					if strings.Contains(text, sub) {
						if matched[line] == nil {
							matched[line] = map[string]bool{}
						}
						matched[line][sub] = true
						ok = true
					}
				}
				if !ok {
					t.Errorf("line %d: unexpected diagnostic %q\n%s", line, d.Summary, d.Detail)
				}
			}
			for line, subs := range want {
				for _, sub := range subs {
					if !matched[line][sub] {
						t.Errorf("line %d: no diagnostic contains %q", line, sub)
					}
				}
			}
			if t.Failed() {
				t.Logf("all diagnostics:\n%s", render(l, diags))
			}
		})
	}
}

func hasWarnings(diags hcl.Diagnostics) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			return true
		}
	}
	return false
}

func mustLoad(t *testing.T, path string) *File {
	t.Helper()
	l := NewLoader()
	f, diags := loadAndDecode(t, l, path, newFakeSchemas())
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", render(l, diags))
	}
	return f
}

func TestFullFile(t *testing.T) {
	path := "testdata/valid/full.hcl"
	f := mustLoad(t, path)
	dir, _ := filepath.Abs("testdata/valid")

	wantGateway := Gateway{
		Listen:      "127.0.0.1:8082",
		AdminListen: "127.0.0.1:18082",
		PluginDirs:  []string{filepath.Join(dir, "bin/plugins")},
		Pins:        map[string]string{"endpoint-kafka": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		Limits:      DefaultLimits(),
		Log:         Log{Format: LogFormatJSON, Level: LogLevelInfo, AccessLog: true},
		Reload:      DefaultReload(),
	}
	if !reflect.DeepEqual(f.Gateway, wantGateway) {
		t.Errorf("gateway = %+v, want %+v", f.Gateway, wantGateway)
	}
	wantKafka := &DevKafka{
		Listen:  "127.0.0.1:9092",
		DataDir: filepath.Join(dir, ".sluice/kafka"),
		Topics:  map[string]int{"demo": 3, "orders.v1": 1},
	}
	if !reflect.DeepEqual(f.DevKafka, wantKafka) {
		t.Errorf("dev_kafka = %+v, want %+v", f.DevKafka, wantKafka)
	}
	if len(f.APIs) != 2 {
		t.Fatalf("got %d APIs, want 2", len(f.APIs))
	}
	demo, orders := f.APIs[0], f.APIs[1]
	if demo.Name != "demo" || demo.ContextPath != "/demo" || !reflect.DeepEqual(planTypes(demo), []string{"keyless"}) {
		t.Errorf("demo = %q %q %v", demo.Name, demo.ContextPath, demo.Plans)
	}
	if demo.Range.Start.Line != 25 {
		t.Errorf("demo range starts on line %d, want 25", demo.Range.Start.Line)
	}
	if orders.ContextPath != "/" || !reflect.DeepEqual(planTypes(orders), []string{"keyless"}) {
		t.Errorf("orders = %q %v", orders.ContextPath, orders.Plans)
	}

	var types []string
	for _, e := range demo.Entrypoints {
		types = append(types, e.Type)
		if e.Kind != lifecycle.KindEntrypoint {
			t.Errorf("%s: kind %q", e.Where, e.Kind)
		}
	}
	if want := []string{"http-post", "http-get", "sse", "websocket"}; !reflect.DeepEqual(types, want) {
		t.Errorf("entrypoints = %v, want %v", types, want)
	}

	tests := []struct {
		name  string
		block *PluginBlock
		where string
		json  string
	}{
		{"http-post", demo.Entrypoints[0], `api "demo" > entrypoint "http-post"`,
			`{"request_headers_to_message":true}`},
		{"http-get", demo.Entrypoints[1], `api "demo" > entrypoint "http-get"`,
			`{"messages_limit_count":500,"messages_limit_duration_ms":5000,"qos":"at-least-once"}`},
		{"websocket", demo.Entrypoints[3], `api "demo" > entrypoint "websocket"`,
			`{"publisher":{"enabled":true},"subscriber":{"enabled":true}}`},
		{"kafka default", demo.Endpoints[0], `api "demo" > endpoint "kafka" "default"`,
			`{"bootstrap_servers":"127.0.0.1:9092",` +
				`"consumer":{"auto_offset_reset":"earliest","enabled":true,"encode_message_id":true,"topics":["demo"]},` +
				`"producer":{"compression_type":"lz4","enabled":true,"topics":["demo"]},` +
				`"security":{"protocol":"PLAINTEXT"}}`},
		{"kafka primary", orders.Endpoints[0], `api "orders" > endpoint "kafka" "primary"`,
			`{"bootstrap_servers":"broker-1:9092,broker-2:9092","consumer":{"topic_pattern":"orders-.*"},` +
				`"properties":{"client.id":"sluice"},` +
				`"security":{"protocol":"SASL_SSL","sasl":{"jaas_config":"org.apache.kafka.common.security.scram.ScramLoginModule required;","mechanism":"SCRAM-SHA-512"}}}`},
		{"assign-attributes publish", demo.Flows[0].Phases["publish"][0], `api "demo" > flow "keys" > publish > policy "assign-attributes"`,
			`{"attribute":[{"name":"gravitee.attribute.kafka.recordKey","value":"{#request.headers['X-Key'][0]}"}]}`},
		{"transform-headers request", orders.Flows[0].Phases["request"][0], `api "orders" > flow "all-phases" > request > policy "transform-headers"`,
			`{"set":{"X-Gateway":"sluice"}}`},
		{"assign-attributes request", orders.Flows[0].Phases["request"][1], `api "orders" > flow "all-phases" > request > policy "assign-attributes"`,
			`{"attribute":[{"name":"a","value":"1"},{"name":"b","value":"2"}]}`},
		{"transform-headers remove", orders.Flows[0].Phases["request"][2], `api "orders" > flow "all-phases" > request > policy "transform-headers"`,
			`{"remove":["Server"]}`},
		{"assign-attributes empty", orders.Flows[0].Phases["subscribe"][0], `api "orders" > flow "all-phases" > subscribe > policy "assign-attributes"`,
			`{"attribute":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.block.Where != tt.where {
				t.Errorf("Where = %q, want %q", tt.block.Where, tt.where)
			}
			if string(tt.block.ConfigJSON) != tt.json {
				t.Errorf("ConfigJSON:\n got %s\nwant %s", tt.block.ConfigJSON, tt.json)
			}
		})
	}

	if n := len(orders.Flows); n != 2 || orders.Flows[0].Name != "all-phases" || orders.Flows[1].Name != "empty" {
		t.Errorf("flows of orders: %d", n)
	}
	if _, ok := orders.Flows[0].Phases["publish"]; ok {
		t.Errorf("publish phase present though the flow has none")
	}
	if len(orders.Flows[1].Phases) != 0 {
		t.Errorf("empty flow has phases %v", orders.Flows[1].Phases)
	}
	if p := orders.Endpoints[0]; p.Name != "primary" || p.Type != "kafka" || p.Kind != lifecycle.KindEndpoint {
		t.Errorf("endpoint = %q %q %q", p.Kind, p.Type, p.Name)
	}
}

// planTypes lists an API's plan types in order.
func planTypes(api *API) []string {
	var out []string
	for _, p := range api.Plans {
		out = append(out, p.Type)
	}
	return out
}

func TestDefaults(t *testing.T) {
	f := mustLoad(t, "testdata/valid/minimal.hcl")
	dir, _ := filepath.Abs("testdata/valid")
	want := Gateway{Listen: DefaultListen, AdminListen: DefaultAdminListen, PluginDirs: []string{filepath.Join(dir, "bin", "plugins")}, Pins: map[string]string{}, Limits: DefaultLimits(), Log: DefaultLog(), Reload: DefaultReload()}
	if !reflect.DeepEqual(f.Gateway, want) {
		t.Errorf("gateway = %+v, want %+v", f.Gateway, want)
	}
	if f.DevKafka != nil {
		t.Errorf("dev_kafka = %+v, want nil", f.DevKafka)
	}
	if got := planTypes(f.APIs[0]); !reflect.DeepEqual(got, []string{PlanKeyless}) {
		t.Errorf("plans = %v", got)
	}
}

func TestFunctions(t *testing.T) {
	setTestEnv(t)
	f := mustLoad(t, "testdata/valid/functions.hcl")
	if !reflect.DeepEqual(f.Gateway.PluginDirs, []string{"/opt/sluice/plugins"}) {
		t.Errorf("plugin_dir = %q (env default not used)", f.Gateway.PluginDirs)
	}
	dir, _ := filepath.Abs("testdata/valid")
	if f.DevKafka == nil || f.DevKafka.Listen != DefaultDevKafkaListen || f.DevKafka.DataDir != filepath.Join(dir, ".sluice", "kafka") {
		t.Errorf("dev_kafka = %+v", f.DevKafka)
	}
	if f.APIs[0].ContextPath != "/from-env" {
		t.Errorf("context_path = %q", f.APIs[0].ContextPath)
	}
	want := `{"bootstrap_servers":"kafka-1:9092,kafka-2:9092","security":{"protocol":"SASL_PLAINTEXT","sasl":{` +
		`"jaas_config":"org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";\n","mechanism":"PLAIN"}}}`
	if got := string(f.APIs[0].Endpoints[0].ConfigJSON); got != want {
		t.Errorf("ConfigJSON:\n got %s\nwant %s", got, want)
	}

	// The variable's value wins over the default.
	t.Setenv("SLUICE_CONFIG_TEST_PLUGIN_DIR", "plugins-from-env")
	f = mustLoad(t, "testdata/valid/functions.hcl")
	if want := []string{filepath.Join(dir, "plugins-from-env")}; !reflect.DeepEqual(f.Gateway.PluginDirs, want) {
		t.Errorf("plugin_dir = %q, want %q", f.Gateway.PluginDirs, want)
	}
}

// plugin_dirs keeps its order (the search order) and resolves each entry
// against the file's directory, absolute ones as written.
func TestPluginDirs(t *testing.T) {
	f := mustLoad(t, "testdata/valid/plugin_dirs.hcl")
	dir, _ := filepath.Abs("testdata/valid")
	want := []string{filepath.Join(dir, "third-party"), "/opt/sluice/plugins", filepath.Join(dir, "bin", "plugins")}
	if !reflect.DeepEqual(f.Gateway.PluginDirs, want) {
		t.Errorf("plugin_dirs = %q, want %q", f.Gateway.PluginDirs, want)
	}
}

func TestELSkipsEnumCheck(t *testing.T) {
	f := mustLoad(t, "testdata/valid/el.hcl")
	want := `{"bootstrap_servers":"{#context.attributes['servers']}","consumer":{"auto_offset_reset":"{#request.params['reset'][0]}","topics":["{#request.pathParams['topic']}"]}}`
	if got := string(f.APIs[0].Endpoints[0].ConfigJSON); got != want {
		t.Errorf("ConfigJSON:\n got %s\nwant %s", got, want)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateOnlyCleanBlocks(t *testing.T) {
	path := writeFile(t, t.TempDir(), "file.hcl", `
api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  entrypoint "sse" { qos = "sometimes" }
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  endpoint "kafka" "other" { nope = 1 }
  flow "f" {
    publish {
      policy "assign-attributes" {
        attribute { name = "a" }
      }
    }
    request {
      policy "transform-headers" { remove = ["X"] }
    }
  }
}
`)
	s := newFakeSchemas()
	l := NewLoader()
	f, diags := loadAndDecode(t, l, path, s)
	// Four from stage 2: the second endpoint is a named target, decoded
	// and reported like the first.
	if f == nil || len(diags) != 4 {
		t.Fatalf("want 4 diagnostics, got:\n%s", render(l, diags))
	}
	want := []string{"entrypoint/http-post", "endpoint/kafka", "policy/transform-headers"}
	if got := s.validateCalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate calls = %v, want %v", got, want)
	}
	if f.APIs[0].Entrypoints[1].ConfigJSON != nil || f.APIs[0].Endpoints[1].ConfigJSON != nil {
		t.Errorf("ConfigJSON set on a block that failed to decode")
	}
}

func TestAliasValidatedUnderCanonicalName(t *testing.T) {
	s := newFakeSchemas()
	l := NewLoader()
	_, diags := loadAndDecode(t, l, "testdata/valid/alias.hcl", s)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", render(l, diags))
	}
	want := []string{"entrypoint/sse", "entrypoint/http-get", "endpoint/kafka"}
	if got := s.validateCalls(); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate calls = %v, want %v", got, want)
	}
}

func TestWriteDiagnostics(t *testing.T) {
	path := writeFile(t, t.TempDir(), "file.hcl", `api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "k:9092"
    consumer { auto_offset_reset = "latst" }
  }
}
`)
	l := NewLoader()
	_, diags := loadAndDecode(t, l, path, newFakeSchemas())
	if len(diags) != 1 {
		t.Fatalf("got %d diagnostics, want 1:\n%s", len(diags), render(l, diags))
	}
	out := render(l, diags)
	for _, want := range []string{
		"Error: " + path + `:6:36: api "demo" > endpoint "kafka" "default": Invalid value for "auto_offset_reset": "latst"; allowed values are "earliest", "latest", "none"`,
		"file.hcl:6:36",
		`   6:     consumer { auto_offset_reset = "latst" }`,
		`Did you mean "latest"?`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The diagnostics themselves are not changed by printing.
	if strings.Contains(diags[0].Summary, "file.hcl") {
		t.Errorf("WriteDiagnostics modified the diagnostic: %q", diags[0].Summary)
	}

	// Output is in source order, diagnostics without a range first.
	early := &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "early", Subject: &hcl.Range{
		Filename: path, Start: hcl.Pos{Line: 2, Column: 3, Byte: 15}, End: hcl.Pos{Line: 2, Column: 15, Byte: 27}}}
	global := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "no range"}
	out = render(l, hcl.Diagnostics{diags[0], early, global})
	iGlobal, iEarly, iLate := strings.Index(out, "no range"), strings.Index(out, "file.hcl:2:3: early"), strings.Index(out, "file.hcl:6:36")
	if iGlobal < 0 || iEarly < 0 || iLate < 0 || !(iGlobal < iEarly && iEarly < iLate) {
		t.Errorf("diagnostics out of order (%d, %d, %d):\n%s", iGlobal, iEarly, iLate, out)
	}

	var colored bytes.Buffer
	l.WriteDiagnostics(&colored, diags, true)
	if !strings.Contains(colored.String(), "\x1b[31m") {
		t.Errorf("color output has no escape codes:\n%q", colored.String())
	}
}

func TestReloadReadsFileAgain(t *testing.T) {
	dir := t.TempDir()
	body := func(p string) string {
		return `api "a" {
  context_path = "` + p + `"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
`
	}
	path := writeFile(t, dir, "gw.hcl", body("/one"))
	l := NewLoader()
	f, diags := l.Load(path)
	if len(diags) > 0 || f.APIs[0].ContextPath != "/one" {
		t.Fatalf("first load: %v %v", diags, f)
	}
	writeFile(t, dir, "gw.hcl", body("two"))
	f, diags = l.Load(path)
	if f.APIs[0].ContextPath != "two" || len(diags) != 1 {
		t.Fatalf("second load: %q, %d diagnostics", f.APIs[0].ContextPath, len(diags))
	}
	if out := render(l, diags); !strings.Contains(out, `context_path = "two"`) {
		t.Errorf("snippet is from the old file:\n%s", out)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"missing file", "", "Cannot read configuration file"},
		{"syntax error", "api \"x\" {\n  context_path = \n}\n", "Invalid expression"},
		{"unclosed block", "gateway {\n", "Unclosed configuration block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "missing.hcl")
			if tt.content != "" {
				path = writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_")+".hcl", tt.content)
			}
			f, diags := NewLoader().Load(path)
			if f != nil {
				t.Errorf("File returned despite %s", tt.name)
			}
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.want) {
				t.Errorf("diags = %v, want %q", diags, tt.want)
			}
		})
	}
}

func TestJSONSyntax(t *testing.T) {
	path := writeFile(t, t.TempDir(), "gw.json", `{
  "gateway": {"listen": "127.0.0.1:9000"},
  "api": {"demo": {
    "context_path": "/demo",
    "entrypoint": {"http-post": {"request_headers_to_message": true}},
    "endpoint": {"kafka": {"default": {"bootstrap_servers": "k:9092", "consumer": {"topics": ["t"]}}}},
    "flow": {"f": {"publish": {"policy": {"assign-attributes": {"attribute": [{"name": "", "value": "v"}]}}}}}
  }}
}`)
	l := NewLoader()
	f, diags := loadAndDecode(t, l, path, newFakeSchemas())
	// The plugin's diagnostic cannot be mapped into a JSON body, so it
	// names its path and points at the policy block.
	if len(diags) != 1 || !strings.Contains(diags[0].Summary, "attribute.0.name: attribute name must not be empty") || diags[0].Subject == nil {
		t.Fatalf("diagnostics:\n%s", render(l, diags))
	}
	if f.Gateway.Listen != "127.0.0.1:9000" {
		t.Errorf("listen = %q", f.Gateway.Listen)
	}
	if got, want := string(f.APIs[0].Endpoints[0].ConfigJSON), `{"bootstrap_servers":"k:9092","consumer":{"topics":["t"]}}`; got != want {
		t.Errorf("ConfigJSON = %s, want %s", got, want)
	}
}

func TestNullsOmitted(t *testing.T) {
	path := writeFile(t, t.TempDir(), "file.hcl", `api "demo" {
  context_path = "/demo"
  entrypoint "http-get" { qos = null }
  endpoint "kafka" "default" {
    bootstrap_servers = "k:9092"
    properties        = null
    security { protocol = null }
    consumer {
      topics        = ["a", "b"]
      topic_pattern = null
    }
  }
}
`)
	f := mustLoad(t, path)
	if got := string(f.APIs[0].Entrypoints[0].ConfigJSON); got != `{}` {
		t.Errorf("entrypoint ConfigJSON = %s", got)
	}
	if got, want := string(f.APIs[0].Endpoints[0].ConfigJSON), `{"bootstrap_servers":"k:9092","consumer":{"topics":["a","b"]},"security":{}}`; got != want {
		t.Errorf("ConfigJSON = %s, want %s", got, want)
	}
}

// brokenSchemas serves schemas a buggy plugin could send.
type brokenSchemas struct {
	*fakeSchemas
	schema *pluginv1.Schema
	err    error
}

func (b *brokenSchemas) TypeInfo(kind lifecycle.Kind, typ string) (*pluginv1.TypeInfo, bool) {
	if kind == lifecycle.KindEndpoint {
		return &pluginv1.TypeInfo{Name: typ, ConfigSchema: b.schema}, true
	}
	return b.fakeSchemas.TypeInfo(kind, typ)
}

func (b *brokenSchemas) Validate(ctx context.Context, kind lifecycle.Kind, typ string, js []byte) ([]*pluginv1.Diagnostic, error) {
	if kind == lifecycle.KindEndpoint && b.err != nil {
		return nil, b.err
	}
	return b.fakeSchemas.Validate(ctx, kind, typ, js)
}

func TestPluginSchemaProblems(t *testing.T) {
	path := writeFile(t, t.TempDir(), "file.hcl", `api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "x" "default" { a = "1" }
}
`)
	s := pluginv1.Schema_Attribute_STRING
	tests := []struct {
		name   string
		schema *pluginv1.Schema
		err    error
		want   string
	}{
		{"duplicate name", &pluginv1.Schema{
			Attributes: []*pluginv1.Schema_Attribute{{Name: "a", Type: s}},
			Blocks:     []*pluginv1.Schema_Block{{Name: "a", Nesting: pluginv1.Schema_Block_SINGLE}},
		}, nil, `"a" is declared twice`},
		{"empty name", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{{Type: s}}}, nil, "an attribute has no name"},
		{"unknown nesting", &pluginv1.Schema{
			Attributes: []*pluginv1.Schema_Attribute{{Name: "a", Type: s}},
			Blocks:     []*pluginv1.Schema_Block{{Name: "b", Nesting: 7}},
		}, nil, `block "b" has nesting 7`},
		{"nil schema", nil, nil, `An argument named "a" is not expected here`},
		{"validate fails", &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{{Name: "a", Type: s}}},
			context.DeadlineExceeded, "could not validate this block"},
		{"unknown attribute type accepts anything", &pluginv1.Schema{
			Attributes: []*pluginv1.Schema_Attribute{{Name: "a", Type: 99}, {Name: "b", Type: s, Required: true}},
		}, nil, `The argument "b" is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader()
			_, diags := loadAndDecode(t, l, path, &brokenSchemas{newFakeSchemas(), tt.schema, tt.err})
			if len(diags) != 1 || !strings.Contains(diags[0].Summary+diags[0].Detail, tt.want) {
				t.Fatalf("want one diagnostic containing %q, got:\n%s", tt.want, render(l, diags))
			}
			if !strings.HasPrefix(diags[0].Summary, `api "demo" > endpoint "x" "default": `) || diags[0].Subject.Start.Line != 4 {
				t.Errorf("diagnostic not placed on the endpoint: %s at %v", diags[0].Summary, diags[0].Subject)
			}
		})
	}
}

func TestNoPlugins(t *testing.T) {
	path := writeFile(t, t.TempDir(), "file.hcl", `api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
`)
	empty := &fakeSchemas{}
	l := NewLoader()
	_, diags := loadAndDecode(t, l, path, empty)
	if len(diags) != 2 || !strings.Contains(diags[0].Detail, "No entrypoint plugin is installed") ||
		!strings.Contains(diags[1].Detail, "No endpoint plugin is installed") {
		t.Fatalf("diagnostics:\n%s", render(l, diags))
	}
}

func TestCancelledContext(t *testing.T) {
	f, diags := NewLoader().Load("testdata/valid/minimal.hcl")
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newFakeSchemas()
	diags = NewLoader().Decode(ctx, f, s)
	if len(diags) != 2 || !strings.Contains(diags[0].Summary, "Validation was cancelled") {
		t.Fatalf("diagnostics: %v", diags)
	}
	if calls := s.validateCalls(); len(calls) != 0 {
		t.Errorf("Validate called after cancellation: %v", calls)
	}
}

// TestOddShapes feeds structurally wrong files through both stages: each
// must produce an error with a source range, and none may panic.
func TestOddShapes(t *testing.T) {
	tests := map[string]string{
		"api without label":      `api { context_path = "/" }`,
		"api with two labels":    `api "a" "b" { context_path = "/" }`,
		"attribute at top level": `listen = "x"`,
		"entrypoint two labels":  "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" \"x\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n}",
		"endpoint one label":     "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" {}\n}",
		"flow without label":     "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n flow {}\n}",
		"policy without label":   "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n flow \"f\" {\n request {\n policy {}\n }\n }\n}",
		"phase with label":       "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n flow \"f\" {\n request \"x\" {}\n }\n}",
		"context_path a list":    "api \"a\" {\n context_path = [\"/\"]\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n}",
		"context_path null":      "api \"a\" {\n context_path = null\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n}",
		"variable reference":     "api \"a\" {\n context_path = var.x\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = var.y }\n}",
		"block for attribute":    "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" {\n bootstrap_servers { x = 1 }\n }\n}",
		"attribute for block":    "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" {\n bootstrap_servers = \"k\"\n consumer = { topics = [\"t\"] }\n }\n}",
		"topics not an object":   "dev_kafka {\n topics = \"demo\"\n}",
		"pin sha256 a number":    "gateway {\n plugin \"x\" { sha256 = 5 }\n}",
		"env with number":        "gateway {\n listen = env(5)\n}",
		"file with null":         "gateway {\n listen = file(null)\n}",
	}
	dir := t.TempDir()
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(name, " ", "_")+".hcl", src)
			l := NewLoader()
			_, diags := loadAndDecode(t, l, path, newFakeSchemas())
			if !diags.HasErrors() {
				t.Fatalf("no error for:\n%s", src)
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a range: %s", d.Summary)
				}
			}
			_ = render(l, diags)
		})
	}
}

func TestCheckContextPath(t *testing.T) {
	tests := map[string]struct {
		path string
		ok   bool
	}{
		"root":           {"/", true},
		"simple":         {"/demo", true},
		"nested":         {"/v1/orders", true},
		"empty":          {"", false},
		"no slash":       {"demo", false},
		"trailing slash": {"/demo/", false},
		"double slash":   {"/a//b", false},
		"query":          {"/a?b", false},
		"fragment":       {"/a#b", false},
		"space":          {"/a b", false},
		"tab":            {"/a\tb", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			msg := checkContextPath(tt.path)
			if (msg == "") != tt.ok {
				t.Errorf("checkContextPath(%q) = %q, want ok=%v", tt.path, msg, tt.ok)
			}
		})
	}
}

func TestCheckTopicName(t *testing.T) {
	tests := map[string]struct {
		name string
		ok   bool
	}{
		"plain":      {"demo", true},
		"punctuated": {"orders.v1_a-b", true},
		"max length": {strings.Repeat("a", 249), true},
		"too long":   {strings.Repeat("a", 250), false},
		"empty":      {"", false},
		"dot":        {".", false},
		"dot dot":    {"..", false},
		"space":      {"a b", false},
		"slash":      {"a/b", false},
		"unicode":    {"é", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			msg := checkTopicName(tt.name)
			if (msg == "") != tt.ok {
				t.Errorf("checkTopicName(%q) = %q, want ok=%v", tt.name, msg, tt.ok)
			}
		})
	}
}

func TestWrongPhaseDetail(t *testing.T) {
	tests := map[string]struct {
		declared []string
		want     string
	}{
		"usable phases listed": {[]string{PhaseRequest, PhaseSubscribe}, `Policy "p" runs in: request, subscribe. Move it`},
		"response listed":      {[]string{PhaseRequest, PhaseResponse}, `Policy "p" runs in: request, response. Move it`},
		"unknown left out":     {[]string{PhaseRequest, "interact"}, `Policy "p" runs in: request. Move it`},
		"unknown only":         {[]string{"interact"}, `Policy "p" runs only in phases message APIs do not have (interact); remove it`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := wrongPhaseDetail("p", tt.declared); !strings.HasPrefix(got, tt.want) {
				t.Errorf("wrongPhaseDetail(%v) = %q, want prefix %q", tt.declared, got, tt.want)
			}
		})
	}
}
