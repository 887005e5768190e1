// Package metrics lets a plugin export Prometheus metrics through the core.
//
// Register collectors with Registerer; serve.Serve exports them. The core
// serves them on its /metrics with its own, each series labelled
// plugin="<name>" (the plugin's binary name without sluice-plugin-), so
// a plugin neither opens a port nor adds that label itself:
//
//	var streams = prometheus.NewGauge(prometheus.GaugeOpts{
//		Name: "sluice_myplugin_open_streams", Help: "Streams open now.",
//	})
//
//	func init() { metrics.Registerer().MustRegister(streams) }
//
// The transport is a file: the core names one per plugin in the environment
// variable FileEnv, and the plugin replaces it (write, then rename) with its
// metrics in the Prometheus text format at most every Interval while they
// change. A file keeps the plugin protocol unchanged and works the same for a
// plugin in any language; the cost is that /metrics can be up to Interval
// behind.
package metrics

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// FileEnv names the environment variable holding the path of the file the
// plugin writes its metrics to. Unset (a plugin started by hand, or by a core
// that collects no plugin metrics) means the metrics are not exported.
const FileEnv = "SLUICE_PLUGIN_METRICS_FILE"

// Interval is how often serve.Serve rewrites the file while the metrics
// change.
const Interval = time.Second

// registry is the process's: one plugin process is one set of metrics,
// whatever the number of instances it serves.
var registry = prometheus.NewRegistry()

// Registerer is where a plugin registers its collectors. Keep label values
// bounded (a topic, an API), never per client or per message: every series
// is written every Interval and kept by the core's scraper.
func Registerer() prometheus.Registerer { return registry }

// Gatherer reads what was registered with Registerer; tests use it to check
// a plugin's metrics.
func Gatherer() prometheus.Gatherer { return registry }

// WriteFile replaces path with g's metrics in the Prometheus text format.
// The file is written beside path and renamed over it, so a reader sees the
// whole old file or the whole new one.
func WriteFile(g prometheus.Gatherer, path string) error {
	b, err := encode(g)
	if err != nil {
		return err
	}
	return replace(path, b)
}

// Export writes g to path at every interval at which the metrics differ
// from the last written ones, and once at once, until ctx ends. A write error
// is passed to warn the first time only: metrics are not worth flooding a log
// for, and never worth failing the data path for.
func Export(ctx context.Context, g prometheus.Gatherer, path string, interval time.Duration, warn func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	export(ctx, g, path, t.C, warn)
}

// ExportFromEnv runs Export with the path in FileEnv and Interval; it
// returns at once when FileEnv is unset. serve.Serve runs it.
func ExportFromEnv(ctx context.Context, warn func(error)) {
	path := os.Getenv(FileEnv)
	if path == "" {
		return
	}
	Export(ctx, registry, path, Interval, warn)
}

// export is Export with the ticks given, so tests decide when they come.
func export(ctx context.Context, g prometheus.Gatherer, path string, tick <-chan time.Time, warn func(error)) {
	var last []byte
	warned := false
	write := func() {
		b, err := encode(g)
		if err == nil && last != nil && bytes.Equal(b, last) {
			return
		}
		if err == nil {
			err = replace(path, b)
		}
		if err != nil {
			if !warned && warn != nil {
				warn(err)
				warned = true
			}
			return
		}
		last = b
	}
	write()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			write()
		}
	}
}

// encode renders g in the text exposition format.
func encode(g prometheus.Gatherer) ([]byte, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// replace writes b to a temporary file in path's directory and renames it
// over path (a rename within a directory is atomic).
func replace(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
