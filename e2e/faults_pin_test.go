package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pinAPI publishes through the pinned Kafka endpoint.
const pinAPI = `
api "pinned" {
  context_path = "/pinned"
  plan "keyless" {}
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["pinned"]
    }
  }
}
`

// TestChangedPluginBinaryIsRefusedByItsPin replaces a pinned plugin's binary
// on disk while the gateway runs (as a tampered or half-finished upgrade
// would), then kills the plugin: the supervisor's restart must refuse the new
// binary (the log names both digests), requests needing the plugin get a 5xx
// in the failure format instead of reaching it, and once the pinned binary is
// back the next restart serves again.
func TestChangedPluginBinaryIsRefusedByItsPin(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"endpoint-kafka", "entrypoint-http"} {
		copyFile(t, filepath.Join(binDir(t), "plugins", "sluice-plugin-"+name), filepath.Join(dir, "sluice-plugin-"+name))
	}
	pinned := filepath.Join(dir, "sluice-plugin-endpoint-kafka")
	original, err := os.ReadFile(pinned)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(original)
	pin := hex.EncodeToString(sum[:])
	g := StartGatewayIn(t, dir, pinAPI, map[string]int{"pinned": 1},
		fmt.Sprintf("  plugin \"endpoint-kafka\" {\n    sha256 = %q\n  }\n", pin))
	if resp, body := post(t, g, "/pinned", "before", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with the pinned binary: %d %s", resp.StatusCode, body)
	}

	// A binary that still runs, but is not the one pinned: the original with
	// bytes appended, put in place by rename as installers do.
	changed := append(append([]byte(nil), original...), "tampered"...)
	changedSum := sha256.Sum256(changed)
	replaceFile(t, pinned, changed)
	if err := syscall.Kill(g.pluginPid(t, "sluice-plugin-endpoint-kafka"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want := []string{"does not match its sha256 pin", hex.EncodeToString(changedSum[:]), pin}
	deadline := time.Now().Add(20 * time.Second)
	for !containsAll(g.Logs(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no restart refused for the pin within 20 s; want log lines with %q", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for pid, cmd := range childPids(t, g.cmd.Process.Pid) {
		if strings.Contains(cmd, "sluice-plugin-endpoint-kafka") && alive(pid) {
			t.Fatalf("a process of the changed binary runs: pid %d %s", pid, cmd)
		}
	}
	client := &http.Client{Timeout: 40 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, g.URL("/pinned"), strings.NewReader("while-refused"))
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST while the endpoint plugin is refused: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("POST while refused: %d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != `{"message":"plugin endpoint-kafka is unavailable","http_status_code":503}` {
		t.Fatalf("POST while the endpoint plugin is refused: %d %s, want 503 in the failure format", resp.StatusCode, body)
	}

	// The pinned binary back: a later restart attempt (the backoff is at
	// most 10 s) starts it, re-configured, and POSTs are accepted again.
	replaceFile(t, pinned, original)
	deadline = time.Now().Add(40 * time.Second)
	for {
		resp, body := post(t, g, "/pinned", "after", nil)
		if resp.StatusCode == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST after the pinned binary came back: %d %s", resp.StatusCode, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	recs := g.ReadRecords(t, "pinned", 2, 10*time.Second)
	if got := string(recs[0].Value) + "," + string(recs[1].Value); got != "before,after" {
		t.Fatalf("records = %s, want before,after (nothing published while refused)", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes b next to path and renames it over path, so a running
// process of the old file keeps its own.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
