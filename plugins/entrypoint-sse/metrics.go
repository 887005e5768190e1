package main

import (
	"github.com/prometheus/client_golang/prometheus"

	sdkmetrics "github.com/sluice-gw/sluice/sdk/metrics"
)

// sseMetrics are what only the plugin sees of its streams: the core counts
// requests and deliveries by API, not the events and heartbeats it frames.
// The core serves them on /metrics with plugin="entrypoint-sse".
type sseMetrics struct {
	// open is the event streams this process is serving now.
	open prometheus.Gauge
	// events counts the events written, by event name: message (a
	// delivered message) or error (an error message).
	events *prometheus.CounterVec
	// heartbeats counts the heartbeat comments written to idle streams.
	heartbeats prometheus.Counter
}

// processMetrics are the process's, exported by serve.Serve through the
// sdk; tests give a Plugin its own.
var processMetrics = newSSEMetrics(sdkmetrics.Registerer())

// newSSEMetrics registers the plugin's metrics with reg.
func newSSEMetrics(reg prometheus.Registerer) *sseMetrics {
	m := &sseMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_sse_streams_open",
			Help: "Server-sent event streams the entrypoint is serving now.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_sse_events_written_total",
			Help: "Events written to clients, by event name (message, error).",
		}, []string{"event"}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sse_heartbeats_total",
			Help: "Heartbeat comments written to streams that had nothing else to send.",
		}),
	}
	reg.MustRegister(m.open, m.events, m.heartbeats)
	return m
}
