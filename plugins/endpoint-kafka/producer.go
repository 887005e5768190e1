package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// defaultProducerIdle is how long an unused shared producer lives
// (docs/differences.md #7): long enough that steady traffic never reconnects, short enough
// that per-request OAUTHBEARER tokens do not pile up producers.
const defaultProducerIdle = 5 * time.Minute

// producerKey identifies a distinct evaluated configuration: requests whose
// connection settings are equal share one producer (docs/behaviour.md 3).
type producerKey struct {
	bootstrap   string
	protocol    string
	mechanism   string
	jaas        string
	trust       StoreConfig
	key         StoreConfig
	compression string
}

func keyOf(cfg *Config) producerKey {
	return producerKey{
		bootstrap:   cfg.BootstrapServers,
		protocol:    cfg.Security.Protocol,
		mechanism:   cfg.Security.SASL.Mechanism,
		jaas:        cfg.Security.SASL.JAASConfig,
		trust:       cfg.Security.SSL.Truststore,
		key:         cfg.Security.SSL.Keystore,
		compression: cfg.Producer.CompressionType,
	}
}

// errDraining refuses publishes once Drain has started.
var errDraining = errors.New("kafka endpoint is draining")

// producerCache holds the shared producers. A producer is created once per
// key (concurrent first requests wait for the same creation), counted while
// a batch uses it, and closed when idle, failing, or draining.
type producerCache struct {
	idle time.Duration

	mu       sync.Mutex
	entries  map[producerKey]*producerEntry
	draining bool
	janitor  chan struct{} // closed to stop the idle janitor; nil before start
}

type producerEntry struct {
	ready chan struct{} // closed when creation finished
	p     *sharedProducer
	err   error
}

// sharedProducer is one sarama AsyncProducer and its acknowledgement
// dispatchers. Records carry their batch's tracker as Metadata, so
// correlating an ack costs no lookup.
type sharedProducer struct {
	key      producerKey
	client   sarama.Client
	ap       sarama.AsyncProducer
	inflight int // batches using it; guarded by producerCache.mu
	lastUsed time.Time
	retired  bool // removed from the cache; closed when inflight reaches 0
	closed   chan struct{}
}

// tracker counts the outstanding records of one batch.
type tracker struct {
	// start is when send began, for the produce latency metric.
	start     time.Time
	remaining atomic.Int64
	err       atomic.Pointer[error]
	done      chan struct{}
}

func (t *tracker) ack(err error) {
	if err != nil {
		t.err.CompareAndSwap(nil, &err)
	}
	if t.remaining.Add(-1) == 0 {
		close(t.done)
	}
}

func newProducerCache() *producerCache {
	return &producerCache{idle: defaultProducerIdle, entries: map[producerKey]*producerEntry{}}
}

// acquire returns the producer for cfg, creating it if needed, and counts
// the caller as a user until release.
func (c *producerCache) acquire(cfg *Config) (*sharedProducer, error) {
	key := keyOf(cfg)
	for {
		c.mu.Lock()
		if c.draining {
			c.mu.Unlock()
			return nil, errDraining
		}
		c.startJanitor()
		e, ok := c.entries[key]
		if !ok {
			e = &producerEntry{ready: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			e.p, e.err = newSharedProducer(cfg, key)
			c.mu.Lock()
			if e.err != nil && c.entries[key] == e {
				// Failures are not cached: the next request tries again.
				delete(c.entries, key)
			}
			close(e.ready)
		}
		c.mu.Unlock()
		<-e.ready
		if e.err != nil {
			return nil, e.err
		}
		c.mu.Lock()
		switch {
		case c.draining:
			c.mu.Unlock()
			return nil, errDraining
		case !e.p.retired:
			e.p.inflight++
			e.p.lastUsed = time.Now()
			c.mu.Unlock()
			return e.p, nil
		}
		// Retired between creation and now: take a fresh one.
		c.mu.Unlock()
	}
}

// release ends a use. failed retires the producer (the reference evicts a
// failing shared producer), so the next request connects anew.
func (c *producerCache) release(p *sharedProducer, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.inflight--
	p.lastUsed = time.Now()
	if failed {
		c.retireLocked(p)
	}
	if p.retired && p.inflight == 0 {
		go p.close()
	}
}

func (c *producerCache) retireLocked(p *sharedProducer) {
	if p.retired {
		return
	}
	p.retired = true
	if e, ok := c.entries[p.key]; ok && e.p == p {
		delete(c.entries, p.key)
	}
}

// startJanitor starts the idle eviction loop once; c.mu is held.
func (c *producerCache) startJanitor() {
	if c.janitor != nil {
		return
	}
	stop := make(chan struct{})
	c.janitor = stop
	period := c.idle / 4
	if period < time.Second {
		period = time.Second
	}
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				c.evictIdle(now)
			}
		}
	}()
}

// evictIdle closes producers unused since now minus the idle bound.
func (c *producerCache) evictIdle(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.entries {
		select {
		case <-e.ready:
		default:
			continue
		}
		if p := e.p; p != nil && p.inflight == 0 && now.Sub(p.lastUsed) >= c.idle {
			c.retireLocked(p)
			go p.close()
			n++
		}
	}
	return n
}

// size is the number of live producers, for tests and metrics.
func (c *producerCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// drain refuses new publishes, waits for in-flight batches, then flushes and
// closes every producer before ctx's deadline.
func (c *producerCache) drain(ctx context.Context) error {
	c.mu.Lock()
	c.draining = true
	if c.janitor != nil {
		close(c.janitor)
		c.janitor = nil
	}
	var all []*producerEntry
	for _, e := range c.entries {
		all = append(all, e)
	}
	c.entries = map[producerKey]*producerEntry{}
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, e := range all {
		wg.Go(func() {
			select {
			case <-e.ready:
			case <-ctx.Done():
				return
			}
			p := e.p
			if p == nil {
				return
			}
			for {
				c.mu.Lock()
				busy := p.inflight > 0
				if !busy {
					p.retired = true
				}
				c.mu.Unlock()
				if !busy {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			p.close()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newSharedProducer connects a producer configured by
// producerSaramaConfig.
func newSharedProducer(cfg *Config, key producerKey) (*sharedProducer, error) {
	addrs, err := bootstrapAddrs(cfg.BootstrapServers)
	if err != nil {
		return nil, asConfigError(err)
	}
	sc, err := producerSaramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(addrs, sc)
	if err != nil {
		return nil, setupError(err)
	}
	// Connect and authenticate now, so an unreachable cluster or a bad
	// password fails this request and is not cached.
	if err := client.RefreshMetadata(cfg.Producer.Topics...); err != nil && !onlyMissingTopics(err) {
		_ = client.Close()
		return nil, setupError(err)
	}
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	p := &sharedProducer{key: key, client: client, ap: ap, lastUsed: time.Now(), closed: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range ap.Successes() {
			t := m.Metadata.(*tracker)
			metrics.produced(m.Topic, t.start)
			t.ack(nil)
		}
	})
	wg.Go(func() {
		for e := range ap.Errors() {
			err := e.Err
			if err == nil {
				err = errors.New("kafka: produce failed")
			}
			e.Msg.Metadata.(*tracker).ack(err)
		}
	})
	go func() { wg.Wait(); close(p.closed) }()
	return p, nil
}

// Producer batching. Records of concurrent requests (POSTs, WebSocket
// publishers) share produce requests without any timer: sarama (v1.61,
// async_producer.go) keeps one request in flight per partition, and a
// broker producer with every flush trigger at zero sends what it has as
// soon as the partition is free. A lone record therefore leaves at once,
// while records arriving during a round trip accumulate and leave together
// in the next request: the busier the partition, the larger the batch.
const (
	// producerFlushFrequency is zero: a non-zero frequency holds a lone
	// record for up to that long (Java's linger.ms), which is the latency
	// the gateway must not add.
	producerFlushFrequency = 0
	// producerFlushBytes and producerFlushMessages are zero: with no
	// frequency, a threshold would strand a lone record until others
	// arrive; and sarama only applies "send at once" when all three are
	// zero.
	producerFlushBytes    = 0
	producerFlushMessages = 0
	// producerFlushMaxMessages is zero: a batch is bounded by bytes
	// (MaxMessageBytes per partition, MaxRequestSize per request), not by
	// a count, so a backlog drains in as few requests as the bytes allow.
	producerFlushMaxMessages = 0
	// producerMaxOpenRequests is Java's max.in.flight.requests.per.connection
	// default. Sarama's per-partition muting keeps each partition's order,
	// so this only lets requests for different partitions of one broker
	// overlap instead of queueing behind each other's acks=all round trip.
	producerMaxOpenRequests = 5
	// producerChannelBuffer is the capacity of sarama's internal channels
	// (sarama's default). Records waiting for a busy partition are held in
	// the accumulating batch, not in these channels, so a larger value
	// would only let more records queue ahead of the batch (memory, no
	// throughput); Publish blocks when it is full, which is the
	// backpressure the publish stream wants.
	producerChannelBuffer = 256
)

// producerSaramaConfig is the configuration of a shared producer, with the
// reference's settings (docs/behaviour.md 3): acks from all replicas, 1 s retry
// backoff, the Java client's murmur2 partitioner, compression per
// configuration; and the batching above.
func producerSaramaConfig(cfg *Config) (*sarama.Config, error) {
	sc, err := newSaramaConfig(cfg, clientID("gio-apim-producer-"))
	if err != nil {
		return nil, err
	}
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = false
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Backoff = time.Second
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.Compression = compressionCodec(cfg.Producer.CompressionType)
	// Java's max.request.size: sarama also sizes its batches by this bound,
	// and a larger batch is refused by brokers at their default
	// message.max.bytes (about 1 MB) as "Message was too large".
	sc.Producer.MaxMessageBytes = 1 << 20
	sc.Producer.Flush.Frequency = producerFlushFrequency
	sc.Producer.Flush.Bytes = producerFlushBytes
	sc.Producer.Flush.Messages = producerFlushMessages
	sc.Producer.Flush.MaxMessages = producerFlushMaxMessages
	sc.Net.MaxOpenRequests = producerMaxOpenRequests
	sc.ChannelBufferSize = producerChannelBuffer
	if err := sc.Validate(); err != nil {
		return nil, asConfigError(err)
	}
	return sc, nil
}

func compressionCodec(t string) sarama.CompressionCodec {
	switch t {
	case "gzip":
		return sarama.CompressionGZIP
	case "snappy":
		return sarama.CompressionSnappy
	case "lz4":
		return sarama.CompressionLZ4
	case "zstd":
		return sarama.CompressionZSTD
	default:
		return sarama.CompressionNone
	}
}

// close flushes buffered records, then closes the producer and its client.
func (p *sharedProducer) close() {
	_ = p.ap.Close()
	<-p.closed
	_ = p.client.Close()
}

// send produces records and waits until every one is acknowledged by the
// brokers, or ctx ends. It returns the first produce error.
func (p *sharedProducer) send(ctx context.Context, records []sarama.ProducerMessage) error {
	if len(records) == 0 {
		return nil
	}
	t := &tracker{start: time.Now(), done: make(chan struct{})}
	t.remaining.Store(int64(len(records)))
	in := p.ap.Input()
	for i := range records {
		records[i].Metadata = t
		select {
		case in <- &records[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e := t.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Publish sends one batch: each message to each of its resolved topics,
// with its key and headers, and returns once the brokers acknowledged every
// record (docs/behaviour.md 3).
func (k *Kafka) Publish(ctx context.Context, req *endpoint.PublishRequest) error {
	inst, err := k.instance(req.InstanceID)
	if err != nil {
		return err
	}
	cfg, err := inst.evaluate(req.Context)
	if err != nil {
		k.log.Warn("invalid dynamic configuration", "instance", req.InstanceID, "error", err)
		return invalidConfigurationFailure()
	}
	if !cfg.Producer.Enabled || len(req.Messages) == 0 {
		return nil
	}
	records, err := buildRecords(req.Context, cfg, inst.apiEnv, req.Messages)
	if err != nil {
		k.log.Warn("cannot publish", "instance", req.InstanceID, "error", err)
		return classify(err)
	}
	p, err := k.producers.acquire(cfg)
	if err != nil {
		k.log.Warn("cannot create producer", "instance", req.InstanceID, "error", err)
		return classify(err)
	}
	err = p.send(ctx, records)
	failed := err != nil && ctx.Err() == nil && (isConnectionError(err) || isConfigurationError(err))
	k.producers.release(p, failed)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		k.log.Warn("publish failed", "instance", req.InstanceID, "error", err)
		return classify(err)
	}
	return nil
}

// buildRecords turns a batch into records. Per-message lookups happen only
// for messages that carry attributes; everything else is computed once per
// batch.
func buildRecords(c *gateway.Context, cfg *Config, apiEnv map[string]any, msgs []*gateway.Message) ([]sarama.ProducerMessage, error) {
	var attrs map[string]any
	env := el.Env{API: apiEnv}
	if c != nil {
		attrs = c.Attributes
		env.Request, env.Attributes = c.Request, c.Attributes
	}
	ctxTopics := listAttr(attrs, producerContextTopicAttrs)
	if len(ctxTopics) > 0 {
		var err error
		if ctxTopics, err = evalList(ctxTopics, env); err != nil {
			return nil, asConfigError(err)
		}
	}
	if len(ctxTopics) == 0 {
		ctxTopics = cfg.Producer.Topics
	}
	ctxKey, ctxHasKey := stringAttr(attrs, recordKeyAttrs)

	n := 0
	topicsOf := make([][]string, len(msgs))
	for i, m := range msgs {
		ts, err := producerTopics(m, ctxTopics, env)
		if err != nil {
			return nil, asConfigError(err)
		}
		if len(ts) == 0 {
			return nil, asConfigError(errNoTopics)
		}
		topicsOf[i] = ts
		n += len(ts)
	}
	records := make([]sarama.ProducerMessage, 0, n)
	for i, m := range msgs {
		var key sarama.Encoder
		if k, ok := recordKey(m, ctxKey, ctxHasKey); ok {
			key = sarama.StringEncoder(k)
		}
		content := m.Content
		if content == nil {
			// An empty body is an empty value, not a tombstone.
			content = []byte{}
		}
		value := sarama.ByteEncoder(content)
		headers := kafkaHeaders(m.Headers)
		for _, t := range topicsOf[i] {
			records = append(records, sarama.ProducerMessage{Topic: t, Key: key, Value: value, Headers: headers})
		}
	}
	return records, nil
}

// kafkaHeaders converts message headers to record headers, one per value.
func kafkaHeaders(h gateway.Headers) []sarama.RecordHeader {
	if len(h) == 0 {
		return nil
	}
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	out := make([]sarama.RecordHeader, 0, n)
	for name, vs := range h {
		kb := []byte(name)
		for _, v := range vs {
			out = append(out, sarama.RecordHeader{Key: kb, Value: []byte(v)})
		}
	}
	return out
}
