package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Lag is the high watermark last seen for the group's partition minus the
// offset it commits next; a closed subscription's series go away.
func TestConsumerLag(t *testing.T) {
	m := newKafkaMetrics()
	m.committed("g", "t", 0, 5) // no watermark seen yet: nothing to say
	if n := testutil.CollectAndCount(m.lag); n != 0 {
		t.Fatalf("%d lag series before any fetch, want 0", n)
	}
	m.fetched("g", "t", 0, time.Now(), 10)
	m.fetched("g", "t", 1, time.Time{}, 4)
	m.fetched("other", "t", 0, time.Now(), 10)
	for _, tc := range []struct {
		partition int32
		next      int64
		want      float64
	}{
		{0, 5, 5},
		{0, 10, 0},
		{1, 1, 3},
		{1, 9, 0}, // a watermark older than the commit never gives a negative lag
	} {
		m.committed("g", "t", tc.partition, tc.next)
		if got := testutil.ToFloat64(m.lag.WithLabelValues("g", "t", itoa(tc.partition))); got != tc.want {
			t.Errorf("partition %d committing %d: lag %v, want %v", tc.partition, tc.next, got, tc.want)
		}
	}
	m.committed("other", "t", 0, 2)
	m.forget("g")
	if n := testutil.CollectAndCount(m.lag); n != 1 {
		t.Fatalf("%d lag series after the group closed, want the other group's only", n)
	}
	// A record without a timestamp is not a fetch latency.
	if n := testutil.CollectAndCount(m.fetch); n != 1 {
		t.Fatalf("%d fetch series, want 1", n)
	}
}

// The metrics file is the Prometheus text format the core parses.
func TestMetricsFile(t *testing.T) {
	m := newKafkaMetrics()
	m.produced("orders", time.Now())
	path := filepath.Join(t.TempDir(), "endpoint-kafka.prom")
	if err := m.write(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE sluice_kafka_produce_duration_seconds histogram\n",
		`sluice_kafka_produce_duration_seconds_count{topic="orders"} 1` + "\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, b)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file was left behind: %v", err)
	}
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }
