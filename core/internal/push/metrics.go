package push

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-subscription metrics, labelled api and subscription.
// A nil *Metrics records nothing.
type Metrics struct {
	delivered, failed, retried, deadLettered *prometheus.CounterVec
	latency                                  *prometheus.HistogramVec
	lagSeconds                               *prometheus.GaugeVec
	states                                   *prometheus.GaugeVec
}

// NewMetrics registers the push metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"api", "subscription"}
	m := &Metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_push_delivered_total",
			Help: "Messages a push subscription's callback acknowledged with a 2xx."}, labels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_push_failed_total",
			Help: "Callback attempts that failed (no answer or not 2xx)."}, labels),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_push_retried_total",
			Help: "Callback attempts after the first of a message."}, labels),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_push_dead_lettered_total",
			Help: "Messages published to the dlq endpoint after the last attempt."}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_push_callback_duration_seconds",
			Help: "Duration of callback attempts that got an answer or failed.", Buckets: prometheus.DefBuckets}, labels),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_push_lag_seconds",
			Help: "Age (now minus the Kafka timestamp) of the last message delivered."}, labels),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_push_state",
			Help: "1 for the state a push subscription is in (starting, running, retrying, stopped)."}, []string{"api", "subscription", "state"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.delivered, m.failed, m.retried, m.deadLettered, m.latency, m.lagSeconds, m.states} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) add(c *prometheus.CounterVec, api, id string) {
	if m != nil {
		c.WithLabelValues(api, id).Inc()
	}
}

func (m *Metrics) observe(api, id string, seconds float64) {
	if m != nil {
		m.latency.WithLabelValues(api, id).Observe(seconds)
	}
}

func (m *Metrics) lag(api, id string, seconds float64) {
	if m != nil {
		m.lagSeconds.WithLabelValues(api, id).Set(max(seconds, 0))
	}
}

func (m *Metrics) state(api, id, state string) {
	if m == nil {
		return
	}
	for _, s := range []string{StateStarting, StateRunning, StateRetrying, StateStopped} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.states.WithLabelValues(api, id, s).Set(v)
	}
}

// forget removes a subscription's series once it is gone from the
// configuration.
func (m *Metrics) forget(api, id string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"api": api, "subscription": id}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.delivered, m.failed, m.retried, m.deadLettered, m.latency, m.lagSeconds, m.states} {
		v.DeletePartialMatch(l)
	}
}
