package admin

import (
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// fileGatherer serves the metrics plugins write to files (sdk/metrics): each
// <plugin>.prom file of dir, in the Prometheus text format, read at every
// scrape, with the label plugin="<plugin>" added to every series (replacing
// one the plugin set: the core names the files, so the name is the one
// label a plugin cannot get wrong). Plugins replace their file atomically
// (write, then rename), so a scrape reads a whole file or the previous one.
// A file that does not parse is left out and logged once, so one plugin
// cannot break /metrics.
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
		plugin := strings.TrimSuffix(filepath.Base(path), ".prom")
		for _, name := range names {
			out = append(out, withPlugin(families[name], plugin))
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

// pluginLabel names the plugin a series read from a plugin's file came from.
const pluginLabel = "plugin"

// withPlugin sets the plugin label on every series of f. Two plugins may
// then export a family of the same name (two builds of a shared library)
// without their series colliding.
func withPlugin(f *dto.MetricFamily, plugin string) *dto.MetricFamily {
	for _, m := range f.GetMetric() {
		labels := m.GetLabel()[:0]
		for _, l := range m.GetLabel() {
			if l.GetName() != pluginLabel {
				labels = append(labels, l)
			}
		}
		labels = append(labels, &dto.LabelPair{Name: proto.String(pluginLabel), Value: proto.String(plugin)})
		sort.Slice(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() })
		m.Label = labels
	}
	return f
}
