package config

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary files to both loading stages, as `sluice validate`
// runs them. A configuration file is operator input and the gateway reloads
// it on SIGHUP while serving, so no file may panic the loader, the plugin
// block decoder or the diagnostic printer, and a file that cannot be loaded
// must say why.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
		for _, p := range paths {
			if src, err := os.ReadFile(p); err == nil {
				f.Add(src, false)
			}
		}
	}
	f.Add([]byte(`{"api":{"a":{"context_path":"/a","entrypoint":{"sse":{}}}}}`), true)
	f.Add([]byte(`{"gateway":[{"listen":1},{"listen":"x"}]}`), true)
	schemas := newFakeSchemas()
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		dir := t.TempDir()
		name := "gateway.hcl"
		if json {
			name = "gateway.json"
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, src, 0o600); err != nil {
			t.Fatal(err)
		}
		l := NewLoader()
		file, diags := l.Load(path)
		if file == nil && !diags.HasErrors() {
			t.Fatalf("no file and no error for %q", src)
		}
		if file != nil {
			diags = append(diags, l.Decode(context.Background(), file, schemas)...)
		}
		var out bytes.Buffer
		l.WriteDiagnostics(&out, diags, false)
		for _, d := range diags {
			if d == nil || d.Summary == "" {
				t.Fatalf("diagnostic without summary for %q: %+v", src, d)
			}
		}
	})
}
