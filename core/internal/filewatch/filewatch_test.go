package filewatch

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// start returns a watcher with a short debounce, closed with the test.
func start(t *testing.T, paths ...string) *Watcher {
	t.Helper()
	return startDebounced(t, 20*time.Millisecond, paths...)
}

// startDebounced is start with another debounce.
func startDebounced(t *testing.T, debounce time.Duration, paths ...string) *Watcher {
	t.Helper()
	w, err := New(debounce, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	w.Set(paths)
	return w
}

// next waits (bounded) for the next report.
func next(t *testing.T, w *Watcher) []string {
	t.Helper()
	select {
	case got := <-w.C():
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10s")
		return nil
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Writing in place, replacing by rename (what editors do) and removing then
// creating are each reported, naming the watched file only; files of the
// same directory that are not watched, and a mode change, are not reported.
func TestReportsContentChanges(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.hcl")
	other := filepath.Join(dir, "notes.txt")
	write(t, cfg, "v1")
	w := start(t, cfg)

	// Noise first: were it reported, the report would come before the
	// real change's and name nothing watched or the wrong content.
	write(t, other, "unrelated")
	if err := os.Chmod(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	write(t, cfg, "v2")
	if got := next(t, w); !slices.Equal(got, []string{cfg}) {
		t.Fatalf("in-place write: reported %q", got)
	}

	tmp := filepath.Join(dir, ".gateway.hcl.swp")
	write(t, tmp, "v3")
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); !slices.Equal(got, []string{cfg}) {
		t.Fatalf("rename over: reported %q", got)
	}

	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); !slices.Equal(got, []string{cfg}) {
		t.Fatalf("remove: reported %q", got)
	}
	write(t, cfg, "v4")
	if got := next(t, w); !slices.Equal(got, []string{cfg}) {
		t.Fatalf("create: reported %q", got)
	}
}

// Writing the same content again is no change: nothing is reported for it,
// so the next report is the one of a real change.
func TestSameContentIsNoChange(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.hcl")
	key := filepath.Join(dir, "key.txt")
	write(t, cfg, "same")
	write(t, key, "k1")
	w := start(t, cfg, key)
	write(t, cfg, "same")
	write(t, key, "k2")
	if got := next(t, w); !slices.Equal(got, []string{key}) {
		t.Fatalf("reported %q, want only %s", got, key)
	}
}

// A Kubernetes ConfigMap volume updates by swapping the ..data symlink; no
// event names the file, yet the change is reported.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "gateway.hcl"), v)
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.hcl")
	if err := os.Symlink("..data/gateway.hcl", cfg); err != nil {
		t.Fatal(err)
	}
	w := start(t, cfg)
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); !slices.Equal(got, []string{cfg}) {
		t.Fatalf("reported %q", got)
	}
}

// Set keeps the last digest of a file it already watched, so an edit made
// between a reload's read and the Set that follows it is still reported.
func TestSetKeepsDigests(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.hcl")
	extra := filepath.Join(dir, "extra.pem")
	write(t, cfg, "v1")
	write(t, extra, "pem")
	// Long enough that the check cannot run between the write and Set.
	w := startDebounced(t, time.Second, cfg)
	w.mu.Lock()
	before := w.seen[cfg]
	w.mu.Unlock()
	write(t, cfg, "v2")
	w.Set([]string{cfg, extra})
	w.mu.Lock()
	after := w.seen[cfg]
	w.mu.Unlock()
	if after != before {
		t.Fatal("Set took the file's new content as seen")
	}
	if got := next(t, w); !slices.Equal(got, []string{cfg}) {
		t.Fatalf("reported %q", got)
	}
}
