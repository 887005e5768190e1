package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"
)

// fixtureReport is a small run with every kind of row: a plain scenario,
// a two-point sweep, a consuming scenario with requests, a failed half
// and a memory reading.
func fixtureReport() Report {
	cpu := func(sluice, kafka, bench float64) []ProcCPU {
		return []ProcCPU{
			{Process: "sluice", Seconds: 0.5, PerUnitUS: sluice},
			{Process: "sluice-plugin-endpoint-kafka", Seconds: 0.2, PerUnitUS: kafka},
			{Process: "bench", Seconds: 0.3, PerUnitUS: bench},
		}
	}
	return Report{
		Label: "v0.3.0-12-gabcdef0", Date: "2026-01-02 03:04 UTC", Args: []string{"-results", "bench/results"},
		N: 50000, PayloadBytes: 256, QoS: "at-least-once", CPUs: 2, GoVersion: "go1.26.8", Broker: "gateway dev_kafka",
		Results: []Result{
			{
				Scenario: "ws-publish", Unit: "msg/s", Per: "msg", Count: 50000, Ratio: 0.4321,
				Gateway: &Measure{Count: 50000, Seconds: 0.5, Rate: 100000, CPU: cpu(12.5, 3.25, 150)},
				Sarama:  &Measure{Count: 50000, Seconds: 0.2, Rate: 231423.7, CPU: []ProcCPU{{Process: "sluice", PerUnitUS: 4}, {Process: "bench", PerUnitUS: 5.5}}},
			},
			{
				Scenario: "http-post", Unit: "req/s", Per: "req", Clients: 1, Count: 5000, Ratio: 0.25, AddedP99Ms: 1.5,
				Gateway: &Measure{Count: 5000, Rate: 500, P50Ms: 1.9, P99Ms: 2.5, CPU: cpu(480, 220, 95)},
				Sarama:  &Measure{Count: 5000, Rate: 2000, P50Ms: 0.45, P99Ms: 1},
			},
			{
				Scenario: "http-post", Unit: "req/s", Per: "req", Clients: 64, Count: 5000,
				Gateway: &Measure{Count: 5000, Error: "after 12 of 5000: POST answered 503"},
				Sarama:  &Measure{Count: 5000, Rate: 50000, P50Ms: 1.1, P99Ms: 3.75},
			},
			{
				Scenario: "http-get", Unit: "msg/s", Per: "msg", Count: 50000, Ratio: 0.01,
				Gateway: &Measure{Count: 50000, Rate: 3000, P50Ms: 130, P99Ms: 150, FirstMs: 140, Requests: 100,
					CPU: []ProcCPU{{Process: "sluice", PerUnitUS: 20, PerRequestUS: 10000}}},
				Sarama: &Measure{Count: 50000, Rate: 300000, FirstMs: 20},
			},
			{
				Scenario: "fanout-rss", Unit: "streams/s", Per: "stream", Clients: 1000, Count: 1000,
				Gateway: &Measure{Count: 1000, Rate: 250, Streams: 1000, RSSMiB: 300.25, RSSBeforeMiB: 100, RSSKiBPerStream: 205.056,
					RSS: []ProcRSS{{"sluice", 250}, {"sluice-plugin-endpoint-kafka", 40.25}, {"sluice-plugin-entrypoint-sse", 10}}},
			},
		},
	}
}

// update rewrites the golden files instead of comparing with them:
// go test ./bench/cmd/bench -run Markdown -update
var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestRenderMarkdown compares results.md for the fixture with
// testdata/results.md.golden, byte for byte.
func TestRenderMarkdown(t *testing.T) {
	var b bytes.Buffer
	renderMarkdown(&b, fixtureReport(), true)
	golden := filepath.Join("testdata", "results.md.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Fatalf("results.md differs from %s (run with -update after checking):\n%s", golden, got)
	}
}

func TestRenderMarkdownWithoutChart(t *testing.T) {
	var b bytes.Buffer
	renderMarkdown(&b, fixtureReport(), false)
	if strings.Contains(b.String(), sweepChartFile) {
		t.Fatal("results.md links a chart that was not written")
	}
}

func TestTableRendering(t *testing.T) {
	tb := &table{head: []string{"name", "rate"}, right: []bool{false, true}}
	tb.add("ws-publish", "100,000")
	tb.add("sse", "9")
	var md, txt bytes.Buffer
	tb.markdown(&md)
	if err := tb.text(&txt); err != nil {
		t.Fatal(err)
	}
	wantMD := "| name | rate |\n|---|--:|\n| ws-publish | 100,000 |\n| sse | 9 |\n"
	if md.String() != wantMD {
		t.Errorf("markdown:\n%q\nwant\n%q", md.String(), wantMD)
	}
	wantTxt := "name        rate\nws-publish  100,000\nsse         9\n"
	if txt.String() != wantTxt {
		t.Errorf("text:\n%q\nwant\n%q", txt.String(), wantTxt)
	}
}

func TestFmtCPU(t *testing.T) {
	cases := map[float64]string{0: "0.00", 3.14159: "3.14", 12.25: "12.2", 99.96: "100.0", 100: "100", 1234.5: "1,235"}
	for in, want := range cases {
		if got := fmtCPU(in); got != want {
			t.Errorf("fmtCPU(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestResultLabel(t *testing.T) {
	cases := map[string]struct {
		r    Result
		want string
	}{
		"plain":       {Result{Scenario: "sse", Per: "msg"}, "sse"},
		"sweep point": {Result{Scenario: "http-post", Per: "req", Clients: 64}, "http-post c=64"},
		"streams":     {Result{Scenario: "fanout-rss", Per: "stream", Clients: 10000}, "fanout-rss 10,000"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := c.r.Label(); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestProcessOrder(t *testing.T) {
	names := []string{"bench", "sluice-plugin-entrypoint-sse", "sluice", "sluice-plugin-endpoint-kafka"}
	slices.SortFunc(names, processOrder)
	want := "sluice sluice-plugin-endpoint-kafka sluice-plugin-entrypoint-sse bench"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestLogTicks(t *testing.T) {
	render := func(ts []plot.Tick) string {
		var parts []string
		for _, tk := range ts {
			parts = append(parts, fmt.Sprintf("%g:%s", tk.Value, tk.Label))
		}
		return strings.Join(parts, " ")
	}
	cases := map[string]struct {
		lo, hi float64
		want   string
	}{
		"three decades, decades labelled": {100, 100000, "100:100 200: 500: 1000:1,000 2000: 5000: 10000:10,000 20000: 50000: 100000:100,000"},
		"one decade, all labelled":        {1, 10, "1:1 2:2 5:5 10:10"},
		"below one":                       {0.1, 1, "0.1:0.1 0.2:0.2 0.5:0.5 1:1"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := render(logTicks{}.Ticks(c.lo, c.hi)); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestSweepChart checks that the chart is a PNG of the expected size and
// small enough to commit; what it shows is checked by eye.
func TestSweepChart(t *testing.T) {
	data, err := sweepChart(fixtureReport())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != 1000 || cfg.Height != 400 {
		t.Errorf("chart is %dx%d, want 1000x400", cfg.Width, cfg.Height)
	}
	if len(data) > 200<<10 {
		t.Errorf("chart is %d bytes, want under 200 KB", len(data))
	}
	noSweep := fixtureReport()
	noSweep.Results = noSweep.Results[:1]
	if data, err := sweepChart(noSweep); data != nil || err != nil {
		t.Fatalf("without a sweep: %d bytes, %v; want no chart", len(data), err)
	}
}

func TestWriteResults(t *testing.T) {
	dir := t.TempDir()
	if err := writeResults(dir, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{resultsMarkdown, resultsJSON, sweepChartFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	var rep Report
	b, _ := os.ReadFile(filepath.Join(dir, resultsJSON))
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Results) != 5 || rep.Results[1].Clients != 1 {
		t.Fatalf("results.json does not hold the report: %v %+v", err, rep)
	}
	// A run without a sweep leaves no chart of earlier figures behind.
	noSweep := fixtureReport()
	noSweep.Results = noSweep.Results[:1]
	if err := writeResults(dir, noSweep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, sweepChartFile)); !os.IsNotExist(err) {
		t.Fatalf("stale chart kept: %v", err)
	}
}

func TestRSSShortfall(t *testing.T) {
	first := errors.New("stream bench-rss-1: SSE answered 503")
	cases := map[string]struct {
		got  string
		want string
	}{
		"time ran out": {
			rssShortfall(10000, 4402, 0, 100, 5498, 150*time.Second+400*time.Millisecond, nil),
			"4402 of 10000 streams held their records when RSS was read; 100 still opening and 5498 not started when the opening limit (2m30s) ran out",
		},
		"failures": {
			rssShortfall(1000, 998, 2, 0, 0, time.Minute, &first),
			"998 of 1000 streams held their records when RSS was read; 2 failed (first: stream bench-rss-1: SSE answered 503)",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got  %s\nwant %s", c.got, c.want)
			}
		})
	}
}
