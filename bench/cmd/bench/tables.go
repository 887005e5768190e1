package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// table is one table of the report, rendered as Markdown for results.md
// and as aligned text for the terminal, so that both always show the same
// figures.
type table struct {
	title string
	head  []string
	// right marks the columns aligned right in Markdown (figures).
	right []bool
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// markdown renders t as a GitHub Markdown table (without its title).
func (t *table) markdown(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(t.head, " | "))
	for i := range t.head {
		if i < len(t.right) && t.right[i] {
			fmt.Fprint(w, "--:|")
		} else {
			fmt.Fprint(w, "---|")
		}
	}
	fmt.Fprintln(w)
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// text renders t with columns aligned by spaces.
func (t *table) text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.head, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// rightAligned returns n flags: the first left columns false, the rest true.
func rightAligned(left, n int) []bool {
	out := make([]bool, n)
	for i := left; i < n; i++ {
		out[i] = true
	}
	return out
}

// ok reports whether a half ran and succeeded.
func (m *Measure) ok() bool { return m != nil && m.Error == "" }

// fmtMs formats a latency in milliseconds.
func fmtMs(v float64) string { return fmt.Sprintf("%.2f", v) }

// fmtCPU formats microseconds of CPU: whole above 100, else three
// significant figures at most (a clock tick is 10 ms, so finer figures
// would be noise).
func fmtCPU(us float64) string {
	switch {
	case us >= 100:
		return thousands(us)
	case us >= 10:
		return fmt.Sprintf("%.1f", us)
	default:
		return fmt.Sprintf("%.2f", us)
	}
}

// mainTable is one row per scenario (and sweep point): both figures, the
// ratio and the p99 the gateway adds.
func mainTable(rep Report) *table {
	t := &table{
		head:  []string{"scenario", "count", "gateway", "sarama", "ratio", "added p99"},
		right: rightAligned(1, 6),
	}
	for _, r := range rep.Results {
		ratio, added := "-", "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		if hasAddedP99(r) {
			added = fmt.Sprintf("%+.2fms", r.AddedP99Ms)
		}
		t.add(r.Label(), thousands(float64(r.Count)), r.Gateway.summary(r.Unit), r.Sarama.summary(r.Unit), ratio, added)
	}
	return t
}

// hasAddedP99 reports whether both halves measured a p99 per request.
func hasAddedP99(r Result) bool {
	return r.Gateway.ok() && r.Sarama.ok() && r.Gateway.P99Ms > 0 && r.Sarama.P99Ms > 0
}

// sweepResults are the http-post points of the concurrency sweep, in
// the order they ran.
func sweepResults(rep Report) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.Scenario == "http-post" && r.Clients > 0 {
			out = append(out, r)
		}
	}
	return out
}

// sweepTable details the http-post sweep: rate and latencies per
// concurrency; nil without one.
func sweepTable(rep Report) *table {
	points := sweepResults(rep)
	if len(points) == 0 {
		return nil
	}
	t := &table{
		title: "HTTP POST concurrency sweep",
		head:  []string{"clients", "gateway req/s", "sarama req/s", "ratio", "gateway p50 ms", "gateway p99 ms", "sarama p50 ms", "sarama p99 ms", "added p99 ms"},
		right: rightAligned(0, 9),
	}
	for _, r := range points {
		row := []string{fmt.Sprint(r.Clients), "FAILED", "FAILED", "-", "-", "-", "-", "-", "-"}
		if r.Gateway.ok() {
			row[1], row[4], row[5] = thousands(r.Gateway.Rate), fmtMs(r.Gateway.P50Ms), fmtMs(r.Gateway.P99Ms)
		} else if r.Gateway == nil {
			row[1] = "-"
		}
		if r.Sarama.ok() {
			row[2], row[6], row[7] = thousands(r.Sarama.Rate), fmtMs(r.Sarama.P50Ms), fmtMs(r.Sarama.P99Ms)
		} else if r.Sarama == nil {
			row[2] = "-"
		}
		if r.Ratio > 0 {
			row[3] = fmt.Sprintf("%.2f", r.Ratio)
		}
		if hasAddedP99(r) {
			row[8] = fmt.Sprintf("%+.2f", r.AddedP99Ms)
		}
		t.add(row...)
	}
	return t
}

// cpuTable is one row per half that succeeded: microseconds of CPU per
// request, message or stream for every process, and the gateway's
// processes summed; nil when no half recorded CPU.
func cpuTable(rep Report) *table {
	// A process that used no measurable CPU anywhere (a plugin no scenario
	// calls) gets no column; results.json still lists it.
	var procs []string
	for _, r := range rep.Results {
		for _, m := range []*Measure{r.Gateway, r.Sarama} {
			if !m.ok() {
				continue
			}
			for _, c := range m.CPU {
				if (c.PerUnitUS > 0 || c.PerRequestUS > 0) && !slices.Contains(procs, c.Process) {
					procs = append(procs, c.Process)
				}
			}
		}
	}
	if len(procs) == 0 {
		return nil
	}
	slices.SortFunc(procs, processOrder)
	// The gateway total sits just before the bench: the bench is the load
	// generator, not part of the gateway.
	head := []string{"scenario", "half", "per"}
	var gwProcs []string
	for _, p := range procs {
		if p != benchName {
			gwProcs = append(gwProcs, p)
			head = append(head, p)
		}
	}
	if len(gwProcs) > 0 {
		head = append(head, "gateway total")
	}
	hasBench := slices.Contains(procs, benchName)
	if hasBench {
		head = append(head, benchName)
	}
	t := &table{
		title: "CPU µs per request, message or stream, per process",
		head:  head,
		right: rightAligned(3, len(head)),
	}
	row := func(label, half, per string, m *Measure, value func(ProcCPU) float64) {
		cells := []string{label, half, per}
		byName := map[string]float64{}
		for _, c := range m.CPU {
			byName[c.Process] = value(c)
		}
		var total float64
		for _, p := range gwProcs {
			v, ok := byName[p]
			if !ok {
				cells = append(cells, "-")
				continue
			}
			total += v
			cells = append(cells, fmtCPU(v))
		}
		if len(gwProcs) > 0 {
			cells = append(cells, fmtCPU(total))
		}
		if hasBench {
			if v, ok := byName[benchName]; ok {
				cells = append(cells, fmtCPU(v))
			} else {
				cells = append(cells, "-")
			}
		}
		t.add(cells...)
	}
	for _, r := range rep.Results {
		for _, h := range []struct {
			name string
			m    *Measure
		}{{"gateway", r.Gateway}, {"sarama", r.Sarama}} {
			if !h.m.ok() || len(h.m.CPU) == 0 {
				continue
			}
			row(r.Label(), h.name, r.Per, h.m, func(c ProcCPU) float64 { return c.PerUnitUS })
			if h.m.Requests > 0 {
				row(r.Label(), h.name, "req", h.m, func(c ProcCPU) float64 { return c.PerRequestUS })
			}
		}
	}
	return t
}

// rssTable is one row per fanout-rss point: the memory of the gateway's
// processes with the streams open; nil without one.
func rssTable(rep Report) *table {
	var points []Result
	var procs []string
	for _, r := range rep.Results {
		if m := r.Gateway; m != nil && m.RSSMiB > 0 {
			points = append(points, r)
			for _, p := range m.RSS {
				if !slices.Contains(procs, p.Process) {
					procs = append(procs, p.Process)
				}
			}
		}
	}
	if len(points) == 0 {
		return nil
	}
	slices.SortFunc(procs, processOrder)
	head := append([]string{"streams", "open", "RSS MiB", "before MiB", "KiB per stream"}, procs...)
	t := &table{
		title: "Memory with concurrent SSE streams open (gateway and plugins, RSS summed)",
		head:  head,
		right: rightAligned(0, len(head)),
	}
	for _, r := range points {
		m := r.Gateway
		cells := []string{thousands(float64(r.Clients)), thousands(float64(m.Streams)),
			fmt.Sprintf("%.1f", m.RSSMiB), fmt.Sprintf("%.1f", m.RSSBeforeMiB), fmt.Sprintf("%.1f", m.RSSKiBPerStream)}
		for _, p := range procs {
			cell := "-"
			for _, x := range m.RSS {
				if x.Process == p {
					cell = fmt.Sprintf("%.1f", x.MiB)
				}
			}
			cells = append(cells, cell)
		}
		t.add(cells...)
	}
	return t
}
