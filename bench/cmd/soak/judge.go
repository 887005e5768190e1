package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"sort"
	"strconv"
)

// verdict is the trend test of one series.
type verdict struct {
	name         string
	second, last float64
	allowed      float64
	ok           bool
}

func (v verdict) String() string {
	state := "flat"
	if !v.ok {
		state = "TRENDS UPWARD"
	}
	return fmt.Sprintf("%-17s %s: median %s in the 2nd quarter, %s in the last (allowed up to %s)",
		v.name, state, human(v.name, v.second), human(v.name, v.last), human(v.name, v.allowed))
}

// tolerance is how far the last quarter's median may stand above the second
// quarter's: a relative part for noise proportional to the level (GC
// headroom, batch sizes) and an absolute part for small counts (a goroutine
// or descriptor more during a reconnect, a lag of a few batches).
var tolerance = map[string]struct{ rel, abs float64 }{
	"core_rss_bytes":   {0.10, 16 << 20},
	"plugin_rss_bytes": {0.10, 16 << 20},
	"core_goroutines":  {0.10, 20},
	"core_fds":         {0.10, 10},
	"plugin_fds":       {0.10, 10},
	"core_threads":     {0.10, 4},
	"plugin_threads":   {0.10, 8},
	"consumer_lag":     {0.50, 2000},
	"push_lag":         {0.50, 2000},
}

// judge compares the median of the second quarter of the samples with that
// of the last quarter, for every judged column. The first quarter is
// warm-up; medians of whole quarters ignore single spikes, so only a
// sustained rise fails.
func judge(samples []sample) []verdict {
	n := len(samples)
	q := n / 4
	var out []verdict
	for _, c := range columns {
		if !c.judged {
			continue
		}
		second := median(samples[q:2*q], c.get)
		last := median(samples[n-q:], c.get)
		tol := tolerance[c.name]
		allowed := second*(1+tol.rel) + tol.abs
		out = append(out, verdict{name: c.name, second: second, last: last, allowed: allowed, ok: last <= allowed})
	}
	return out
}

func median(s []sample, get func(sample) int64) float64 {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = float64(get(x))
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func human(name string, v float64) string {
	if name == "core_rss_bytes" || name == "plugin_rss_bytes" {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func writeCSV(path string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	var head []string
	for _, c := range columns {
		head = append(head, c.name)
	}
	_ = w.Write(head)
	for _, s := range samples {
		var row []string
		for _, c := range columns {
			row = append(row, strconv.FormatInt(c.get(s), 10))
		}
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
