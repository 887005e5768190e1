package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// reloadTestAPI is the smallest API a file needs to load.
const reloadTestAPI = "api \"demo\" {\n  context_path = \"/demo\"\n  entrypoint \"http-post\" {}\n  endpoint \"kafka\" \"default\" { bootstrap_servers = \"k:9092\" }\n}\n"

// The reload block decodes into Gateway.Reload, with the defaults for what
// it leaves out.
func TestGatewayReloadBlock(t *testing.T) {
	for name, tc := range map[string]struct {
		block string
		want  Reload
	}{
		"no reload block":    {"", Reload{Debounce: 500 * time.Millisecond}},
		"empty reload block": {"reload {}", Reload{Debounce: 500 * time.Millisecond}},
		"watch on":           {"reload { watch = true }", Reload{Watch: true, Debounce: 500 * time.Millisecond}},
		"watch and debounce": {"reload {\n  watch = true\n  debounce_ms = 2000\n}", Reload{Watch: true, Debounce: 2 * time.Second}},
		"watch from env()":   {`reload { watch = env("SLUICE_TEST_RELOAD_WATCH") }`, Reload{Watch: true, Debounce: 500 * time.Millisecond}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("SLUICE_TEST_RELOAD_WATCH", "true")
			path := filepath.Join(t.TempDir(), "gateway.hcl")
			if err := os.WriteFile(path, []byte("gateway {\n"+tc.block+"\n}\n"+reloadTestAPI), 0o644); err != nil {
				t.Fatal(err)
			}
			l := NewLoader()
			f, diags := l.Load(path)
			if diags.HasErrors() {
				t.Fatalf("diagnostics:\n%s", render(l, diags))
			}
			if f.Gateway.Reload != tc.want {
				t.Fatalf("reload %+v, want %+v", f.Gateway.Reload, tc.want)
			}
		})
	}
}

// A wrong reload block is reported at the attribute, with file:line:col.
func TestGatewayReloadBlockErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		block string
		want  []string
	}{
		"watch not a bool": {"reload {\n  watch = \"sometimes\"\n}", []string{"gateway.hcl:3:11", "gateway > reload"}},
		"debounce zero":    {"reload {\n  debounce_ms = 0\n}", []string{"gateway.hcl:3:17", "Invalid debounce_ms 0", "from 1"}},
		"unknown attr":     {"reload {\n  interval = 5\n}", []string{"gateway.hcl:3:3", "interval"}},
		"duplicate":        {"reload {}\nreload {}", []string{"gateway.hcl:3:1", "Duplicate reload block"}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.hcl")
			if err := os.WriteFile(path, []byte("gateway {\n"+tc.block+"\n}\n"+reloadTestAPI), 0o644); err != nil {
				t.Fatal(err)
			}
			l := NewLoader()
			_, diags := l.Load(path)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			out := render(l, diags)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, out)
				}
			}
		})
	}
}

// Sources names the file, what file() was asked for (a missing file too,
// since creating it is a change worth a reload) and the gateway's TLS files.
func TestSources(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"key.txt", "tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "gateway.hcl")
	src := `gateway {
  tls {
    cert_file = "tls.crt"
    key_file  = "tls.key"
  }
}
api "demo" {
  context_path = "/demo"
  plan "api-key" {
    subscription "a" { api_key = file("key.txt") }
    subscription "b" { api_key = file("sub/missing.txt") }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	l := NewLoader()
	// The TLS files are not real certificates, and one file() fails: the
	// diagnostics are expected, the sources are what matters.
	f, _ := l.Load(path)
	if f == nil {
		t.Fatal("no file")
	}
	want := []string{path, filepath.Join(dir, "key.txt"), filepath.Join(dir, "sub", "missing.txt"),
		filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")}
	slices.Sort(want)
	if got := f.Sources(); !slices.Equal(got, want) {
		t.Fatalf("sources\n %q\nwant\n %q", got, want)
	}
}
