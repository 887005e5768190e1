package admin

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Each plugin's *.prom file is served; one that does not parse is left out
// rather than breaking /metrics; other files are ignored.
func TestFileGathererReadsPluginFiles(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"endpoint-kafka.prom": "# HELP sluice_kafka_consumer_lag Lag.\n# TYPE sluice_kafka_consumer_lag gauge\n" +
			"sluice_kafka_consumer_lag{group=\"g\",partition=\"0\",topic=\"t\"} 3\n",
		"broken.prom":  "this is { not the text format\n",
		"notes.txt":    "# TYPE ignored_metric gauge\nignored_metric 1\n",
		"other.prom":   "# TYPE other_total counter\nother_total 7\n",
		"partial.prom": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := &fileGatherer{dir: dir, log: slog.New(slog.DiscardHandler)}
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"sluice_kafka_consumer_lag": 3, "other_total": 7}
	if len(got) != len(want) {
		t.Fatalf("families %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if fams, err := (&fileGatherer{}).Gather(); err != nil || len(fams) != 0 {
		t.Errorf("no directory: %v %v, want nothing", fams, err)
	}
}

// Every series read from <plugin>.prom carries plugin="<plugin>", replacing
// a plugin label the plugin wrote itself, so two plugins exporting the same
// family are told apart and gathered together without a collision.
func TestFileGathererLabelsByPlugin(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"entrypoint-sse.prom": "# TYPE shared_total counter\nshared_total{plugin=\"forged\",z=\"1\"} 2\n",
		"entrypoint-ws.prom":  "# TYPE shared_total counter\nshared_total{z=\"1\"} 5\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Through prometheus.Gatherers, as /metrics does: it refuses two series
	// with the same labels.
	fams, err := prometheus.Gatherers{&fileGatherer{dir: dir, log: slog.New(slog.DiscardHandler)}}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[strings.Join(labels, ",")] = fmt.Sprint(m.GetCounter().GetValue())
		}
	}
	want := map[string]string{"plugin=entrypoint-sse,z=1": "2", "plugin=entrypoint-ws,z=1": "5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("series %v, want %v", got, want)
	}
}
