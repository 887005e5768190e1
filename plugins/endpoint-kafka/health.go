package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// Broker health (the "health" protocol feature): every instance checks in
// the background whether it can reach its cluster, and CheckHealth answers
// from what the last check found, so the core's /ready never waits on Kafka
// and the data path never waits on a check.
const (
	// defaultHealthInterval is the time between two checks while the
	// cluster answers; defaultHealthRetry while it does not, so /ready
	// turns back to 200 soon after the brokers are back.
	defaultHealthInterval = 5 * time.Second
	defaultHealthRetry    = time.Second
	// defaultHealthTimeout bounds one check: past it the instance is
	// reported not ready even if the check is still waiting on a broker.
	defaultHealthTimeout = 5 * time.Second
	// The check's own network timeouts, shorter than the data path's
	// (newSaramaConfig), so a silent cluster is found within the bound.
	healthNetTimeout = 3 * time.Second
)

// Interface guard: the plugin reports its instances' health.
var _ lifecycle.HealthChecker = (*Kafka)(nil)

// CheckHealth reports every configured instance from its last check.
func (k *Kafka) CheckHealth(context.Context) []lifecycle.InstanceHealth {
	var out []lifecycle.InstanceHealth
	k.Range(func(id string, inst *instance) bool {
		h := lifecycle.InstanceHealth{InstanceID: id, Ready: true}
		if inst.health != nil {
			h.Ready, h.Reason = inst.health.state()
		}
		out = append(out, h)
		return true
	})
	return out
}

// healthTimings are how often and how long an instance checks its cluster.
type healthTimings struct {
	interval, retry, timeout time.Duration
}

// brokerHealth checks one instance's cluster in the background until
// stopped, and keeps what the last check found.
type brokerHealth struct {
	bootstrap string
	check     func() error
	t         healthTimings
	log       logger
	id        string

	mu      sync.Mutex
	checked bool
	ready   bool
	reason  string

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// startBrokerHealth starts checking the cluster of inst, or returns nil
// when there is nothing to check: an instance whose connection settings
// hold EL (they are known per request only), or whose bootstrap servers or
// security settings are invalid (each request reports that as a
// configuration error; another gateway would not do better).
func (k *Kafka) startBrokerHealth(inst *instance) *brokerHealth {
	cfg := inst.static
	if cfg == nil {
		return nil
	}
	addrs, err := bootstrapAddrs(cfg.BootstrapServers)
	if err != nil {
		return nil
	}
	sc, err := healthSaramaConfig(cfg, inst.id)
	if err != nil {
		return nil
	}
	p := &clusterProbe{addrs: addrs, sc: sc, topics: healthTopics(cfg)}
	return newBrokerHealth(inst.id, cfg.BootstrapServers, p.check, p.close, k.health, k.log)
}

// newBrokerHealth starts a check loop calling check; cleanup runs once the
// loop and any check in flight ended. The instance is not ready until the
// first check answers.
func newBrokerHealth(id, bootstrap string, check func() error, cleanup func(), t healthTimings, log logger) *brokerHealth {
	h := &brokerHealth{
		id: id, bootstrap: bootstrap, check: check, t: t, log: log,
		reason: "brokers not checked yet (" + bootstrap + ")",
		stop:   make(chan struct{}), done: make(chan struct{}),
	}
	go func() {
		defer close(h.done)
		if pending := h.loop(); pending != nil {
			<-pending
		}
		if cleanup != nil {
			cleanup()
		}
	}()
	return h
}

// state is whether the cluster answered the last check, and why not.
func (h *brokerHealth) state() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready, h.reason
}

// close stops the checks; it does not wait for one in flight.
func (h *brokerHealth) close() {
	if h == nil {
		return
	}
	h.closeOnce.Do(func() { close(h.stop) })
}

// loop checks until stopped, one check at a time. It returns the result
// channel of a check still in flight when it was stopped, if any.
func (h *brokerHealth) loop() <-chan error {
	for {
		result := make(chan error, 1)
		go func() { result <- h.check() }()
		timer := time.NewTimer(h.t.timeout)
		select {
		case err := <-result:
			timer.Stop()
			h.set(err)
		case <-timer.C:
			h.set(fmt.Errorf("no answer within %v", h.t.timeout))
			select {
			case err := <-result:
				h.set(err)
			case <-h.stop:
				return result
			}
		case <-h.stop:
			timer.Stop()
			return result
		}
		wait := h.t.interval
		if ready, _ := h.state(); !ready {
			wait = h.t.retry
		}
		timer = time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-h.stop:
			timer.Stop()
			return nil
		}
	}
}

// set records a check's outcome and logs changes. Errors that are
// configuration problems (credentials, TLS) leave the instance ready: the
// brokers answered, every request reports the problem itself, and another
// gateway with the same configuration would not do better. An unresolvable
// host is unreachable, though.
func (h *brokerHealth) set(err error) {
	// Not setupError: on a connection that worked, EOF is a broker gone,
	// not a handshake refused.
	ready := err == nil || (isConfigurationError(err) && !isDNSError(err))
	reason := ""
	if !ready {
		// One line: sarama joins the errors of each broker it tried.
		reason = fmt.Sprintf("brokers unreachable: %s: %s", h.bootstrap, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	h.mu.Lock()
	first, was := !h.checked, h.ready
	h.checked, h.ready, h.reason = true, ready, reason
	h.mu.Unlock()
	switch {
	case !ready && (first || was):
		h.log.Warn("kafka brokers unreachable", "instance", h.id, "bootstrap_servers", h.bootstrap, "error", err.Error())
	case ready && !first && !was:
		h.log.Info("kafka brokers reachable again", "instance", h.id, "bootstrap_servers", h.bootstrap)
	}
}

func isDNSError(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// healthSaramaConfig is the data path's client configuration with short
// timeouts, no retries, no background refresh and no topic creation.
func healthSaramaConfig(cfg *Config, id string) (*sarama.Config, error) {
	sc, err := newSaramaConfig(cfg, id)
	if err != nil {
		return nil, err
	}
	sc.Net.DialTimeout = healthNetTimeout
	sc.Net.ReadTimeout = healthNetTimeout
	sc.Net.WriteTimeout = healthNetTimeout
	sc.Metadata.Retry.Max = 0
	sc.Metadata.Timeout = healthNetTimeout
	sc.Metadata.RefreshFrequency = 0
	sc.Metadata.AllowAutoTopicCreation = false
	return sc, nil
}

// healthTopics are the instance's fixed topics, whose metadata the check
// asks for; none (a topic pattern only) asks for every topic's, as a
// pattern subscription does.
func healthTopics(cfg *Config) []string {
	var ts []string
	if cfg.Producer.Enabled {
		ts = append(ts, cfg.Producer.Topics...)
	}
	if cfg.Consumer.Enabled {
		ts = append(ts, cfg.Consumer.Topics...)
	}
	return ts
}

// clusterProbe is one sarama client kept for the checks of an instance: a
// check is one metadata request on the connection it keeps. A failed check
// drops the client, so the next one starts from the bootstrap servers.
type clusterProbe struct {
	addrs  []string
	sc     *sarama.Config
	topics []string

	client sarama.Client
}

// check asks the cluster for the topics' metadata. Missing topics are no
// failure: the cluster answered.
func (p *clusterProbe) check() error {
	if p.client == nil {
		c, err := sarama.NewClient(p.addrs, p.sc)
		if err != nil {
			return err
		}
		p.client = c
	}
	err := p.client.RefreshMetadata(p.topics...)
	if err == nil || onlyMissingTopics(err) {
		return nil
	}
	p.close()
	return err
}

func (p *clusterProbe) close() {
	if p.client != nil {
		_ = p.client.Close()
		p.client = nil
	}
}
