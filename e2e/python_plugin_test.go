package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pythonPolicyDir holds the example policy written in Python.
const pythonPolicyDir = "../sdk/examples/python-policy"

// pipInstall is what a machine without the Python packages needs.
const pipInstall = "pip install -r sdk/examples/python-policy/requirements.txt (grpcio, grpcio-tools, cryptography)"

// buildPythonPolicy builds the Python policy into dir with its build.sh,
// from the sources of this checkout, so the test never runs a stale copy. It
// skips the test, saying what to install, only when Python 3 or one of its
// packages is missing; any other build failure fails the test.
func buildPythonPolicy(t *testing.T, dir string) {
	t.Helper()
	python := os.Getenv("PYTHON")
	if python == "" {
		python = "python3"
	}
	if _, err := exec.LookPath(python); err != nil {
		t.Skipf("the Python policy needs Python 3 (%s not found: %v); install it, then %s", python, err, pipInstall)
	}
	if out, err := exec.Command(python, "-c", "import grpc, grpc_tools, cryptography").CombinedOutput(); err != nil {
		t.Skipf("the Python policy needs Python packages that %s lacks: %s\n%s", python, pipInstall, out)
	}
	cmd := exec.Command(filepath.Join(pythonPolicyDir, "build.sh"), filepath.Join(dir, "sluice-plugin-policy-python-uppercase"))
	cmd.Env = append(os.Environ(), "PYTHON="+python)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the Python policy: %v\n%s", err, out)
	}
}

// pluginDirWithPython returns a plugin directory holding the plugins of
// `make build` (as links) and the Python policy. bin/plugins itself stays
// Go-only, so the rest of the suite does not start a Python process per
// gateway.
func pluginDirWithPython(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	buildPythonPolicy(t, dir)
	shipped := filepath.Join(binDir(t), "plugins")
	entries, err := os.ReadDir(shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(shipped, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A publish-phase policy written in Python (sdk/examples/python-policy) is
// started by the gateway like any plugin (go-plugin handshake, AutoMTLS,
// health) and transforms what is produced: the content is upper-cased and
// the attribute it sets becomes the record key.
func TestPythonPolicyTransformsProducedRecord(t *testing.T) {
	plugins := pluginDirWithPython(t)

	// `sluice plugins` lists it through `describe`, without a handshake.
	out, err := exec.Command(filepath.Join(binDir(t), "sluice"), "plugins", plugins).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^policy-python-uppercase +policy +0\.1\.0 +\S+ +python-uppercase$`).Match(out) {
		t.Fatalf("sluice plugins: %v\n%s", err, out)
	}

	g := StartGatewayIn(t, plugins, `
api "shout" {
  context_path = "/shout"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["shout"]
    }
  }
  flow "python" {
    publish {
      policy "python-uppercase" {
        record_key = "from-python"
      }
    }
  }
}`, map[string]int{"shout": 1}, "")

	for _, body := range []string{"hello, python", "grüße"} {
		if resp, b := post(t, g, "/shout", body, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %q: %d %s", body, resp.StatusCode, b)
		}
	}
	recs := g.ReadRecords(t, "shout", 2, 20*time.Second)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value)+"="+string(r.Key))
	}
	if want := "HELLO, PYTHON=from-python,GRÜSSE=from-python"; strings.Join(got, ",") != want {
		t.Fatalf("records %v, want %s", got, want)
	}
}
