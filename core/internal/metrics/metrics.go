// Package metrics holds the data path's Prometheus metrics. The listener
// counts requests, refusals and durations, the exchanges count the messages
// they carry and the subscriptions they hold open; they share one value, so
// the admin listener serves them all from one registry.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data path's Prometheus metrics. The admin listener serves
// the registry they are registered in. The zero value is not usable: create
// them with New.
type Metrics struct {
	requests      *prometheus.CounterVec
	published     *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	subscriptions *prometheus.GaugeVec
	duration      *prometheus.HistogramVec
	refused       *prometheus.CounterVec
}

// DurationBuckets are the request duration histogram's buckets, in seconds:
// from 1 ms (a POST on a local broker) to about 17 minutes, because streams
// (SSE, WebSocket) are requests too and last as long as their client stays.
var DurationBuckets = prometheus.ExponentialBuckets(0.001, 4, 11)

// New creates the data path's metrics and registers them with reg (nil
// keeps them unregistered, for tests).
func New(reg prometheus.Registerer) (*Metrics, error) {
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
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sluice", Name: "request_duration_seconds",
			Help: "Time from a request's arrival to its end, by API and entrypoint type: the whole response, or the " +
				"whole life of a stream or WebSocket. API and entrypoint are empty when the request matched none.",
			Buckets: DurationBuckets,
		}, []string{"api", "entrypoint"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Name: "requests_refused_total",
			Help: "Requests and connections refused before reaching an entrypoint, by API (empty when not known yet) " +
				"and reason: plan (no plan accepted the credential), connections (max_connections), " +
				"connections_per_ip (max_connections_per_ip), body_too_large, headers_too_large.",
		}, []string{"api", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.published, m.delivered, m.subscriptions, m.duration, m.refused} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Request counts one answered request. The status is the one the client got
// (101 for a WebSocket upgrade); api and entrypoint are empty when the
// request was answered before either was known.
func (m *Metrics) Request(api, entrypoint string, status int) {
	m.requests.WithLabelValues(api, entrypoint, strconv.Itoa(status)).Inc()
}

// AddPublished counts n messages the endpoint accepted for api's clients.
func (m *Metrics) AddPublished(api string, n int) {
	if n > 0 {
		m.published.WithLabelValues(api).Add(float64(n))
	}
}

// AddDelivered counts n messages handed to an entrypoint of api for its
// clients; error messages are not deliveries and are left out by the caller.
func (m *Metrics) AddDelivered(api string, n int) {
	if n > 0 {
		m.delivered.WithLabelValues(api).Add(float64(n))
	}
}

// Subscription moves api's open-subscription gauge by delta (+1 when a
// subscription opens, -1 when it ends).
func (m *Metrics) Subscription(api string, delta float64) {
	m.subscriptions.WithLabelValues(api).Add(delta)
}

// ObserveDuration records how long one request lasted, from its arrival to
// its end (the whole life of a stream).
func (m *Metrics) ObserveDuration(api, entrypoint string, seconds float64) {
	m.duration.WithLabelValues(api, entrypoint).Observe(seconds)
}

// Reasons of sluice_requests_refused_total, as dashboards key on them.
const (
	// RefusedPlan: no plan of the API accepted the credential.
	RefusedPlan = "plan"
	// RefusedConnections: the gateway holds max_connections already.
	RefusedConnections = "connections"
	// RefusedConnectionsPerIP: the client address holds
	// max_connections_per_ip already.
	RefusedConnectionsPerIP = "connections_per_ip"
	// RefusedBodyTooLarge: the body is over the API's or the gateway's limit.
	RefusedBodyTooLarge = "body_too_large"
	// RefusedHeadersTooLarge: the request line and headers are over
	// max_header_bytes.
	RefusedHeadersTooLarge = "headers_too_large"
)

// Refuse counts one request or connection refused before it reached an
// entrypoint, for one of the Refused reasons; api is empty when not known.
func (m *Metrics) Refuse(api, reason string) {
	m.refused.WithLabelValues(api, reason).Inc()
}
