package main

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sdkmetrics "github.com/sluice-gw/sluice/sdk/metrics"
)

// kafkaMetrics are the endpoint's Prometheus metrics. The process's are
// registered with the sdk's registry, which serve.Serve exports to the
// core's /metrics (see sdk/metrics), where each series gets the label
// plugin="endpoint-kafka".
type kafkaMetrics struct {
	// produce is the time from handing a record to the producer until the
	// brokers acknowledged it (acks), by topic.
	produce *prometheus.HistogramVec
	// fetch is the age of a record when the consumer fetched it: the time
	// from its timestamp (the producer's or the broker's append time) until
	// the plugin read it from the broker. On a consumer that keeps up it is
	// the fetch latency; on one that is behind it grows with the backlog.
	fetch *prometheus.HistogramVec
	// lag is, per consumer group and partition, the high watermark minus
	// the group's committed (or, for at-most-once, about to be committed)
	// offset: the records the group has not consumed yet.
	lag *prometheus.GaugeVec

	// hwm holds each partition's last known high watermark, per group, so
	// a commit can be turned into lag without a broker round trip.
	mu  sync.Mutex
	hwm map[lagKey]int64
}

type lagKey struct {
	group, topic string
	partition    int32
}

// metrics are the process's metrics; tests read them too.
var metrics = newKafkaMetrics(sdkmetrics.Registerer())

// newKafkaMetrics registers the endpoint's metrics with reg.
func newKafkaMetrics(reg prometheus.Registerer) *kafkaMetrics {
	m := &kafkaMetrics{
		produce: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_kafka_produce_duration_seconds",
			Help:    "Time from handing a record to the Kafka producer until the brokers acknowledged it, by topic.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"topic"}),
		fetch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_kafka_fetch_latency_seconds",
			Help: "Age of a record when the consumer fetched it (now minus the record's timestamp), by topic: " +
				"the fetch latency of a consumer that keeps up, growing with the backlog of one that does not.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 11),
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_kafka_consumer_lag",
			Help: "Records of a partition its consumer group has not committed yet: the high watermark minus the " +
				"committed offset, by consumer group (the subscription's client identifier), topic and partition.",
		}, []string{"group", "topic", "partition"}),
		hwm: map[lagKey]int64{},
	}
	reg.MustRegister(m.produce, m.fetch, m.lag)
	return m
}

// produced observes one acknowledged record.
func (m *kafkaMetrics) produced(topic string, since time.Time) {
	m.produce.WithLabelValues(topic).Observe(time.Since(since).Seconds())
}

// fetched observes a fetched record and the partition's high watermark.
func (m *kafkaMetrics) fetched(group, topic string, partition int32, timestamp time.Time, hwm int64) {
	if !timestamp.IsZero() {
		m.fetch.WithLabelValues(topic).Observe(max(time.Since(timestamp), 0).Seconds())
	}
	m.mu.Lock()
	m.hwm[lagKey{group, topic, partition}] = hwm
	m.mu.Unlock()
}

// committed sets the lag of a partition whose group commits next (the
// offset of the next record to read).
func (m *kafkaMetrics) committed(group, topic string, partition int32, next int64) {
	m.mu.Lock()
	hwm, ok := m.hwm[lagKey{group, topic, partition}]
	m.mu.Unlock()
	if !ok {
		return
	}
	m.lag.WithLabelValues(group, topic, strconv.Itoa(int(partition))).Set(float64(max(hwm-next, 0)))
}

// forget drops a group's lag when its subscription closes, so /metrics
// does not keep a series for every client that ever read.
func (m *kafkaMetrics) forget(group string) {
	m.mu.Lock()
	for k := range m.hwm {
		if k.group == group {
			delete(m.hwm, k)
		}
	}
	m.mu.Unlock()
	m.lag.DeletePartialMatch(prometheus.Labels{"group": group})
}
