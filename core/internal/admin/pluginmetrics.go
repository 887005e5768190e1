package admin

import (
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fileGatherer serves the metrics plugins write to files: each *.prom file
// of dir, in the Prometheus text format, read at every scrape. Plugins
// replace their file atomically (write, then rename), so a scrape reads a
// whole file or the previous one. A file that does not parse is left out
// and logged once, so one plugin cannot break /metrics.
type fileGatherer struct {
	dir string
	log *slog.Logger

	mu     sync.Mutex
	warned map[string]bool
}

// Gather implements prometheus.Gatherer.
func (g *fileGatherer) Gather() ([]*dto.MetricFamily, error) {
	if g.dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(g.dir, "*.prom"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*dto.MetricFamily
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			// Removed between the glob and the open: a plugin going away.
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(f)
		f.Close()
		if err != nil {
			g.warnOnce(path, err)
			continue
		}
		names := make([]string, 0, len(families))
		for name := range families {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			out = append(out, families[name])
		}
	}
	return out, nil
}

func (g *fileGatherer) warnOnce(path string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.warned == nil {
		g.warned = map[string]bool{}
	}
	if !g.warned[path] {
		g.warned[path] = true
		g.log.Warn("a plugin metrics file does not parse; /metrics leaves it out", "file", path, "err", err)
	}
}
