package e2e

import (
	"archive/zip"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sdkModule is the sdk's module path; its tags are sdk/vX.Y.Z.
const sdkModule = "github.com/sluice-gw/sluice/sdk"

// sdkTestVersion is the version the test publishes the checkout's sdk as.
const sdkTestVersion = "v0.1.0"

// sdkProxy lays out a GOPROXY directory holding the checkout's sdk module
// at version, as the module proxy would serve the tag sdk/<version>: @v/list,
// .info, .mod and .zip. The zip leaves out nested modules (the examples),
// as a tag's zip does.
func sdkProxy(t *testing.T, version string) string {
	t.Helper()
	proxy := t.TempDir()
	vdir := filepath.Join(proxy, sdkModule, "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs("../sdk")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(map[string]any{"Version": version, "Time": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	for name, b := range map[string][]byte{"list": []byte(version + "\n"), version + ".info": info, version + ".mod": mod} {
		if err := os.WriteFile(filepath.Join(vdir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	prefix := sdkModule + "@" + version + "/"
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w, err := zw.Create(prefix + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return proxy
}

// A third party's path from nothing to a running plugin, with no network:
// `sluice plugin new` scaffolds a policy module requiring the sdk at a
// released version; it is tested and built outside the workspace (GOWORK=off,
// no replace) against that version served by a file GOPROXY standing in for
// the tag; installed in a directory of its own, listed after the shipped
// plugins in plugin_dirs; and the gateway runs it: the attribute it sets is
// the Kafka record's key.
func TestPluginScaffoldOutOfTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module out of tree")
	}
	bin := binDir(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	cacheOut, err := exec.Command(gobin, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	proxy := sdkProxy(t, sdkTestVersion)
	work := t.TempDir()
	src := filepath.Join(work, "sluice-plugin-policy-add-key")
	out, err := exec.Command(filepath.Join(bin, "sluice"), "plugin", "new", "policy", "add-key", src, "--sdk-version", sdkTestVersion).CombinedOutput()
	if err != nil {
		t.Fatalf("plugin new: %v\n%s", err, out)
	}

	// The sdk from the test's proxy, its dependencies from the module cache's
	// download directory, which is itself a proxy: no network. A module
	// cache of the test's own, so the made-up v0.1.0 never lands in the
	// real one.
	modcache := filepath.Join(work, "modcache")
	env := append(os.Environ(),
		"GOWORK=off", "GOFLAGS=-mod=mod", "GOSUMDB=off", "GOTOOLCHAIN=local", "GOMODCACHE="+modcache,
		"GOPROXY=file://"+proxy+",file://"+filepath.Join(strings.TrimSpace(string(cacheOut)), "cache", "download"),
	)
	t.Cleanup(func() {
		// The module cache is read-only; go knows how to remove it.
		c := exec.Command(gobin, "clean", "-modcache")
		c.Env = env
		_ = c.Run()
	})
	plugins := filepath.Join(work, "third-party")
	for _, args := range [][]string{
		{"mod", "tidy"},
		{"test", "-count=1", "./..."},
		{"build", "-o", filepath.Join(plugins, "sluice-plugin-policy-add-key"), "."},
	} {
		c := exec.Command(gobin, args...)
		c.Dir, c.Env = src, env
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), sdkModule+" "+sdkTestVersion) || strings.Contains(string(gomod), "replace") {
		t.Fatalf("go.mod does not require the released sdk without a replace:\n%s", gomod)
	}

	// sluice plugins lists it with the directory it came from.
	out, err = exec.Command(filepath.Join(bin, "sluice"), "plugins", filepath.Join(bin, "plugins"), plugins).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice plugins: %v\n%s", err, out)
	}
	var listed bool
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "policy-add-key" && f[3] == plugins && f[4] == "add-key" {
			listed = true
		}
	}
	if !listed {
		t.Fatalf("sluice plugins does not list policy-add-key from %s:\n%s", plugins, out)
	}

	key := uniqueID("key")
	g := startGateway(t, filepath.Join(binDir(t), "plugins"), `
api "keyed" {
  context_path = "/keyed"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["scaffold-topic"]
    }
  }
  flow "keys" {
    request {
      policy "add-key" {
        attribute = "gravitee.attribute.kafka.recordKey"
        value     = "`+key+`"
      }
    }
  }
}
`, map[string]int{"scaffold-topic": 1}, "", []string{plugins})
	resp, body := post(t, g, "/keyed", "hello", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	recs := g.ReadRecords(t, "scaffold-topic", 1, 20*time.Second)
	if got := string(recs[0].Key); got != key {
		t.Fatalf("record key %q, want %q set by the scaffolded policy", got, key)
	}
}
