package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Measure is one half of a scenario.
type Measure struct {
	// Count is how many records (or requests) were moved.
	Count int `json:"count"`
	// Seconds is the timed span.
	Seconds float64 `json:"seconds"`
	// Rate is Count per second: the figure of the report.
	Rate float64 `json:"rate"`
	// P50Ms and P99Ms are per-request latencies: of each POST in
	// http-post, of each page in the gateway half of http-get.
	P50Ms float64 `json:"p50_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	// FirstMs is the time to the first record for consuming scenarios: the
	// consumer group join and first fetch, included in Seconds.
	FirstMs float64 `json:"first_ms,omitempty"`
	// Requests is the number of GETs the http-get scenario needed.
	Requests int `json:"requests,omitempty"`
	// Extra counts records beyond Count: duplicates re-delivered to
	// http-get, or records beyond n in Kafka after ws-publish.
	Extra int64 `json:"extra,omitempty"`
	// Runs is how many times the half ran (see -min-time); the figures are
	// those of the median run.
	Runs int `json:"runs,omitempty"`
	// CPUGatewayS is the CPU time the gateway process tree (sluice, its
	// plugins and the embedded broker inside sluice) used per run of this half;
	// absent with -baseline-only.
	CPUGatewayS float64 `json:"cpu_gateway_s,omitempty"`
	// CPUBenchS is the CPU time of the bench process itself per run:
	// the clients, or sarama (and the in-process broker with -baseline-only).
	CPUBenchS float64 `json:"cpu_bench_s,omitempty"`
	// CPU is the CPU time of each process per run, and per request or
	// message: the gateway, each plugin process, the bench.
	CPU []ProcCPU `json:"cpu,omitempty"`
	// Streams is how many SSE streams were open when the RSS was read
	// (fanout-rss).
	Streams int `json:"streams,omitempty"`
	// RSSMiB is the resident memory of the gateway and its plugins,
	// summed, with Streams streams open; RSSBeforeMiB the same just before
	// the first stream was opened.
	RSSMiB       float64 `json:"rss_mib,omitempty"`
	RSSBeforeMiB float64 `json:"rss_before_mib,omitempty"`
	// RSSKiBPerStream is (RSSMiB - RSSBeforeMiB) / Streams, in KiB.
	RSSKiBPerStream float64 `json:"rss_kib_per_stream,omitempty"`
	// RSS is each process's share of RSSMiB.
	RSS []ProcRSS `json:"rss,omitempty"`
	// Error says why this half failed; its figures are then meaningless.
	Error string `json:"error,omitempty"`
}

// ProcCPU is the CPU time one process used in one half of a scenario.
type ProcCPU struct {
	// Process is sluice (the gateway, with dev_kafka the broker too), the
	// base name of a plugin executable, or bench (the load generator, or
	// sarama in a sarama half).
	Process string `json:"process"`
	// Seconds is user + system CPU time per run.
	Seconds float64 `json:"seconds"`
	// PerUnitUS is microseconds of CPU per request, message or stream (the
	// result's Per), the timed part of a run divided by its count.
	PerUnitUS float64 `json:"us_per_unit"`
	// PerRequestUS is microseconds of CPU per HTTP request where a request
	// carries many messages (the gateway half of http-get).
	PerRequestUS float64 `json:"us_per_request,omitempty"`
}

// ProcRSS is the resident memory of one process.
type ProcRSS struct {
	Process string  `json:"process"`
	MiB     float64 `json:"mib"`
}

// Result is one scenario: both halves and their ratio.
type Result struct {
	Scenario string `json:"scenario"`
	Unit     string `json:"unit"`
	// Per names what Count counts and what CPU is divided by: req, msg or
	// stream.
	Per string `json:"per"`
	// Clients is the concurrency of one point of a sweep: keep-alive
	// clients of http-post, streams of fanout-rss; zero elsewhere.
	Clients int      `json:"clients,omitempty"`
	Count   int      `json:"count"`
	Gateway *Measure `json:"gateway,omitempty"`
	Sarama  *Measure `json:"sarama,omitempty"`
	// Ratio is Gateway.Rate / Sarama.Rate; zero when either half failed or
	// did not run.
	Ratio float64 `json:"ratio,omitempty"`
	// AddedP99Ms is the gateway's p99 latency minus sarama's, where both
	// halves measure a latency per request (http-post).
	AddedP99Ms float64 `json:"added_p99_ms,omitempty"`
}

// Label is the scenario as the tables name it: with its sweep point.
func (r Result) Label() string {
	switch {
	case r.Clients == 0:
		return r.Scenario
	case r.Per == "stream":
		return fmt.Sprintf("%s %s", r.Scenario, thousands(float64(r.Clients)))
	default:
		return fmt.Sprintf("%s c=%d", r.Scenario, r.Clients)
	}
}

func (r Result) failed() bool {
	return (r.Gateway != nil && r.Gateway.Error != "") || (r.Sarama != nil && r.Sarama.Error != "")
}

// Report is the whole run, as printed by -json.
type Report struct {
	// Label names the code measured (make bench passes git describe).
	Label string `json:"label,omitempty"`
	// Date is when the run started, UTC.
	Date string `json:"date,omitempty"`
	// Args are the bench's command-line arguments.
	Args         []string `json:"args"`
	N            int      `json:"n"`
	PayloadBytes int      `json:"payload_bytes"`
	QoS          string   `json:"qos"`
	CPUs         int      `json:"cpus"`
	GoVersion    string   `json:"go_version"`
	Broker       string   `json:"broker"`
	BaselineOnly bool     `json:"baseline_only,omitempty"`
	Results      []Result `json:"results"`
}

func rateOf(n int, d time.Duration) Measure {
	m := Measure{Count: n, Seconds: d.Seconds()}
	if d > 0 {
		m.Rate = float64(n) / d.Seconds()
	}
	return m
}

// maxRuns bounds the repetitions of one half.
const maxRuns = 5

// medianRun returns the run with the median rate (the upper one of an even
// count; equal rates keep their order): one slow or fast outlier on a
// shared machine moves it little.
func medianRun(runs []Measure) Measure {
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b Measure) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	return sorted[len(sorted)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentileMs returns the p-th percentile (nearest rank) in milliseconds.
// It sorts lats.
func percentileMs(lats []time.Duration, p float64) float64 {
	if len(lats) == 0 {
		return 0
	}
	slices.Sort(lats)
	rank := int(math.Ceil(p / 100 * float64(len(lats))))
	rank = min(max(rank, 1), len(lats))
	return ms(lats[rank-1])
}

// thousands formats v rounded to an integer with thin separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// summary is a half's figure as the table shows it.
func (m *Measure) summary(unit string) string {
	if m == nil {
		return "-"
	}
	if m.Error != "" && m.RSSMiB == 0 {
		return "FAILED"
	}
	if m.RSSMiB > 0 {
		s := fmt.Sprintf("RSS %.0f MiB, %.0f KiB/stream", m.RSSMiB, m.RSSKiBPerStream)
		if m.Error != "" {
			s += fmt.Sprintf(" (FAILED, %s open)", thousands(float64(m.Streams)))
		}
		return s
	}
	s := thousands(m.Rate) + " " + unit
	if m.P50Ms > 0 || m.P99Ms > 0 {
		s += fmt.Sprintf(" (p50 %.2fms p99 %.2fms)", m.P50Ms, m.P99Ms)
	}
	if m.FirstMs > 0 {
		s += fmt.Sprintf(" (first %.0fms)", m.FirstMs)
	}
	return s
}

// writeTable prints the report for a terminal: the same tables as
// results.md, aligned with spaces, and one line of detail per half.
func writeTable(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "sluice bench: n=%d, payload %d B, qos %s, %d CPUs, %s, broker: %s\n",
		rep.N, rep.PayloadBytes, rep.QoS, rep.CPUs, rep.GoVersion, rep.Broker)
	for _, t := range []*table{mainTable(rep), cpuTable(rep), rssTable(rep)} {
		if t == nil {
			continue
		}
		fmt.Fprintln(w)
		if t.title != "" {
			fmt.Fprintln(w, t.title)
		}
		if err := t.text(w); err != nil {
			return err
		}
	}
	if notes := halfNotes(rep); len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	fmt.Fprintln(w, "\nratio = gateway / sarama on the same broker in this run; higher is better, 1.00 means no overhead.")
	return nil
}

// halfNotes is one line per half: its count and span, repetitions,
// duplicates and CPU seconds, or its error.
func halfNotes(rep Report) []string {
	var notes []string
	for _, r := range rep.Results {
		for _, h := range []struct {
			label string
			m     *Measure
		}{{"gateway", r.Gateway}, {"sarama", r.Sarama}} {
			switch {
			case h.m == nil:
			case h.m.Error != "":
				notes = append(notes, fmt.Sprintf("%s %s: %s", r.Label(), h.label, h.m.Error))
			default:
				note := fmt.Sprintf("%s %s: %s in %.2fs", r.Label(), h.label, thousands(float64(h.m.Count)), h.m.Seconds)
				if h.m.Runs > 1 {
					note += fmt.Sprintf(" (median of %d runs)", h.m.Runs)
				}
				if h.m.Requests > 0 {
					note += fmt.Sprintf(", %d requests", h.m.Requests)
				}
				if h.m.Extra > 0 {
					note += fmt.Sprintf(", %d extra records", h.m.Extra)
				}
				if h.m.CPUGatewayS > 0 {
					note += fmt.Sprintf(", CPU: sluice tree %.2fs", h.m.CPUGatewayS)
				} else {
					note += ", CPU:"
				}
				note += fmt.Sprintf(" bench %.2fs", h.m.CPUBenchS)
				notes = append(notes, note)
			}
		}
	}
	return notes
}

func writeJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// span is when a reader started, got its first record and its last.
type span struct {
	start, first, last time.Time
}

// measure turns a span into the figure: with steady, records per second
// from the first record to the last (streaming throughput, the start-up
// reported apart as FirstMs); otherwise from the start to the last record.
func (s span) measure(n int, steady bool) Measure {
	from := s.start
	if steady {
		from = s.first
	}
	m := rateOf(n, s.last.Sub(from))
	m.FirstMs = ms(s.first.Sub(s.start))
	return m
}

// fanoutMeasure combines concurrent readers of count records in all: the
// figure runs from the first record any reader got to the last record the
// slowest reader got; FirstMs is the slowest reader's start-up.
func fanoutMeasure(spans []span, count int) Measure {
	var all span
	var slowest time.Duration
	for i, s := range spans {
		if i == 0 || s.first.Before(all.first) {
			all.first = s.first
		}
		if i == 0 || s.last.After(all.last) {
			all.last = s.last
		}
		slowest = max(slowest, s.first.Sub(s.start))
	}
	m := rateOf(count, all.last.Sub(all.first))
	m.FirstMs = ms(slowest)
	return m
}
