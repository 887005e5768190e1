package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// version is the plugin's own version, reported in its metadata; the build
// sets it with -ldflags "-X main.version=...".
var version = "dev"

// Interface guards: the plugin is an endpoint and drains.
var (
	_ endpoint.Endpoint = (*Kafka)(nil)
	_ lifecycle.Drainer = (*Kafka)(nil)
)

// logger is what the plugin logs through; hclog.Logger and *slog.Logger
// both satisfy it.
type logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// Kafka is the Kafka endpoint: publish through shared sarama producers,
// subscribe through one consumer group member per subscription, kept
// between the bounded polls of one group (HTTP GET), except QoS none
// streams, which share one groupless consumer per instance, configuration,
// topics and start (hub.go). The zero value is not
// usable; see NewKafka.
type Kafka struct {
	log logger

	*instances.Registry[*instance]

	producers *producerCache
	sessions  *sessionCache
	hubs      *hubSet
	consumerCounts

	subsMu   sync.Mutex
	subs     map[*poll]struct{}
	subsWG   sync.WaitGroup
	draining bool

	// metadataRefresh is how often subscriptions with a topic pattern or
	// missing topics look for new topics.
	metadataRefresh time.Duration
	// commitInterval is how often acknowledged offsets are committed.
	commitInterval time.Duration
	// connectionWatchdog is how long a subscription tolerates an
	// unreachable cluster.
	connectionWatchdog time.Duration
	// hubLinger is how long a shared QoS none consumer outlives its last
	// stream; hubQueue bounds, in records, how far one of its streams may
	// fall behind (0 turns sharing off).
	hubLinger time.Duration
	hubQueue  int
	// health is how often and how long each instance checks that its
	// cluster is reachable (health.go).
	health healthTimings
}

// NewKafka returns a plugin that logs through log.
func NewKafka(log logger) *Kafka {
	k := &Kafka{
		log:       log,
		producers: newProducerCache(),
		sessions:  newSessionCache(),
		hubs:      newHubSet(),
		subs:      map[*poll]struct{}{},

		metadataRefresh: defaultMetadataRefresh,
		commitInterval:  time.Second,

		connectionWatchdog: defaultConnectionWatchdog,
		hubLinger:          defaultHubLinger,
		hubQueue:           defaultHubQueue,

		health: healthTimings{interval: defaultHealthInterval, retry: defaultHealthRetry, timeout: defaultHealthTimeout},
	}
	k.Registry = instances.New(instances.Options[*instance]{
		Types:  []string{"kafka"},
		Decode: decodeInstance,
		Start: func(b instances.Block, v *instance) (*instance, error) {
			inst, err := newInstance(b.InstanceID, b.APIID, v.cfg)
			if err != nil {
				return nil, err
			}
			inst.health = k.startBrokerHealth(inst)
			return inst, nil
		},
		// Running subscriptions of a replaced instance keep the
		// configuration they started with, but no poll may reuse a
		// consumer of the old one.
		Replaced: func(old *instance) {
			old.health.close()
			old.retired.Store(true)
			k.sessions.closeInstance(old)
		},
		// A removed instance ends its subscriptions and kept consumers
		// (they commit what was delivered and leave their groups).
		Removed: func(old *instance) {
			old.health.close()
			old.cancel()
			k.sessions.closeInstance(old)
			k.hubs.closeInstance(old)
		},
	})
	return k
}

// instance is one configured API instance.
type instance struct {
	id     string
	apiID  string
	apiEnv map[string]any
	// cfg is the configuration with defaults applied; never modified.
	cfg *Config
	// tmpl holds cfg's compiled EL.
	tmpl templates
	// static is cfg evaluated once, when it holds no EL; requests without
	// override attributes use it as is.
	static *Config
	// ctx ends when the instance is unconfigured, ending its subscriptions.
	ctx    context.Context
	cancel context.CancelFunc
	// retired is set when a reload replaced the instance: its kept
	// consumers are closed instead of serving another poll.
	retired atomic.Bool
	// health checks the cluster in the background; nil when the
	// connection settings are known per request only (EL).
	health *brokerHealth
}

// Metadata describes the plugin: one endpoint type, "kafka".
func (k *Kafka) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindEndpoint,
		Name:    "endpoint-kafka",
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:         "kafka",
			Description:  "Publishes to and subscribes from Apache Kafka topics.",
			Schema:       typeSchema(),
			QoS:          []string{endpoint.QoSNone, endpoint.QoSAuto, endpoint.QoSAtMostOnce, endpoint.QoSAtLeastOnce},
			Modes:        []string{"publish", "subscribe"},
			Capabilities: []string{"resume", "limit", lifecycle.CapabilityBodyOnlyInEL},
		}},
	}
}

// decodeInstance checks one kafka block without side effects; the instance
// it returns holds only the configuration until Start compiles it.
func decodeInstance(b instances.Block) (*instance, lifecycle.Diagnostics) {
	var diags lifecycle.Diagnostics
	cfg, err := decodeConfig(b.ConfigJSON)
	if err != nil {
		diags.Errorf(nil, "configuration is not valid JSON for type kafka: %v", err)
		return nil, diags
	}
	diags = cfg.validate()
	if diags.HasErrors() {
		return nil, diags
	}
	return &instance{cfg: cfg}, diags
}

func newInstance(id, apiID string, cfg *Config) (*instance, error) {
	tm, dynamic, err := compileTemplates(cfg)
	if err != nil {
		return nil, err
	}
	inst := &instance{id: id, apiID: apiID, cfg: cfg, tmpl: tm, apiEnv: map[string]any{"id": apiID, "name": apiID}}
	if !dynamic {
		static := cfg.clone()
		if err := static.checkEvaluated(); err != nil {
			return nil, err
		}
		inst.static = static
	}
	inst.ctx, inst.cancel = context.WithCancel(context.Background())
	return inst, nil
}

// Drain ends every subscription and kept consumer (committing delivered
// offsets and leaving groups), then flushes and closes the shared
// producers, before ctx's deadline.
func (k *Kafka) Drain(ctx context.Context) error {
	k.Range(func(_ string, inst *instance) bool {
		inst.health.close()
		return true
	})
	k.sessions.stop()
	k.hubs.stop()
	k.subsMu.Lock()
	k.draining = true
	for s := range k.subs {
		s.cancel()
	}
	k.subsMu.Unlock()
	done := make(chan struct{})
	go func() { k.subsWG.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("subscriptions still closing: %w", ctx.Err()))
	}
	if err := k.sessions.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("kept consumers still closing: %w", err))
	}
	if err := k.hubs.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shared consumers still closing: %w", err))
	}
	if err := k.producers.drain(ctx); err != nil {
		errs = append(errs, fmt.Errorf("producers still flushing: %w", err))
	}
	return errors.Join(errs...)
}

// instance returns a configured instance, or the failure for an unknown id.
func (k *Kafka) instance(id string) (*instance, error) {
	inst, ok := k.Get(id)
	if !ok {
		return nil, &gateway.Failure{Status: 500, Key: keyEndpointUnknownError, Message: fmt.Sprintf("kafka endpoint instance %q is not configured", id), Retriable: true}
	}
	return inst, nil
}
