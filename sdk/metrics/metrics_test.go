package metrics

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// newCounter is a registry holding one counter, as a plugin would have.
func newCounter(t *testing.T) (*prometheus.Registry, prometheus.Counter) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_frames_total", Help: "Frames."})
	reg.MustRegister(c)
	return reg, c
}

// value parses the file as the core does and returns the counter's value.
func value(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the core could not parse the file: %v", err)
	}
	fam, ok := families["sluice_test_frames_total"]
	if !ok || len(fam.GetMetric()) != 1 {
		t.Fatalf("families %v lack the counter", families)
	}
	return fam.GetMetric()[0].GetCounter().GetValue()
}

// WriteFile writes the text format the core parses, replaces an existing
// file, and leaves no temporary file behind.
func TestWriteFile(t *testing.T) {
	reg, c := newCounter(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "entrypoint-x.prom")
	c.Add(3)
	if err := WriteFile(reg, path); err != nil {
		t.Fatal(err)
	}
	if got := value(t, path); got != 3 {
		t.Fatalf("counter %v, want 3", got)
	}
	c.Add(2)
	if err := WriteFile(reg, path); err != nil {
		t.Fatal(err)
	}
	if got := value(t, path); got != 5 {
		t.Fatalf("counter %v after a rewrite, want 5", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want only the metrics file: %v", len(entries), entries)
	}
}

// Export writes at once, then at a tick only when the metrics changed.
// The ticks are sent on an unbuffered channel, so each send returns once the
// loop has taken the previous one: the test knows what was written when,
// without sleeping.
func TestExportWritesChanges(t *testing.T) {
	reg, c := newCounter(t)
	path := filepath.Join(t.TempDir(), "entrypoint-x.prom")
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		export(ctx, reg, path, tick, func(err error) { t.Errorf("warn: %v", err) })
	}()
	defer func() { cancel(); <-done }()

	tick <- time.Time{} // the loop is past its first write
	if got := value(t, path); got != 0 {
		t.Fatalf("first write: counter %v, want 0", got)
	}
	// Unchanged metrics are not written again: the removed file stays away.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	tick <- time.Time{}
	tick <- time.Time{} // the previous tick was handled
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unchanged metrics were written again: %v", err)
	}
	c.Inc()
	tick <- time.Time{}
	tick <- time.Time{}
	if got := value(t, path); got != 1 {
		t.Fatalf("after a change: counter %v, want 1", got)
	}
}

// A write that fails is reported once, not at every tick, and retried.
func TestExportWarnsOnce(t *testing.T) {
	reg, c := newCounter(t)
	dir := filepath.Join(t.TempDir(), "missing")
	path := filepath.Join(dir, "entrypoint-x.prom")
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	var warnings []error
	done := make(chan struct{})
	go func() {
		defer close(done)
		export(ctx, reg, path, tick, func(err error) { warnings = append(warnings, err) })
	}()
	for range 3 {
		c.Inc()
		tick <- time.Time{}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tick <- time.Time{}
	tick <- time.Time{}
	cancel()
	<-done
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want 1: %v", len(warnings), warnings)
	}
	if got := value(t, path); got != 3 {
		t.Fatalf("once the directory exists the metrics are written: counter %v, want 3", got)
	}
}

// Without FileEnv nothing is exported and ExportFromEnv returns at once.
func TestExportFromEnvUnset(t *testing.T) {
	t.Setenv(FileEnv, "")
	ExportFromEnv(context.Background(), func(err error) { t.Errorf("warn: %v", err) })
}

// ExportFromEnv writes what was registered with Registerer to the file the
// core named.
func TestExportFromEnv(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_frames_total", Help: "Frames."})
	Registerer().MustRegister(c)
	defer Registerer().Unregister(c)
	c.Add(7)
	path := filepath.Join(t.TempDir(), "entrypoint-x.prom")
	t.Setenv(FileEnv, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the first write happens before the loop looks at ctx
	ExportFromEnv(ctx, func(err error) { t.Errorf("warn: %v", err) })
	if got := value(t, path); got != 7 {
		t.Fatalf("counter %v, want 7", got)
	}
}
