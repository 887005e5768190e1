package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	sdkmetrics "github.com/sluice-gw/sluice/sdk/metrics"
)

// Lag is the high watermark last seen for the group's partition minus the
// offset it commits next; a closed subscription's series go away.
func TestConsumerLag(t *testing.T) {
	m := newKafkaMetrics(prometheus.NewRegistry())
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

// The process's metrics are registered with the sdk's registry, which is
// what serve.Serve exports to the core.
func TestMetricsExportedThroughSDK(t *testing.T) {
	metrics.produced("orders-sdk-test", time.Now())
	families, err := sdkmetrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "sluice_kafka_produce_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == "orders-sdk-test" && m.GetHistogram().GetSampleCount() == 1 {
					return
				}
			}
		}
	}
	t.Fatalf("the sdk's registry lacks the produce histogram of topic orders-sdk-test: %v", families)
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }
