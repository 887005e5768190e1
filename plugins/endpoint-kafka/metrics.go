package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// MetricsDirEnv names the directory the core gives plugins for their
// Prometheus metrics. The plugin writes its metrics there, in the text
// exposition format, as <dir>/endpoint-kafka.prom, replaced atomically
// (write, then rename) at most every metricsInterval while they change; the
// core's /metrics reads every *.prom file of the directory and serves their
// families with its own. A file, rather than a listener or an RPC, keeps the
// plugin protocol unchanged and opens no port; the cost is that the figures
// /metrics shows can be up to metricsInterval old.
const MetricsDirEnv = "SLUICE_PLUGIN_METRICS_DIR"

// metricsInterval bounds how often the metrics file is rewritten.
const metricsInterval = time.Second

// kafkaMetrics are the endpoint's Prometheus metrics.
type kafkaMetrics struct {
	reg *prometheus.Registry
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

	dirty atomic.Bool
}

type lagKey struct {
	group, topic string
	partition    int32
}

// metrics are the process's metrics; tests read them too.
var metrics = newKafkaMetrics()

func newKafkaMetrics() *kafkaMetrics {
	m := &kafkaMetrics{
		reg: prometheus.NewRegistry(),
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
	m.reg.MustRegister(m.produce, m.fetch, m.lag)
	return m
}

// produced observes one acknowledged record.
func (m *kafkaMetrics) produced(topic string, since time.Time) {
	m.produce.WithLabelValues(topic).Observe(time.Since(since).Seconds())
	m.dirty.Store(true)
}

// fetched observes a fetched record and the partition's high watermark.
func (m *kafkaMetrics) fetched(group, topic string, partition int32, timestamp time.Time, hwm int64) {
	if !timestamp.IsZero() {
		m.fetch.WithLabelValues(topic).Observe(max(time.Since(timestamp), 0).Seconds())
	}
	m.mu.Lock()
	m.hwm[lagKey{group, topic, partition}] = hwm
	m.mu.Unlock()
	m.dirty.Store(true)
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
	m.dirty.Store(true)
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
	m.dirty.Store(true)
}

// writeLoop writes the metrics file while the process runs, when MetricsDirEnv
// names a directory. Write errors are logged once: metrics are never worth
// failing the data path for.
func (m *kafkaMetrics) writeLoop(log logger) {
	dir := os.Getenv(MetricsDirEnv)
	if dir == "" {
		return
	}
	path := filepath.Join(dir, "endpoint-kafka.prom")
	m.dirty.Store(true)
	warned := false
	for range time.Tick(metricsInterval) {
		if !m.dirty.Swap(false) {
			continue
		}
		if err := m.write(path); err != nil && !warned {
			log.Warn("cannot write the metrics file; /metrics will miss the Kafka metrics", "path", path, "error", err)
			warned = true
		}
	}
}

// write replaces path with the current metrics.
func (m *kafkaMetrics) write(path string) error {
	families, err := m.reg.Gather()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
