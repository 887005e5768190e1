package main

import (
	"github.com/prometheus/client_golang/prometheus"

	sdkmetrics "github.com/sluice-gw/sluice/sdk/metrics"
)

// wsMetrics are what only the plugin sees of its sockets: the core counts
// requests and deliveries by API, not how many WebSocket messages a batch
// became. The core serves them on /metrics with plugin="entrypoint-ws".
type wsMetrics struct {
	// open is the sockets this process is serving now.
	open prometheus.Gauge
	// written counts the binary messages written to clients, one per
	// delivered message.
	written prometheus.Counter
}

// processMetrics are the process's, exported by serve.Serve through the
// sdk; tests give a Plugin its own.
var processMetrics = newWSMetrics(sdkmetrics.Registerer())

// newWSMetrics registers the plugin's metrics with reg.
func newWSMetrics(reg prometheus.Registerer) *wsMetrics {
	m := &wsMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_ws_sockets_open",
			Help: "WebSocket sessions the entrypoint is serving now.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_ws_messages_written_total",
			Help: "Binary WebSocket messages written to clients, one per delivered message.",
		}),
	}
	reg.MustRegister(m.open, m.written)
	return m
}
