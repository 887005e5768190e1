package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Shared consumers for QoS none. A QoS none stream never commits and has no
// ids: what it reads depends only on the instance, the evaluated
// configuration, the topics and where it starts. Giving each stream its own
// sarama client and consumer group cost about 330 KiB per stream (goroutines,
// connections, group heartbeats, sarama's per-client metrics), so 10,000 SSE
// readers of one topic would hold 3 GiB for the same records. Streams that
// read the same records from the same place instead attach to one hub: one
// client, one plain (groupless) consumer, whose records are converted once
// and handed to every attached stream, as Zilla's cache does.
const (
	// defaultHubLinger is how long a hub whose last stream left stays open:
	// an SSE client that reconnects (browsers retry after about 3 s) finds
	// its hub still positioned instead of paying a new client and, for
	// auto_offset_reset = earliest, a full re-read.
	defaultHubLinger = 5 * time.Second
	// defaultHubQueue bounds, in records, what one stream may fall behind
	// the hub. The records themselves are shared, so a queued record costs
	// a stream a pointer; the bound is what keeps one stalled client from
	// pinning the hub's records in memory without limit. A stream past it is
	// ended with FAILURE_CONSUMER_TOO_SLOW (see hubSub).
	defaultHubQueue = 4096
	// hubReplayRecords and hubReplayBytes bound what an earliest hub keeps
	// of what it read since it started, to replay to streams that attach
	// later: those start from the beginning too, so they must be given what
	// the hub already read. Past either bound the hub stops keeping records
	// and takes no new streams; the next one opens a new hub (a topic with
	// a large backlog thus gets a consumer per burst of readers, never an
	// unbounded cache). The record bound stays under defaultHubQueue, so a
	// replay always fits a new stream's queue.
	hubReplayRecords = 1024
	hubReplayBytes   = 1 << 20
)

// keyConsumerTooSlow is the failure of a QoS none stream that fell more
// than its queue behind its shared consumer.
const keyConsumerTooSlow = "FAILURE_CONSUMER_TOO_SLOW"

// slowFailure is what a stream dropped by its hub is told, as its last
// message.
func slowFailure(limit int) *gateway.Failure {
	return &gateway.Failure{
		Status: 503, Key: keyConsumerTooSlow, Retriable: true,
		Message: fmt.Sprintf("Consumer too slow: more than %d messages behind the shared consumer; records past that were not delivered (QoS none), reconnect to continue", limit),
	}
}

// hubKey says which streams may share a hub: those of one instance (a
// reload makes a new one), one evaluated configuration, one topic list or
// pattern, one starting position. The consumer group is not in it: a QoS
// none stream that shares reads every partition, whatever its group (the
// README says so).
type hubKey struct {
	inst   *instance
	topics string
	config string
	start  int64
}

// hubSet holds the hubs of a plugin.
type hubSet struct {
	mu sync.Mutex
	// open is, per key, the hub new streams join; a sealed or closed hub is
	// replaced in it while it keeps serving the streams it has.
	open     map[hubKey]*hub
	all      map[*hub]struct{}
	draining bool
	closing  sync.WaitGroup
}

func newHubSet() *hubSet {
	return &hubSet{open: map[hubKey]*hub{}, all: map[*hub]struct{}{}}
}

// size is the number of hubs not yet shut down.
func (hs *hubSet) size() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.all)
}

// hub is one shared consumer and the streams attached to it.
type hub struct {
	k       *Kafka
	key     hubKey
	inst    *instance
	cfg     *Config
	topics  []string
	pattern *regexp.Regexp
	// start is sarama.OffsetNewest or sarama.OffsetOldest.
	start int64

	ctx    context.Context
	cancel context.CancelFunc
	opened chan struct{} // closed when open has ended

	client   sarama.Client
	consumer sarama.Consumer
	workers  sync.WaitGroup // partition pumps, error watchers, refresher
	shut     sync.Once

	mu sync.Mutex
	// refs counts streams attached or about to attach; the hub lingers and
	// closes when it falls to zero.
	refs int
	subs map[*hubSub]struct{}
	// parts are the partitions consumed; nil once shut down.
	parts map[topicPartition]sarama.PartitionConsumer
	// replay is what an earliest hub read so far, while sealed is unset.
	replay      []hubBatch
	replayN     int
	replayBytes int
	sealed      bool
	failure     *gateway.Failure
	closed      bool
	linger      *time.Timer
}

// hubBatch is records of one partition, in order, converted once and read by
// every stream; never modified after publish.
type hubBatch []*gateway.Message

// hubSub is one stream attached to a hub. The hub appends batches to its
// queue without ever blocking; the stream's sender takes the whole queue
// at each wake-up. A stream whose queue would pass the bound is detached and
// ended with FAILURE_CONSUMER_TOO_SLOW rather than let the hub wait (which
// would stall every other stream) or skip records silently (a client could
// not tell a gap from a quiet topic). Guarded by hub.mu.
type hubSub struct {
	p       *poll
	queue   []hubBatch
	queued  int
	notify  chan struct{} // capacity 1: a wake-up is pending
	failure *gateway.Failure
}

// shareable reports whether a subscription may use a hub: streaming QoS
// none starting from latest or earliest (auto_offset_reset = none needs the
// group's commits, so it is the group's own). Bounded polls are excluded:
// QoS none is not offered on HTTP GET, and a page would leave the hub's
// records half-read.
func (k *Kafka) shareable(qos qosPolicy, req *endpoint.SubscribeRequest, cfg *Config) bool {
	return k.hubQueue > 0 && qos.name == endpoint.QoSNone && req.Limit == 0 && cfg.Consumer.AutoOffsetReset != "none"
}

func newHubKey(inst *instance, cfg *Config, topics []string, pattern *regexp.Regexp) hubKey {
	// The session key already captures instance, topics and evaluated
	// configuration; a hub adds the start.
	sk := newSessionKey(inst, cfg, qosPolicy{}, "", topics, pattern)
	start := sarama.OffsetNewest
	if cfg.Consumer.AutoOffsetReset == "earliest" {
		start = sarama.OffsetOldest
	}
	return hubKey{inst: inst, topics: sk.topics, config: sk.config, start: start}
}

// serveShared serves p from a hub. It returns false, having delivered
// nothing, when the stream must have a consumer of its own: its group has
// committed offsets on these topics (QoS none then starts from them), or
// the check could not be made.
func (k *Kafka) serveShared(p *poll, inst *instance, cfg *Config, group string, topics []string, pattern *regexp.Regexp) bool {
	key := newHubKey(inst, cfg, topics, pattern)
	for {
		h := k.acquireHub(key, inst, cfg, topics, pattern)
		if h == nil {
			return true // draining: p is being cancelled
		}
		select {
		case <-h.opened:
		case <-p.ctx.Done():
			h.release()
			return true
		}
		h.mu.Lock()
		healthy := h.failure == nil
		h.mu.Unlock()
		if healthy {
			committed, err := h.groupCommitted(group)
			if err != nil || committed {
				if err != nil {
					k.log.Debug("could not read the group's commits, using a consumer of its own", "group", group, "error", err)
				}
				h.release()
				return false
			}
		}
		s, f, retry := h.attach(p)
		if retry {
			// Sealed while we checked: the next hub of the key replays.
			h.release()
			continue
		}
		if s != nil {
			if p.out.Ready("") == nil {
				h.sendLoop(s)
			}
			h.detach(s)
			f = s.failure
		}
		h.release()
		if f != nil && p.parent.Err() == nil {
			// The client side is still there to be told (REFERENCE 2.9).
			if s == nil {
				_ = p.out.Ready("")
			}
			_ = p.out.Send([]*gateway.Message{errorMessage(f)})
		}
		return true
	}
}

// acquireHub returns the hub streams of key join, opening one if there is
// none that takes new streams, with a reference held; nil while draining.
func (k *Kafka) acquireHub(key hubKey, inst *instance, cfg *Config, topics []string, pattern *regexp.Regexp) *hub {
	hs := k.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.draining {
		return nil
	}
	if h := hs.open[key]; h != nil {
		h.mu.Lock()
		ok := !h.closed && h.failure == nil && !(h.start == sarama.OffsetOldest && h.sealed)
		if ok {
			h.refs++
			if h.linger != nil {
				h.linger.Stop()
				h.linger = nil
			}
		}
		h.mu.Unlock()
		if ok {
			return h
		}
	}
	h := &hub{
		k: k, key: key, inst: inst, cfg: cfg, topics: topics, pattern: pattern, start: key.start,
		opened: make(chan struct{}), refs: 1,
		subs: map[*hubSub]struct{}{}, parts: map[topicPartition]sarama.PartitionConsumer{},
	}
	h.ctx, h.cancel = context.WithCancel(inst.ctx)
	hs.open[key] = h
	hs.all[h] = struct{}{}
	hs.closing.Add(1)
	k.consumersOpened.Add(1)
	go h.open()
	return h
}

// open connects, checks the topics and starts a partition consumer on
// every partition at the hub's start. Streams wait for it, so what they are
// told Ready after is read.
func (h *hub) open() {
	defer close(h.opened)
	err := h.connect()
	if err == nil {
		var present, missing []string
		present, missing, err = resolveTopics(h.client, h.topics, h.pattern)
		err = setupError(err)
		if err == nil && len(missing) > 0 && h.cfg.Consumer.CheckTopicExistence {
			err = asConfigError(fmt.Errorf("%w: %s", errMissingTopics, strings.Join(missing, ", ")))
		}
		if err == nil {
			err = h.addPartitions(present, h.start)
		}
	}
	if err != nil {
		h.fail(err)
		return
	}
	// Every hub refreshes metadata: a pattern gains topics, missing topics
	// appear, topics gain partitions; and an unreachable cluster is noticed.
	h.workers.Go(h.refresh)
}

// connect creates the client and consumer. The buffers are sarama's
// defaults: there is one hub per key, not one per stream.
func (h *hub) connect() error {
	addrs, err := bootstrapAddrs(h.cfg.BootstrapServers)
	if err != nil {
		return asConfigError(err)
	}
	sc, err := newSaramaConfig(h.cfg, clientID("gio-apim-consumer-"))
	if err != nil {
		return err
	}
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Consumer.Return.Errors = true
	sc.Consumer.Retry.Backoff = time.Second
	client, err := sarama.NewClient(addrs, sc)
	if err != nil {
		return setupError(err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		_ = client.Close()
		return err
	}
	h.client, h.consumer = client, consumer
	return nil
}

// addPartitions starts consuming the partitions of topics not consumed yet,
// at offset (a sarama.OffsetNewest/OffsetOldest).
func (h *hub) addPartitions(topics []string, offset int64) error {
	for _, t := range topics {
		ps, err := h.client.Partitions(t)
		if err != nil {
			return err
		}
		for _, p := range ps {
			tp := topicPartition{t, p}
			h.mu.Lock()
			_, have := h.parts[tp]
			stopped := h.parts == nil
			h.mu.Unlock()
			if have || stopped {
				continue
			}
			pc, err := h.consumer.ConsumePartition(t, p, offset)
			if err != nil {
				return err
			}
			h.mu.Lock()
			if h.parts == nil {
				h.mu.Unlock()
				_ = pc.Close()
				return nil
			}
			h.parts[tp] = pc
			h.mu.Unlock()
			h.workers.Go(func() { h.pump(pc) })
			h.workers.Go(func() { h.watchErrors(pc) })
		}
	}
	return nil
}

// refresh looks for new topics and partitions; partitions found after the
// hub started are read from their first record, which was written after
// the hub's streams attached. A cluster that stays unreachable for the
// connection watchdog fails the hub.
func (h *hub) refresh() {
	t := time.NewTicker(h.k.metadataRefresh)
	defer t.Stop()
	var failingSince time.Time
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		present, _, err := resolveTopics(h.client, h.topics, h.pattern)
		if err == nil {
			err = h.addPartitions(present, sarama.OffsetOldest)
		}
		if err == nil || h.ctx.Err() != nil {
			failingSince = time.Time{}
			continue
		}
		if isConfigurationError(err) {
			h.fail(err)
			return
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		} else if time.Since(failingSince) >= h.k.connectionWatchdog {
			h.fail(fmt.Errorf("%w: %v", errConnectionClosed, err))
			return
		}
		h.k.log.Debug("shared consumer refresh failed", "instance", h.inst.id, "error", err)
	}
}

// watchErrors fails the hub on errors Kafka will not recover from
// (authentication, TLS, configuration); sarama retries the others.
func (h *hub) watchErrors(pc sarama.PartitionConsumer) {
	for err := range pc.Errors() {
		if isConfigurationError(err) {
			h.fail(err)
			continue
		}
		h.k.log.Debug("shared consumer error", "instance", h.inst.id, "error", err)
	}
}

// pump converts one partition's records and publishes them in batches of
// what is immediately available; one pump per partition keeps its order.
func (h *hub) pump(pc sarama.PartitionConsumer) {
	in := pc.Messages()
	strip, encode := h.cfg.Consumer.RemoveConfluentHeader, h.cfg.Consumer.encodeIDs()
	for first := range in {
		b := make(hubBatch, 0, 16)
		b = append(b, recordMessage(first, strip, false, encode))
	fill:
		for len(b) < maxBatch {
			select {
			case m, ok := <-in:
				if !ok {
					break fill
				}
				b = append(b, recordMessage(m, strip, false, encode))
			default:
				break fill
			}
		}
		h.publish(b)
	}
}

// publish hands a batch to every attached stream without waiting for any.
func (h *hub) publish(b hubBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.start == sarama.OffsetOldest && !h.sealed {
		size := 0
		for _, m := range b {
			size += len(m.Content)
		}
		if h.replayN+len(b) > hubReplayRecords || h.replayBytes+size > hubReplayBytes {
			h.sealed, h.replay, h.replayN, h.replayBytes = true, nil, 0, 0
		} else {
			h.replay = append(h.replay, b)
			h.replayN += len(b)
			h.replayBytes += size
		}
	}
	for s := range h.subs {
		// A batch larger than the bound still goes to a stream that has
		// taken everything before it: only falling behind is punished.
		if s.queued > 0 && s.queued+len(b) > h.k.hubQueue {
			h.dropLocked(s, slowFailure(h.k.hubQueue))
			continue
		}
		s.queue = append(s.queue, b)
		s.queued += len(b)
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// dropLocked detaches s with failure f and ends its poll; what it had
// queued is released at once.
func (h *hub) dropLocked(s *hubSub, f *gateway.Failure) {
	delete(h.subs, s)
	s.queue, s.queued = nil, 0
	if s.failure == nil {
		s.failure = f
	}
	s.p.cancel()
}

// attach adds p's stream. An earliest hub first queues what it has read
// so far; retry says the hub stopped taking streams meanwhile. A nil stream
// comes with the hub's failure, or with none when the hub was closed.
func (h *hub) attach(p *poll) (s *hubSub, f *gateway.Failure, retry bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.failure != nil:
		return nil, h.failure, false
	case h.closed:
		return nil, nil, false
	case h.start == sarama.OffsetOldest && h.sealed:
		return nil, nil, true
	}
	s = &hubSub{p: p, notify: make(chan struct{}, 1)}
	if len(h.replay) > 0 {
		s.queue, s.queued = slices.Clone(h.replay), h.replayN
		s.notify <- struct{}{}
	}
	h.subs[s] = struct{}{}
	return s, nil, false
}

// detach removes s (if the hub has not dropped it already).
func (h *hub) detach(s *hubSub) {
	h.mu.Lock()
	delete(h.subs, s)
	s.queue, s.queued = nil, 0
	h.mu.Unlock()
}

// release drops a reference; the last one starts the linger.
func (h *hub) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refs--
	if h.refs > 0 || h.closed {
		return
	}
	if h.k.hubLinger <= 0 {
		go h.closeIdle()
		return
	}
	h.linger = time.AfterFunc(h.k.hubLinger, h.closeIdle)
}

// closeIdle shuts the hub down unless a stream came back.
func (h *hub) closeIdle() {
	h.mu.Lock()
	if h.refs > 0 || h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	h.shutdown()
}

// fail ends every stream with err's failure and closes the hub; the next
// stream of the key opens a new one.
func (h *hub) fail(err error) {
	f := classify(err)
	if errors.Is(err, errMissingTopics) {
		// DESIGN 10.3: the message names the missing topics.
		f.Message = msgEndpointConfigurationInvalid + ": " + err.Error()
	}
	h.mu.Lock()
	if h.failure == nil {
		h.failure = f
		h.k.log.Warn("shared consumer failed", "instance", h.inst.id, "key", f.Key, "error", err)
	}
	for s := range h.subs {
		h.dropLocked(s, f)
	}
	h.mu.Unlock()
	// Not inline: shutdown waits for the workers, and open, one of which
	// may be the caller.
	go h.forceClose()
}

// forceClose closes the hub now, ending its streams (drain, unconfigure,
// failure).
func (h *hub) forceClose() {
	h.mu.Lock()
	h.closed = true
	if h.linger != nil {
		h.linger.Stop()
	}
	for s := range h.subs {
		s.p.cancel()
	}
	h.mu.Unlock()
	h.shutdown()
}

// shutdown stops consuming and closes the connections, once.
func (h *hub) shutdown() {
	h.shut.Do(func() {
		h.cancel()
		<-h.opened
		h.mu.Lock()
		parts := h.parts
		h.parts = nil
		h.mu.Unlock()
		for _, pc := range parts {
			pc.AsyncClose()
		}
		if h.consumer != nil {
			_ = h.consumer.Close()
		}
		h.workers.Wait()
		if h.client != nil {
			_ = h.client.Close()
		}
		hs := h.k.hubs
		hs.mu.Lock()
		if hs.open[h.key] == h {
			delete(hs.open, h.key)
		}
		delete(hs.all, h)
		hs.mu.Unlock()
		h.k.consumersClosed.Add(1)
		hs.closing.Done()
	})
}

// sendLoop delivers s's queue until its poll ends. Each wake-up takes the
// whole queue, so a client that keeps up gets large frames and one behind
// gets everything it missed at once.
func (h *hub) sendLoop(s *hubSub) {
	p := s.p
	done := p.ctx.Done()
	var tag uint64
	for {
		select {
		case <-s.notify:
		case <-done:
			return
		}
		h.mu.Lock()
		q, n := s.queue, s.queued
		s.queue, s.queued = nil, 0
		h.mu.Unlock()
		if n == 0 {
			continue
		}
		// The hub's messages are shared; each stream tags its own copies
		// (one allocation per wake-up, not per message).
		copies := make([]gateway.Message, 0, n)
		out := make([]*gateway.Message, 0, n)
		for _, b := range q {
			for _, m := range b {
				tag++
				copies = append(copies, *m)
				c := &copies[len(copies)-1]
				c.Tag = tag
				out = append(out, c)
			}
		}
		for _, chunk := range splitBySize(out, maxSendBytes) {
			if err := p.out.Send(chunk); err != nil {
				if p.parent.Err() == nil {
					h.mu.Lock()
					if s.failure == nil {
						s.failure = &gateway.Failure{Status: 500, Key: keyEndpointUnknownError, Message: msgEndpointUnknownError}
					}
					h.mu.Unlock()
					h.k.log.Warn("sending to the client side failed", "instance", h.inst.id, "error", err)
				}
				p.cancel()
				return
			}
		}
	}
}

// groupCommitted reports whether group has committed offsets on any of the
// hub's topics: QoS none starts from them (docs/hcl.md), so such a stream
// cannot share. The coordinator is looked up without sarama's per-group
// cache, which would grow with every client identifier for the hub's life.
func (h *hub) groupCommitted(group string) (bool, error) {
	b := h.client.LeastLoadedBroker()
	if b == nil {
		return false, errors.New("no broker available")
	}
	fc, err := b.FindCoordinator(&sarama.FindCoordinatorRequest{Version: 2, CoordinatorKey: group, CoordinatorType: sarama.CoordinatorGroup})
	if err != nil {
		return false, err
	}
	if !errors.Is(fc.Err, sarama.ErrNoError) {
		return false, fc.Err
	}
	coord, err := h.client.Broker(fc.Coordinator.ID())
	if err != nil {
		return false, err
	}
	resp, err := coord.FetchOffset(sarama.NewOffsetFetchRequest(h.client.Config().Version, group, nil))
	if err != nil {
		return false, err
	}
	switch {
	case errors.Is(resp.Err, sarama.ErrGroupIDNotFound):
		// Some brokers (kfake) say so for a group that never committed;
		// Kafka answers with no offsets.
		return false, nil
	case !errors.Is(resp.Err, sarama.ErrNoError):
		return false, resp.Err
	}
	for topic, parts := range resp.Blocks {
		if !h.reads(topic) {
			continue
		}
		for _, blk := range parts {
			if blk != nil && errors.Is(blk.Err, sarama.ErrNoError) && blk.Offset >= 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// reads reports whether topic is one the hub consumes.
func (h *hub) reads(topic string) bool {
	if h.pattern != nil {
		return !strings.HasPrefix(topic, "__") && h.pattern.MatchString(topic)
	}
	return slices.Contains(h.topics, topic)
}

// closeInstance closes the hubs of an unconfigured instance.
func (hs *hubSet) closeInstance(inst *instance) {
	for _, h := range hs.snapshot() {
		if h.inst == inst {
			h.forceClose()
		}
	}
}

// stop refuses new hubs and closes every one.
func (hs *hubSet) stop() {
	hs.mu.Lock()
	hs.draining = true
	hs.mu.Unlock()
	for _, h := range hs.snapshot() {
		go h.forceClose()
	}
}

// wait waits until every hub is shut down, or ctx ends.
func (hs *hubSet) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { hs.closing.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (hs *hubSet) snapshot() []*hub {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	out := make([]*hub, 0, len(hs.all))
	for h := range hs.all {
		out = append(out, h)
	}
	return out
}

// consumerCounts are, for tests and logs, the sarama consumers (each with
// its own client) opened and closed so far: one per hub, one per unshared
// subscription.
type consumerCounts struct {
	consumersOpened atomic.Int64
	consumersClosed atomic.Int64
}
