package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP reloads the configuration: a new API appears, the running one keeps
// serving, and a file with errors changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	g := StartGateway(t, demoAPI, map[string]int{"test-topic": 1, "other-topic": 1})
	path := filepath.Join(g.Dir, "gateway.hcl")
	extra := `
api "second" {
  context_path = "/second"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "` + g.Kafka + `"
    producer {
      enabled = true
      topics  = ["other-topic"]
    }
  }
}
`
	if err := os.WriteFile(path, []byte(g.ConfigHCL+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, g, "/second", http.StatusAccepted)
	recs := g.ReadRecords(t, "other-topic", 1, 10*time.Second)
	if !strings.HasPrefix(string(recs[0].Value), "probe") {
		t.Fatalf("record %q", recs[0].Value)
	}
	if resp, body := post(t, g, "/demo", "still here", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the running API stopped serving: %d %s", resp.StatusCode, body)
	}

	// A broken file is rejected as a whole: diagnostics in the log, APIs unchanged.
	broken := strings.Replace(g.ConfigHCL+extra, `context_path = "/second"`, `context_path = "/second"
  bogus_attribute = 1`, 1)
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = g.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.Logs(), "reload rejected") {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged:\n%s", g.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(g.Logs(), "bogus_attribute") {
		t.Errorf("the diagnostics do not name the bad attribute:\n%s", g.Logs())
	}
	if resp, body := post(t, g, "/second", "probe", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a rejected reload changed the running APIs: %d %s", resp.StatusCode, body)
	}
}

// waitStatus polls a POST until it answers want.
func waitStatus(t *testing.T, g *Gateway, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body := post(t, g, path, "probe", nil)
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s: %d %s, want %d\n%s", path, resp.StatusCode, body, want, g.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// With gateway { reload { watch = true } }, editing the file reloads it with
// no signal: an editor's save (a new file renamed over the old one) brings
// a new API, a broken save is rejected while the running APIs keep serving,
// and the save that fixes it is applied.
func TestReloadOnFileWatch(t *testing.T) {
	g := StartGatewayWith(t, demoAPI, map[string]int{"test-topic": 1, "other-topic": 1},
		"  reload {\n    watch       = true\n    debounce_ms = 100\n  }")
	path := filepath.Join(g.Dir, "gateway.hcl")
	api := func(name string) string {
		return `
api "` + name + `" {
  context_path = "/` + name + `"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "` + g.Kafka + `"
    producer {
      enabled = true
      topics  = ["other-topic"]
    }
  }
}
`
	}
	// save writes the file the way vim and most editors do.
	save := func(content string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}

	save(g.ConfigHCL + api("second"))
	waitStatus(t, g, "/second", http.StatusAccepted)
	if !strings.Contains(g.Logs(), "configuration files changed") {
		t.Fatalf("the reload was not the watch's:\n%s", g.Logs())
	}

	// A broken edit, written in place this time.
	broken := strings.Replace(g.ConfigHCL+api("second"), `context_path = "/second"`, `context_path = "/second"
  bogus_attribute = 1`, 1)
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(g.Logs(), "reload rejected") {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged:\n%s", g.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(g.Logs(), "bogus_attribute") {
		t.Errorf("the diagnostics do not name the bad attribute:\n%s", g.Logs())
	}
	for _, p := range []string{"/demo", "/second"} {
		if resp, body := post(t, g, p, "probe", nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("a rejected reload changed the running API %s: %d %s", p, resp.StatusCode, body)
		}
	}

	// The fix is a change like any other.
	save(g.ConfigHCL + api("second") + api("third"))
	waitStatus(t, g, "/third", http.StatusAccepted)
}
