package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// baseConfig mirrors the client settings of plugins/endpoint-kafka
// (security.go), so that the baseline differs from the gateway only by the
// gateway itself.
func baseConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "sluice-bench"
	sc.Version = sarama.V3_6_0_0
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 15 * time.Second
	sc.Net.WriteTimeout = 15 * time.Second
	sc.Metadata.Retry.Max = 2
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	sc.Metadata.Full = false
	return sc
}

// producerConfig mirrors the endpoint's producer (producer.go) with no
// compression, as the bench APIs configure none. One difference:
// Producer.MaxMessageBytes stays at sarama's default (1 MiB). sarama caps
// each partition's record batch at that value, and a broker with Kafka's
// default message.max.bytes (about 1 MiB, kfake too) rejects larger batches
// with MESSAGE_TOO_LARGE, which a backlog of small records reaches.
func producerConfig() *sarama.Config {
	sc := baseConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = false
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Backoff = time.Second
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	return sc
}

// consumerConfig mirrors the endpoint's consumer group member (consumer.go)
// with auto_offset_reset = "earliest" and offsets committed as marked.
func consumerConfig() *sarama.Config {
	sc := baseConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Consumer.Return.Errors = true
	sc.Consumer.Group.Session.Timeout = 10 * time.Second
	sc.Consumer.Group.Heartbeat.Interval = time.Second
	sc.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	sc.Consumer.Group.Rebalance.Retry.Backoff = time.Second
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Retry.Backoff = time.Second
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	return sc
}

// createTopics creates the bench topics on an external broker.
func createTopics(ctx context.Context, bootstrap string, names []string) error {
	adm, err := sarama.NewClusterAdmin([]string{bootstrap}, baseConfig())
	if err != nil {
		return fmt.Errorf("kafka admin for %s: %w", bootstrap, err)
	}
	defer adm.Close()
	for _, name := range names {
		err := adm.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// startKfake runs an in-process kfake broker configured like the gateway's
// dev_kafka (one node, records persisted under dataDir).
func startKfake(dataDir string, topicNames []string) (string, func(), error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(0),
		kfake.DataDir(dataDir),
		kfake.SeedTopics(partitions, topicNames...),
		kfake.BrokerConfigs(map[string]string{"default.replication.factor": "1"}),
	)
	if err != nil {
		return "", nil, err
	}
	return c.ListenAddrs()[0], c.Close, nil
}

// produceAsync sends n copies of payload to topic with an AsyncProducer and
// returns the time from the first send to the last acknowledgement. With
// warmup, one untimed record goes first, so the producer's connection and
// metadata are in place before the clock starts.
func produceAsync(ctx context.Context, bootstrap, topic string, payload []byte, n int, warmup bool) (time.Duration, error) {
	p, err := sarama.NewAsyncProducer([]string{bootstrap}, producerConfig())
	if err != nil {
		return 0, fmt.Errorf("producer: %w", err)
	}
	defer p.AsyncClose()
	wait := func(want int) error {
		for got := 0; got < want; {
			select {
			case <-p.Successes():
				got++
			case perr := <-p.Errors():
				return fmt.Errorf("produce: %w", perr.Err)
			case <-ctx.Done():
				return fmt.Errorf("%d of %d records acknowledged: %w", got, want, ctx.Err())
			}
		}
		return nil
	}
	if warmup {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(payload)}
		if err := wait(1); err != nil {
			return 0, err
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			select {
			case p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(payload)}:
			case <-stop:
				return
			}
		}
	}()
	if err := wait(n); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// wsPublishSarama is the ws-publish baseline: the same records through an
// AsyncProducer, timed until the last acknowledgement.
func wsPublishSarama(ctx context.Context, e *env) (Measure, error) {
	n := e.opts.n
	before, err := e.highWatermark(e.topics.pub)
	if err != nil {
		return Measure{}, err
	}
	d, err := produceAsync(ctx, e.bootstrap, e.topics.pub, e.payload, n, true)
	if err != nil {
		return Measure{}, err
	}
	m := rateOf(n, d)
	after, err := e.highWatermark(e.topics.pub)
	if err != nil {
		return m, err
	}
	// One warm-up record plus n.
	if landed := after - before - 1; landed != int64(n) {
		return m, fmt.Errorf("%d records landed in %s, want %d", landed, e.topics.pub, n)
	}
	return m, nil
}

// httpPostSarama is the http-post baseline: as many goroutines as the
// sweep point has clients, each sending one message at a time through one
// shared SyncProducer, as the gateway shares one producer among its
// requests.
func httpPostSarama(ctx context.Context, e *env) (Measure, error) {
	p, err := sarama.NewSyncProducer([]string{e.bootstrap}, producerConfig())
	if err != nil {
		return Measure{}, fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	send := func() error {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: e.topics.pub, Value: sarama.ByteEncoder(e.payload)})
		return err
	}
	return closedLoop(ctx, tenthN(e.opts), e.clients, send, e.markTimed)
}

// closedLoop runs total calls of do on conc workers, each starting its next
// call when the previous one returned, after one untimed warm-up call per
// worker. It returns the rate and latency percentiles. timed, when not nil,
// is called with true just before the timed calls and with false just
// after them.
func closedLoop(ctx context.Context, total, conc int, do func() error, timed func(begin bool)) (Measure, error) {
	var wg sync.WaitGroup
	warm := make([]error, conc)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			warm[w] = do()
		}()
	}
	wg.Wait()
	if err := errors.Join(warm...); err != nil {
		return Measure{}, fmt.Errorf("warm-up: %w", err)
	}
	var (
		next     atomic.Int64
		firstErr atomic.Pointer[error]
		lats     = make([][]time.Duration, conc)
	)
	if timed != nil {
		timed(true)
	}
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, total/conc+1)
			for next.Add(1) <= int64(total) && ctx.Err() == nil && firstErr.Load() == nil {
				t0 := time.Now()
				if err := do(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					break
				}
				own = append(own, time.Since(t0))
			}
			lats[w] = own
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if timed != nil {
		timed(false)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	m := rateOf(len(all), elapsed)
	m.P50Ms, m.P99Ms = percentileMs(all, 50), percentileMs(all, 99)
	if p := firstErr.Load(); p != nil {
		return m, fmt.Errorf("after %d of %d: %w", len(all), total, *p)
	}
	if ctx.Err() != nil {
		return m, fmt.Errorf("%d of %d done: %w", len(all), total, ctx.Err())
	}
	return m, nil
}

// groupReader counts what one consumer group member receives.
type groupReader struct {
	want  int64
	got   atomic.Int64
	first atomic.Int64 // unix nanos of the first record
	last  atomic.Int64 // unix nanos of the want-th record
	done  chan struct{}
	once  sync.Once
}

func (h *groupReader) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupReader) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupReader) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			now := time.Now().UnixNano()
			h.first.CompareAndSwap(0, now)
			sess.MarkMessage(msg, "")
			if h.got.Add(1) == h.want {
				h.last.Store(now)
				h.once.Do(func() { close(h.done) })
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// consumeGroup reads n records of topic with a new consumer group, from the
// earliest offset. The span starts when the group member is created.
func consumeGroup(ctx context.Context, bootstrap, topic, group string, n int) (span, error) {
	sp := span{start: time.Now()}
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, group, consumerConfig())
	if err != nil {
		return sp, fmt.Errorf("consumer group: %w", err)
	}
	h := &groupReader{want: int64(n), done: make(chan struct{})}
	cctx, cancel := context.WithCancel(ctx)
	consumeErr := make(chan error, 1)
	go func() {
		var last error
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, h); err != nil {
				last = err
				select {
				case <-cctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		consumeErr <- last
	}()
	defer func() {
		cancel()
		<-consumeErr
		_ = cg.Close()
	}()
	select {
	case <-h.done:
		sp.first, sp.last = time.Unix(0, h.first.Load()), time.Unix(0, h.last.Load())
		return sp, nil
	case cerr := <-cg.Errors():
		return sp, fmt.Errorf("consumer: %w", cerr)
	case <-ctx.Done():
		return sp, fmt.Errorf("read %d of %d records: %w", h.got.Load(), n, ctx.Err())
	}
}

// consumeSarama is the sse and http-get baseline: one consumer group reads
// count records from the seeded topic. The figure is streaming throughput
// (first to last record) when steady, else counted from the group's creation.
func consumeSarama(count func(*options) int, steady bool) func(context.Context, *env) (Measure, error) {
	return func(ctx context.Context, e *env) (Measure, error) {
		n := count(e.opts)
		sp, err := consumeGroup(ctx, e.bootstrap, e.topics.sub, e.uniqueID("bench-group"), n)
		if err != nil {
			return Measure{}, err
		}
		return sp.measure(n, steady), nil
	}
}

// fanoutSarama is the sse-fanout baseline: one consumer group per client,
// all reading at once; the figure is the aggregate over the wall time.
func fanoutSarama(ctx context.Context, e *env) (Measure, error) {
	per, clients := tenthN(e.opts), e.opts.fanoutClients
	groups := make([]string, clients)
	for i := range groups {
		groups[i] = e.uniqueID("bench-fanout-group")
	}
	errs := make([]error, clients)
	spans := make([]span, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spans[i], errs[i] = consumeGroup(ctx, e.bootstrap, e.topics.sub, groups[i], per)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Measure{}, err
	}
	return fanoutMeasure(spans, per*clients), nil
}
