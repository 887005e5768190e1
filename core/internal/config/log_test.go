package config

import (
	"os"
	"path/filepath"
	"testing"
)

// The log block decodes into Gateway.Log, with the defaults for what it
// leaves out.
func TestGatewayLogBlock(t *testing.T) {
	for name, tc := range map[string]struct {
		block string
		want  Log
	}{
		"no gateway log block": {"", Log{Format: "text", Level: "info"}},
		"empty log block":      {"log {}", Log{Format: "text", Level: "info"}},
		"json with access log": {`log {
  format     = "json"
  level      = "debug"
  access_log = true
}`, Log{Format: "json", Level: "debug", AccessLog: true}},
		"level only":        {`log { level = "warn" }`, Log{Format: "text", Level: "warn"}},
		"access log off":    {`log { access_log = false }`, Log{Format: "text", Level: "info"}},
		"values from env()": {`log { format = env("SLUICE_TEST_LOG_FORMAT") }`, Log{Format: "json", Level: "info"}},
		"error level, text": {"log {\n  format = \"text\"\n  level = \"error\"\n}", Log{Format: "text", Level: "error"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("SLUICE_TEST_LOG_FORMAT", "json")
			path := filepath.Join(t.TempDir(), "gateway.hcl")
			src := "gateway {\n" + tc.block + "\n}\napi \"demo\" {\n  context_path = \"/demo\"\n  entrypoint \"http-post\" {}\n  endpoint \"kafka\" \"default\" { bootstrap_servers = \"k:9092\" }\n}\n"
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			l := NewLoader()
			f, diags := l.Load(path)
			if diags.HasErrors() {
				t.Fatalf("diagnostics:\n%s", render(l, diags))
			}
			if f.Gateway.Log != tc.want {
				t.Fatalf("log %+v, want %+v", f.Gateway.Log, tc.want)
			}
		})
	}
}
