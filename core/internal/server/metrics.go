package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data path's Prometheus metrics. The admin listener serves
// the registry they are registered in.
type Metrics struct {
	requests      *prometheus.CounterVec
	published     *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	subscriptions *prometheus.GaugeVec
}

// NewMetrics creates the data path's metrics and registers them with reg
// (nil keeps them unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Name: "requests_total",
			Help: "Client requests by API, entrypoint type and response status (101 for WebSocket upgrades).",
		}, []string{"api", "entrypoint", "status"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Name: "messages_published_total",
			Help: "Messages accepted by the endpoint on behalf of clients, by API.",
		}, []string{"api"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Name: "messages_delivered_total",
			Help: "Messages handed to entrypoints for delivery to clients, by API.",
		}, []string{"api"}),
		subscriptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sluice", Name: "active_subscriptions",
			Help: "Endpoint subscriptions currently open, by API.",
		}, []string{"api"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.published, m.delivered, m.subscriptions} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) request(api, entrypoint string, status int) {
	m.requests.WithLabelValues(api, entrypoint, strconv.Itoa(status)).Inc()
}

func (m *Metrics) addPublished(api string, n int) {
	if n > 0 {
		m.published.WithLabelValues(api).Add(float64(n))
	}
}

func (m *Metrics) addDelivered(api string, n int) {
	if n > 0 {
		m.delivered.WithLabelValues(api).Add(float64(n))
	}
}

func (m *Metrics) subscription(api string, delta float64) {
	m.subscriptions.WithLabelValues(api).Add(delta)
}
