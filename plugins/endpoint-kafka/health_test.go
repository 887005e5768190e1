package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// fastHealth checks often, so the tests see changes quickly; they only
// ever wait for a state, with wait as the bound.
var fastHealth = healthTimings{interval: 20 * time.Millisecond, retry: 20 * time.Millisecond, timeout: 200 * time.Millisecond}

// settable is a check whose answer a test sets; block holds it.
type settable struct {
	mu    sync.Mutex
	err   error
	block chan struct{}
	calls int
}

func (s *settable) check() error {
	s.mu.Lock()
	b := s.block
	s.calls++
	s.mu.Unlock()
	if b != nil {
		<-b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *settable) set(err error, block chan struct{}) {
	s.mu.Lock()
	s.err, s.block = err, block
	s.mu.Unlock()
}

// waitState waits until h reports ready with a reason containing want.
func waitState(t *testing.T, state func() (bool, string), ready bool, want string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r, reason := state()
		if r == ready && strings.Contains(reason, want) {
			return reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("state (%v, %q), want (%v, containing %q)", r, reason, ready, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBrokerHealthFollowsTheChecks(t *testing.T) {
	s := &settable{}
	first := make(chan struct{})
	s.set(nil, first)
	cleaned := make(chan struct{})
	h := newBrokerHealth("i1", "kafka-1:9092,kafka-2:9092", s.check, func() { close(cleaned) }, fastHealth, testLogger(t))

	// Not ready until the first check answers.
	if r, reason := h.state(); r || reason != "brokers not checked yet (kafka-1:9092,kafka-2:9092)" {
		t.Fatalf("before the first check: (%v, %q)", r, reason)
	}
	s.set(nil, nil)
	close(first)
	waitState(t, h.state, true, "")

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	s.set(fmt.Errorf("%w: %w", sarama.ErrOutOfBrokers, refused), nil)
	reason := waitState(t, h.state, false, "brokers unreachable: kafka-1:9092,kafka-2:9092: ")
	if !strings.Contains(reason, "connection refused") {
		t.Fatalf("reason %q does not name the error", reason)
	}

	s.set(nil, nil)
	waitState(t, h.state, true, "")

	// A check that hangs is reported past the timeout, and no second
	// check starts meanwhile.
	hang := make(chan struct{})
	s.set(nil, hang)
	waitState(t, h.state, false, "no answer within 200ms")
	s.mu.Lock()
	calls := s.calls
	s.mu.Unlock()
	time.Sleep(3 * fastHealth.retry)
	s.mu.Lock()
	if s.calls != calls {
		t.Errorf("%d checks started while one hung", s.calls-calls)
	}
	s.mu.Unlock()
	s.set(nil, nil)
	close(hang)
	waitState(t, h.state, true, "")

	// close stops the loop; cleanup runs once the check in flight ended.
	stuck := make(chan struct{})
	s.set(nil, stuck)
	time.Sleep(3 * fastHealth.interval)
	h.close()
	h.close()
	select {
	case <-cleaned:
		t.Fatal("cleanup ran while a check was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	close(stuck)
	select {
	case <-cleaned:
	case <-time.After(wait):
		t.Fatal("cleanup did not run after close")
	}
}

func TestBrokerHealthClassifiesErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		ready bool
	}{
		{"answered", nil, true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
		{"timeout", fmt.Errorf("%w: i/o timeout", sarama.ErrOutOfBrokers), false},
		{"broker gone", fmt.Errorf("read: %w", errors.New("EOF")), false},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "kafka.invalid", IsNotFound: true}, false},
		// The brokers answered; every request reports the credentials.
		{"wrong password", sarama.ErrSASLAuthenticationFailed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &brokerHealth{bootstrap: "k:9092", log: testLogger(t)}
			h.set(tc.err)
			ready, reason := h.state()
			if ready != tc.ready || (reason == "") != tc.ready {
				t.Fatalf("set(%v) = (%v, %q), want ready %v", tc.err, ready, reason, tc.ready)
			}
		})
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func healthOf(t *testing.T, hs []lifecycle.InstanceHealth, err error) map[string]lifecycle.InstanceHealth {
	t.Helper()
	if err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
	m := map[string]lifecycle.InstanceHealth{}
	for _, h := range hs {
		m[h.InstanceID] = h
	}
	return m
}

// Through the wire, against an embedded broker that stops: the instance is
// ready while the broker answers and names its bootstrap servers once it
// is gone; instances with nothing to check are ready.
func TestCheckHealthReportsTheCluster(t *testing.T) {
	c := startCluster(t, map[string]int32{"t": 1})
	h, k := startPlugin(t)
	k.health = fastHealth
	md, err := h.Clients.Plugin.GetMetadata(context.Background(), &pluginv1.GetMetadata_Request{})
	if err != nil || !slices.Contains(md.GetFeatures(), lifecycle.FeatureHealth) {
		t.Fatalf("features %v (%v): want %q", md.GetFeatures(), err, lifecycle.FeatureHealth)
	}
	down := closedAddr(t)
	configure(t, h, "up", map[string]any{"bootstrap_servers": c.addrs, "producer": map[string]any{"enabled": true, "topics": []string{"t", "missing"}}})
	configure(t, h, "down", map[string]any{"bootstrap_servers": down, "producer": map[string]any{"enabled": true, "topics": []string{"t"}}})
	// Known per request only: not checked.
	configure(t, h, "dynamic", map[string]any{"bootstrap_servers": "{#request.headers['X-Kafka'][0]}", "producer": map[string]any{"enabled": true, "topics": []string{"t"}}})
	// Not an address: every request reports it; not checked.
	configure(t, h, "invalid", map[string]any{"bootstrap_servers": "wrong", "producer": map[string]any{"enabled": true, "topics": []string{"t"}}})

	state := func(id string) func() (bool, string) {
		return func() (bool, string) {
			hs, err := h.CheckHealth(t)
			i, ok := healthOf(t, hs, err)[id]
			if !ok {
				return false, "not reported"
			}
			return i.Ready, i.Reason
		}
	}
	waitState(t, state("up"), true, "")
	waitState(t, state("down"), false, "brokers unreachable: "+down+": ")
	waitState(t, state("dynamic"), true, "")
	waitState(t, state("invalid"), true, "")

	c.Close()
	if reason := waitState(t, state("up"), false, "brokers unreachable: "+c.addrs+": "); strings.Contains(reason, "\n") {
		t.Fatalf("reason %q is not one line", reason)
	}

	// An unconfigured instance stops checking and is no longer reported.
	inst, _ := k.Get("up")
	h.Unconfigure(t, "up")
	select {
	case <-inst.health.done:
	case <-time.After(wait):
		t.Fatal("the check loop of an unconfigured instance still runs")
	}
	waitState(t, state("up"), false, "not reported")
}
