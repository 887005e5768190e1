// Package push runs the gateway's push subscriptions (webhooks).
//
// The core owns the subscription set. Each subscription is a headless
// exchange on its API's webhook entrypoint (server.OpenHeadless): the same
// path as a client request, minus the socket. Its client identifier is the
// subscription id, so the endpoint's consumer group is the subscription id
// and the same subscription on several gateways shares the partitions.
//
// The entrypoint frames, instead of bytes for a client, one delivery report
// per chunk it writes (JSON, see Report); the manager turns them into
// metrics and the state /apis shows. A subscription the entrypoint
// interrupts (its callback keeps failing) stays stopped until the
// configuration changes; anything else that ends it (a plugin restart, a
// broker outage) starts it again with backoff.
package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/core/internal/relay"
	"github.com/sluice-gw/sluice/core/internal/server"
)

// States of a subscription, as /apis shows them.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateRetrying = "retrying"
	StateStopped  = "stopped"
)

// Outcomes of a Report.
const (
	// OutcomeDelivered: the callback answered 2xx.
	OutcomeDelivered = "delivered"
	// OutcomeFailed: one attempt failed (no answer or not 2xx).
	OutcomeFailed = "failed"
	// OutcomeDeadLettered: the message went to the dlq endpoint.
	OutcomeDeadLettered = "dead-lettered"
	// OutcomeSkipped: the message was given up on and skipped (the
	// interrupt options off, no dlq).
	OutcomeSkipped = "skipped"
)

// Report is one delivery report a webhook exchange writes (one JSON object
// per chunk).
type Report struct {
	// Outcome is one of the Outcome constants.
	Outcome string `json:"outcome"`
	// Attempt numbers the attempt, the first being 1.
	Attempt int `json:"attempt,omitempty"`
	// Status is the callback's status; 0 when it did not answer.
	Status int `json:"status,omitempty"`
	// DurationMs is how long the attempt took.
	DurationMs float64 `json:"duration_ms,omitempty"`
	// LagMs is, for a delivered message, how old it was (now minus its
	// Kafka timestamp).
	LagMs float64 `json:"lag_ms,omitempty"`
	// Error says why an attempt failed.
	Error string `json:"error,omitempty"`
}

// interruptKeys are the failure keys with which the webhook entrypoint
// interrupts a subscription on purpose (docs/webhooks.md):
// starting it again would fail the same way, so it stays stopped.
var interruptKeys = []string{"WEBHOOK_UNREACHABLE", "MESSAGE_PROCESSING_FAILED", "FAILURE_SUBSCRIPTION_INVALID"}

// Spec is one push subscription to run.
type Spec struct {
	// API is the deployed API's name.
	API string
	// ID is the subscription id (the consumer group).
	ID string
	// Config is the subscription block as JSON.
	Config []byte
	// Version changes whenever anything the running exchange depends on
	// changes (the subscription, the webhook entrypoint, the endpoints):
	// Sync then replaces the subscription.
	Version string
}

// Opener opens headless exchanges; *server.Server is one.
type Opener interface {
	OpenHeadless(server.HeadlessSpec) (*relay.Headless, error)
}

// Options configure a Manager.
type Options struct {
	// Server opens the exchanges. Required.
	Server Opener
	// Metrics receive the per-subscription metrics. Optional.
	Metrics *Metrics
	// Logger receives state changes. Optional. Default: discard.
	Logger *slog.Logger
	// MaxBackoff bounds the wait before a failed subscription starts
	// again. Optional. Default: 30s.
	MaxBackoff time.Duration
}

// Manager runs the push subscriptions of the deployed configuration.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	subs   map[string]*runner // by API "/" ID
	closed bool
}

// New returns a manager running nothing.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	return &Manager{opts: opts, log: opts.Logger, subs: map[string]*runner{}}
}

// Sync makes the running subscriptions those of specs: new ones start,
// removed ones stop (committing what their callbacks acknowledged), and
// changed ones are replaced, the new one starting once the old one is done
// so they never compete for the same partitions.
func (m *Manager) Sync(specs []Spec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	want := map[string]Spec{}
	for _, s := range specs {
		want[s.API+"/"+s.ID] = s
	}
	for key, r := range m.subs {
		if s, ok := want[key]; !ok || s.Version != r.spec.Version {
			r.stop()
			if !ok {
				delete(m.subs, key)
				m.opts.Metrics.forget(r.spec.API, r.spec.ID)
			}
		}
	}
	for key, s := range want {
		old := m.subs[key]
		if old != nil && old.spec.Version == s.Version {
			continue
		}
		r := newRunner(m, s)
		m.subs[key] = r
		var after <-chan struct{}
		if old != nil {
			after = old.done
		}
		go r.run(after)
	}
}

// Close stops every subscription and waits for them, or for ctx.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	rs := make([]*runner, 0, len(m.subs))
	for _, r := range m.subs {
		rs = append(rs, r)
		r.stop()
	}
	m.mu.Unlock()
	for _, r := range rs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return
		}
	}
}

// Status is one subscription's state, for /apis.
type Status struct {
	// ID is the subscription id.
	ID string `json:"id"`
	// State is one of the State constants.
	State string `json:"state"`
	// LastError is the last failure (of an attempt or of the exchange).
	LastError string `json:"last_error,omitempty"`
	// Since is when the state last changed.
	Since time.Time `json:"since"`
	// Delivered, Failed, Retried and DeadLettered count messages and
	// attempts since the gateway started.
	Delivered    uint64 `json:"delivered"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
}

// Status returns the state of the subscriptions of api, sorted by id.
func (m *Manager) Status(api string) []Status {
	m.mu.Lock()
	var out []Status
	for _, r := range m.subs {
		if r.spec.API == api {
			out = append(out, r.status())
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// runner runs one subscription until stopped.
type runner struct {
	m    *Manager
	spec Spec
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu sync.Mutex
	st Status
}

func newRunner(m *Manager, s Spec) *runner {
	return &runner{m: m, spec: s, quit: make(chan struct{}), done: make(chan struct{}),
		st: Status{ID: s.ID, State: StateStarting, Since: time.Now()}}
}

func (r *runner) stop() { r.once.Do(func() { close(r.quit) }) }

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *runner) setState(state, lastErr string) {
	r.mu.Lock()
	changed := r.st.State != state
	if changed {
		r.st.State, r.st.Since = state, time.Now()
	}
	if lastErr != "" {
		r.st.LastError = lastErr
	}
	r.mu.Unlock()
	if changed {
		r.m.opts.Metrics.state(r.spec.API, r.spec.ID, state)
		args := []any{"api", r.spec.API, "subscription", r.spec.ID, "state", state}
		if lastErr != "" {
			args = append(args, "error", lastErr)
		}
		if state == StateStopped && lastErr != "" {
			r.m.log.Warn("push subscription interrupted", args...)
		} else {
			r.m.log.Info("push subscription", args...)
		}
	}
}

// run opens the exchange, and opens it again with backoff when it ends for
// a reason other than an interrupt or a stop. after, when set, is the
// previous version of the subscription, which must be done first.
func (r *runner) run(after <-chan struct{}) {
	defer close(r.done)
	if after != nil {
		select {
		case <-after:
		case <-r.quit:
			r.setState(StateStopped, "")
			return
		}
	}
	backoff := time.Second
	for {
		select {
		case <-r.quit:
			r.setState(StateStopped, "")
			return
		default:
		}
		started := time.Now()
		h, err := r.m.opts.Server.OpenHeadless(server.HeadlessSpec{
			API: r.spec.API, Entrypoint: "webhook", ID: r.spec.ID, Plan: "push",
			Subscription: r.spec.Config, OnWrite: r.reports,
		})
		if err == nil {
			r.setState(StateRunning, "")
			select {
			case <-h.Done():
			case <-r.quit:
				h.Stop()
				<-h.Done()
				r.setState(StateStopped, "")
				return
			}
			res := h.Result()
			if slices.Contains(interruptKeys, res.Key) {
				r.setState(StateStopped, res.Message)
				<-r.quit
				return
			}
			msg := res.Message
			if msg == "" {
				msg = "the webhook exchange ended"
			}
			err = errString(msg)
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		r.setState(StateRetrying, err.Error())
		select {
		case <-time.After(backoff):
		case <-r.quit:
			r.setState(StateStopped, "")
			return
		}
		backoff = min(backoff*2, r.m.opts.MaxBackoff)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// reports reads the delivery reports of one Write.
func (r *runner) reports(chunks [][]byte) {
	for _, c := range chunks {
		var rep Report
		if json.Unmarshal(c, &rep) != nil {
			continue
		}
		r.report(rep)
	}
}

func (r *runner) report(rep Report) {
	met := r.m.opts.Metrics
	api, id := r.spec.API, r.spec.ID
	if rep.Attempt > 1 && (rep.Outcome == OutcomeDelivered || rep.Outcome == OutcomeFailed) {
		met.add(met.retried, api, id)
		r.count(func(s *Status) { s.Retried++ })
	}
	if rep.DurationMs > 0 && (rep.Outcome == OutcomeDelivered || rep.Outcome == OutcomeFailed) {
		met.observe(api, id, rep.DurationMs/1000)
	}
	switch rep.Outcome {
	case OutcomeDelivered:
		met.add(met.delivered, api, id)
		met.lag(api, id, rep.LagMs/1000)
		r.count(func(s *Status) { s.Delivered++ })
		r.setState(StateRunning, "")
	case OutcomeFailed:
		met.add(met.failed, api, id)
		r.count(func(s *Status) { s.Failed++ })
		r.setState(StateRetrying, rep.Error)
	case OutcomeDeadLettered:
		met.add(met.deadLettered, api, id)
		r.count(func(s *Status) { s.DeadLettered++ })
		r.setState(StateRunning, "")
	case OutcomeSkipped:
		r.setState(StateRunning, "")
	}
}

func (r *runner) count(f func(*Status)) {
	r.mu.Lock()
	f(&r.st)
	r.mu.Unlock()
}
