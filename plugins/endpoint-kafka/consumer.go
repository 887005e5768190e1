package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Consumer tuning. Batches are what cross to the core in one frame; the
// bounds keep memory flat whatever the backlog (sub.Send blocks).
const (
	maxBatch = 256
	// ackDrainTimeout bounds the wait for the last acknowledgements once the
	// client side is gone (they normally arrive before the stream closes).
	ackDrainTimeout = 2 * time.Second
	// rebalanceAckWait bounds how long a session giving up partitions waits
	// for delivered records to be acknowledged, so they are committed.
	rebalanceAckWait = 5 * time.Second
	// defaultConnectionWatchdog is how long the cluster may stay
	// unreachable before a subscription fails with
	// FAILURE_ENDPOINT_CONNECTION_CLOSED (docs/behaviour.md 2.9: 10 attempts x 1 s).
	defaultConnectionWatchdog = 10 * time.Second
)

// defaultMetadataRefresh is how often a subscription with a topic pattern or
// missing topics looks for new topics.
const defaultMetadataRefresh = 5 * time.Second

// subscription is one consumer group member: a sarama client and consumer
// group whose records are batched, tagged and handed to the poll attached
// to it. A streaming subscription (SSE, WebSocket, webhook) serves one poll
// and is closed with it; a bounded poll (HTTP GET) may leave it in the
// session cache, where the next poll of the same group and configuration
// finds it warm (see sessions.go).
type subscription struct {
	k     *Kafka
	inst  *instance
	cfg   *Config
	qos   qosPolicy
	group string
	// pooled subscriptions track their positions so a later poll can be
	// told where it starts without asking the broker.
	pooled bool
	key    sessionKey

	// life ends when the subscription closes; group sessions run under it,
	// so the last acknowledgements of a poll are marked before it ends.
	life     context.Context
	stopLife context.CancelFunc
	opened   bool
	done     chan struct{} // closed when the watchers of open have ended
	loopDone chan struct{} // closed when consumeLoop has ended

	encode  bool
	strip   bool
	topics  []string // explicit topics (nil with a pattern)
	pattern *regexp.Regexp

	client sarama.Client
	cg     sarama.ConsumerGroup
	commit *committer // at-most-once only

	batches chan claimBatch
	acks    *ackTracker

	// Only the sendLoop of the attached poll uses these; polls take turns.
	leftover claimBatch // fetched past the previous poll's limit
	tag      uint64     // last tag given; tags increase across polls

	mu            sync.Mutex
	poll          *poll // attached poll, nil while idle
	broken        *gateway.Failure
	sessCancel    context.CancelFunc
	present       []string
	changed       chan struct{} // closed when present topics change
	cursor        map[topicPartition]int64
	cursorApplied map[topicPartition]bool
	// live is the group session since its Setup, nil after its Cleanup.
	live sarama.ConsumerGroupSession
	// claimed are live's partitions in delivery order.
	claimed []topicPartition
	// pos is, per claimed partition, the offset of the next record to
	// deliver (pooled subscriptions only).
	pos map[topicPartition]int64
	// joins counts group sessions set up (JoinGroup and SyncGroup rounds).
	joins    int
	lastUsed time.Time
}

// poll is one client's use of a subscription, from Subscribe until its
// context ends.
type poll struct {
	req    *endpoint.SubscribeRequest
	out    endpoint.Subscription
	cursor map[topicPartition]int64 // parsed req.LastID, for levels with ids
	// parent is the client's context: done when the client side is gone.
	parent context.Context
	// ctx is parent merged with the instance's; cancel ends the poll from
	// inside (failure, drain, unconfigure).
	ctx    context.Context
	cancel context.CancelFunc
	// stopInstanceWatch releases the link from the instance's context.
	stopInstanceWatch func() bool
	// s is the subscription serving the poll, for tests; guarded by
	// Kafka.subsMu.
	s *subscription

	// Guarded by s.mu.
	ready   bool
	failure *gateway.Failure
}

// claimBatch is what a partition's claim hands to the sender.
type claimBatch struct {
	msgs []*gateway.Message
	recs []recordPos
}

// Subscribe serves one client subscription until ctx ends.
func (k *Kafka) Subscribe(ctx context.Context, req *endpoint.SubscribeRequest, out endpoint.Subscription) error {
	inst, err := k.instance(req.InstanceID)
	if err != nil {
		return err
	}
	cfg, err := inst.evaluate(req.Context)
	if err != nil {
		k.log.Warn("invalid dynamic configuration", "instance", req.InstanceID, "error", err)
		return invalidConfigurationFailure()
	}
	qos, err := qosPolicyFor(req.QoS)
	if err != nil {
		return unsupportedQoS(err)
	}
	if !cfg.Consumer.Enabled {
		// The reference's subscribe produces nothing when the consumer is off.
		if err := out.Ready(req.LastID); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-inst.ctx.Done():
		}
		return nil
	}
	p := &poll{req: req, out: out}
	if qos.ids && req.LastID != "" {
		ps, err := parseCursor(req.LastID, cfg.Consumer.encodeIDs())
		if err != nil {
			return cursorFailure(req.LastID, cfg.Consumer.encodeIDs(), err)
		}
		p.cursor = make(map[topicPartition]int64, len(ps))
		for _, c := range ps {
			p.cursor[c.topicPartition] = c.offset
		}
	}
	group := groupID(req.Context)
	if !k.register(p, ctx, inst) {
		return &gateway.Failure{Status: 503, Key: keyEndpointConnectionClosed, Message: msgEndpointConnectionClosed, Retriable: true, RequestLevel: true}
	}
	defer k.unregister(p)

	topics, pattern, err := consumerTopics(req.Context, cfg)
	if err != nil {
		s := k.newSubscription(inst, cfg, qos, group, nil, nil, false, sessionKey{})
		s.attach(p)
		s.fail(asConfigError(err))
		s.detach(p)
		return nil
	}
	if k.shareable(qos, req, cfg) && k.serveShared(p, inst, cfg, group, topics, pattern) {
		return nil
	}
	// Only bounded polls of levels that commit reuse a consumer: their
	// next poll continues where this one stopped, exactly as a new
	// consumer reading the committed offsets would. QoS none never
	// commits, so each request restarts from auto_offset_reset and must
	// get a fresh consumer.
	pooled := req.Limit > 0 && (qos.commitAcked || qos.commitBeforeSend)
	var key sessionKey
	var s *subscription
	if pooled {
		key = newSessionKey(inst, cfg, qos, group, topics, pattern)
		s, pooled = k.sessions.take(p.ctx, key)
	}
	if s == nil {
		s = k.newSubscription(inst, cfg, qos, group, topics, pattern, pooled, key)
	}
	k.subsMu.Lock()
	p.s = s
	k.subsMu.Unlock()
	s.serve(p)
	if !pooled || !k.sessions.put(s) {
		s.close()
	}
	return nil
}

// newSubscription prepares a subscription; serve opens it.
func (k *Kafka) newSubscription(inst *instance, cfg *Config, qos qosPolicy, group string, topics []string, pattern *regexp.Regexp, pooled bool, key sessionKey) *subscription {
	s := &subscription{
		k: k, inst: inst, cfg: cfg, qos: qos, group: group, pooled: pooled, key: key,
		encode:   cfg.Consumer.encodeIDs(),
		strip:    cfg.Consumer.RemoveConfluentHeader,
		topics:   topics,
		pattern:  pattern,
		batches:  make(chan claimBatch, 4),
		acks:     newAckTracker(group),
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	s.life, s.stopLife = context.WithCancel(context.Background())
	return s
}

// register adds a running poll so Drain can end it; false when draining.
func (k *Kafka) register(p *poll, parent context.Context, inst *instance) bool {
	k.subsMu.Lock()
	defer k.subsMu.Unlock()
	if k.draining {
		return false
	}
	p.parent = parent
	p.ctx, p.cancel = context.WithCancel(parent)
	p.stopInstanceWatch = context.AfterFunc(inst.ctx, p.cancel)
	k.subs[p] = struct{}{}
	k.subsWG.Add(1)
	return true
}

func (k *Kafka) unregister(p *poll) {
	p.stopInstanceWatch()
	p.cancel()
	k.subsMu.Lock()
	delete(k.subs, p)
	k.subsMu.Unlock()
	k.subsWG.Done()
}

// groupID chooses the consumer group (docs/behaviour.md 2.2, docs/differences.md #5): the
// groupId attribute, else the client identifier, else a random UUID.
func groupID(c *gateway.Context) string {
	if c == nil {
		return newUUID()
	}
	if g, ok := stringAttr(c.Attributes, groupIDAttrs); ok {
		return g
	}
	if c.Request != nil && c.Request.ClientIdentifier != "" {
		return c.Request.ClientIdentifier
	}
	return newUUID()
}

// fail records the first failure, which also makes the subscription unfit
// for another poll, and ends the attached poll; serve sends the failure to
// the client as an error message.
func (s *subscription) fail(err error) {
	f := classify(err)
	if errors.Is(err, errMissingTopics) {
		// docs/differences.md #3: the message names the missing topics.
		f.Message = msgEndpointConfigurationInvalid + ": " + err.Error()
	}
	s.mu.Lock()
	if s.broken == nil {
		s.broken = f
		s.k.log.Warn("subscription failed", "instance", s.inst.id, "group", s.group, "key", f.Key, "error", err)
	}
	p := s.poll
	if p != nil && p.failure == nil {
		p.failure = f
	}
	s.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// signalReady reports the poll's starting position once.
func (s *subscription) signalReady(p *poll, cursor string) error {
	s.mu.Lock()
	if p.ready {
		s.mu.Unlock()
		return nil
	}
	p.ready = true
	s.mu.Unlock()
	return p.out.Ready(cursor)
}

// attach makes p the poll served. On a warm subscription it reports the
// starting position at once: the client's cursor when it matches where
// the subscription stands, else the position before the next record. A
// cursor elsewhere ends the group session, and the next one starts the
// claims at the cursor (sarama seeks only when a claim starts); its Setup
// reports the position then.
func (s *subscription) attach(p *poll) {
	s.acks.reopen()
	s.mu.Lock()
	s.poll = p
	s.lastUsed = time.Now()
	s.cursor, s.cursorApplied = p.cursor, map[topicPartition]bool{}
	if f := s.broken; f != nil {
		p.failure = f
		s.mu.Unlock()
		p.cancel()
		return
	}
	var ready string
	readyNow := false
	switch {
	case s.live != nil:
		seek := false
		for tp, off := range p.cursor {
			if pos, ok := s.pos[tp]; ok {
				if pos != off+1 {
					seek = true
				}
				s.cursorApplied[tp] = true
			}
		}
		if seek {
			clear(s.cursorApplied)
			if s.sessCancel != nil {
				s.sessCancel()
			}
		} else {
			readyNow, ready = true, s.warmCursorLocked(p)
		}
	case s.opened && len(s.present) == 0:
		readyNow, ready = true, s.readyEcho(p)
	}
	s.mu.Unlock()
	if readyNow && s.signalReady(p, ready) != nil {
		p.cancel()
	}
}

// warmCursorLocked is the starting position of a poll on a live group
// session: the client's own cursor, or the position before the next record
// of the first partition (-1 when nothing precedes it), as Setup computes
// it for a new one.
func (s *subscription) warmCursorLocked(p *poll) string {
	if !s.qos.ids {
		return ""
	}
	if p.req.LastID != "" || len(s.claimed) == 0 {
		return p.req.LastID
	}
	first := s.claimed[0]
	return encodeID(first.topic, first.partition, s.pos[first]-1, s.encode)
}

// detach ends p's use of the subscription.
func (s *subscription) detach(p *poll) {
	s.mu.Lock()
	if s.poll == p {
		s.poll = nil
		s.cursor, s.cursorApplied = nil, nil
	}
	s.lastUsed = time.Now()
	s.mu.Unlock()
	s.report(p)
}

// serve runs one poll: opens the subscription if it is new, hands records
// over until the poll ends, and waits for the acknowledgements of what it
// delivered.
func (s *subscription) serve(p *poll) {
	s.attach(p)
	defer s.detach(p)
	if p.ctx.Err() != nil {
		return
	}
	if !s.opened {
		if err := s.open(); err != nil {
			s.fail(err)
			return
		}
	}
	senderDone := make(chan struct{})
	go func() { defer close(senderDone); s.sendLoop(p) }()
	ackStop := make(chan struct{})
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); s.ackLoop(p, ackStop) }()

	<-p.ctx.Done()
	<-senderDone
	if s.pollFailed(p) {
		close(ackStop)
	} else {
		t := time.AfterFunc(ackDrainTimeout, func() { close(ackStop) })
		defer t.Stop()
	}
	<-ackDone
}

// report sends the failure that ended the poll, if any, while the client
// side is there to be told.
func (s *subscription) report(p *poll) {
	s.mu.Lock()
	f := p.failure
	s.mu.Unlock()
	if f != nil && p.parent.Err() == nil {
		// Only our own cancel fired: the client side is still there to be
		// told, as an error message (docs/behaviour.md 2.9).
		if s.signalReady(p, s.readyEcho(p)) == nil {
			_ = p.out.Send([]*gateway.Message{errorMessage(f)})
		}
	}
}

// open connects, checks the topics and starts consuming.
func (s *subscription) open() error {
	s.opened = true
	if err := s.connect(); err != nil {
		s.client = nil
		return err
	}
	present, missing, err := s.resolvePresent()
	err = setupError(err)
	if err != nil || (len(missing) > 0 && s.cfg.Consumer.CheckTopicExistence) {
		if err == nil {
			err = asConfigError(fmt.Errorf("%w: %s", errMissingTopics, strings.Join(missing, ", ")))
		}
		s.closeClients()
		s.client = nil
		return err
	}
	s.setPresent(present)

	var wg sync.WaitGroup
	wg.Go(s.watchErrors)
	if s.pattern != nil || len(missing) > 0 {
		wg.Go(s.watchTopics)
	}
	go func() { wg.Wait(); close(s.done) }()
	go func() { defer close(s.loopDone); s.consumeLoop() }()
	return nil
}

// close ends the group session (committing what was acknowledged), leaves
// the group and closes the connections.
func (s *subscription) close() {
	s.stopLife()
	if !s.opened || s.client == nil {
		return
	}
	// The group session commits what was acknowledged as it is released;
	// then the group is left and the watchers end with the connections.
	<-s.loopDone
	s.closeClients()
	<-s.done
	metrics.forget(s.group)
}

// closeClients leaves the group and closes the connections.
func (s *subscription) closeClients() {
	if s.cg != nil {
		s.k.consumersClosed.Add(1)
	}
	_ = s.cg.Close()
	_ = s.client.Close()
	if s.commit != nil {
		s.commit.close()
	}
}

// pollFailed reports whether p ended with a failure.
func (s *subscription) pollFailed(p *poll) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.failure != nil
}

// reusable reports whether the subscription may serve another poll: it is
// healthy and everything it delivered was acknowledged. A delivered record
// still unacknowledged (the client went away before its page was written)
// must be read again, so its consumer, already past it, cannot be kept.
func (s *subscription) reusable() bool {
	if s.life.Err() != nil || !s.opened || s.client == nil || s.acks.pendingCount() > 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken == nil && s.poll == nil
}

// errMissingTopics reports topics that do not exist when
// check_topic_existence is set (docs/differences.md #3).
var errMissingTopics = errors.New("topics do not exist")

// connect creates the client and the group member.
func (s *subscription) connect() error {
	addrs, err := bootstrapAddrs(s.cfg.BootstrapServers)
	if err != nil {
		return asConfigError(err)
	}
	sc, err := newSaramaConfig(s.cfg, clientID("gio-apim-consumer-"))
	if err != nil {
		return err
	}
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Consumer.Return.Errors = true
	sc.Consumer.Group.Session.Timeout = 10 * time.Second
	sc.Consumer.Group.Heartbeat.Interval = time.Second
	sc.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	sc.Consumer.Group.Rebalance.Retry.Backoff = time.Second
	sc.Consumer.Offsets.AutoCommit.Enable = s.qos.commitAcked
	sc.Consumer.Offsets.AutoCommit.Interval = s.k.commitInterval
	sc.Consumer.Retry.Backoff = time.Second
	sizeConsumerBuffers(sc)
	switch s.cfg.Consumer.AutoOffsetReset {
	case "earliest":
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	default:
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	client, err := sarama.NewClient(addrs, sc)
	if err != nil {
		return setupError(err)
	}
	cg, err := sarama.NewConsumerGroupFromClient(s.group, client)
	if err != nil {
		_ = client.Close()
		return err
	}
	if s.qos.commitBeforeSend {
		if s.commit, err = newCommitter(addrs, sc, s.group); err != nil {
			_ = cg.Close()
			_ = client.Close()
			return err
		}
	}
	s.client, s.cg = client, cg
	s.k.consumersOpened.Add(1)
	return nil
}

// Buffers of a consumer serving one stream (at-least-once, at-most-once,
// auto, and QoS none with a group of its own). Sarama's defaults suit one
// consumer per process; here there is one per stream, and what a stream can
// use at once is one frame to the core (maxBatch records, the sendLoop's
// 4 batches queued) while the next fetch is under way.
const (
	// consumerFetchDefault is the bytes asked per partition per fetch
	// (sarama: 1 MiB). 256 KiB is about 900 records of 256 B per partition,
	// several frames of maxBatch, so a fast reader never waits for a fetch.
	consumerFetchDefault = 256 << 10
	// consumerFetchMax bounds a whole fetch response (sarama: 100 MiB),
	// which is decoded and held until its records are handed on: with many
	// partitions per broker the default would let one stream hold 1 MiB per
	// partition. A record larger than either bound is still fetched (Kafka
	// returns the first record whatever the limits).
	consumerFetchMax = 1 << 20
)

// sizeConsumerBuffers applies the bounds above. ChannelBufferSize stays at
// sarama's 256: its channels hold pointers (about 2 KiB each, a few per
// partition) into the fetch response bounded above, and at 64 one SSE
// reader measured slower (claims hand over smaller batches, so more frames
// cross to the core). Net.MaxOpenRequests stays at
// sarama's 5: it only sizes two small channels per connection, and a lower
// value would queue group heartbeats and commits behind a long-polling fetch
// on a shared connection. Metadata.RefreshFrequency stays at 10 minutes: the
// background refresh is one goroutine and one request per client, and it is
// how a consumer group notices partitions added to its topics.
func sizeConsumerBuffers(sc *sarama.Config) {
	sc.Consumer.Fetch.Default = consumerFetchDefault
	sc.Consumer.Fetch.Max = consumerFetchMax
}

// resolvePresent splits the wanted topics into those the cluster has and
// those it lacks; with a pattern, present are the matching topics.
func (s *subscription) resolvePresent() (present, missing []string, err error) {
	return resolveTopics(s.client, s.topics, s.pattern)
}

// resolveTopics splits topics into those the cluster has and those it
// lacks; with a pattern, present are the matching topics.
func resolveTopics(client sarama.Client, topics []string, pattern *regexp.Regexp) (present, missing []string, err error) {
	if pattern != nil {
		if err := client.RefreshMetadata(); err != nil {
			return nil, nil, err
		}
		all, err := client.Topics()
		if err != nil {
			return nil, nil, err
		}
		for _, t := range all {
			if !strings.HasPrefix(t, "__") && pattern.MatchString(t) {
				present = append(present, t)
			}
		}
		sort.Strings(present)
		return present, nil, nil
	}
	if err := client.RefreshMetadata(topics...); err != nil && !onlyMissingTopics(err) {
		return nil, nil, err
	}
	all, err := client.Topics()
	if err != nil {
		return nil, nil, err
	}
	exists := make(map[string]bool, len(all))
	for _, t := range all {
		exists[t] = true
	}
	for _, t := range topics {
		if exists[t] {
			present = append(present, t)
		} else {
			missing = append(missing, t)
		}
	}
	return present, missing, nil
}

// onlyMissingTopics reports a metadata error that only says some topics do
// not exist (yet), which a subscription waits out.
func onlyMissingTopics(err error) bool {
	if errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		return false
	}
	return errors.Is(err, sarama.ErrUnknownTopicOrPartition) || errors.Is(err, sarama.ErrLeaderNotAvailable) ||
		errors.Is(err, sarama.ErrReplicaNotAvailable)
}

func (s *subscription) setPresent(p []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(p, s.present) {
		return
	}
	s.present = p
	close(s.changed)
	s.changed = make(chan struct{})
	if s.sessCancel != nil {
		// Rejoin with the new topic list.
		s.sessCancel()
	}
}

// rejoin ends the current group session; the consume loop joins again.
func (s *subscription) rejoin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessCancel != nil {
		s.sessCancel()
	}
}

// watchTopics refreshes metadata for a topic pattern or topics that do not
// exist yet, and re-subscribes when the set changes.
func (s *subscription) watchTopics() {
	t := time.NewTicker(s.k.metadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-t.C:
		}
		present, missing, err := s.resolvePresent()
		if err != nil {
			s.k.log.Debug("topic refresh failed", "group", s.group, "error", err)
			continue
		}
		s.setPresent(present)
		if s.pattern == nil && len(missing) == 0 {
			return
		}
	}
}

// watchErrors ends the subscription on errors Kafka will not recover from
// (authentication, TLS, configuration); others are logged.
func (s *subscription) watchErrors() {
	for err := range s.cg.Errors() {
		if isConfigurationError(err) {
			s.fail(err)
			continue
		}
		s.k.log.Debug("consumer error", "group", s.group, "error", err)
	}
}

// consumeLoop joins the group and consumes, session after session, until
// the subscription closes. A cluster unreachable for connectionWatchdog
// fails the subscription.
func (s *subscription) consumeLoop() {
	var failingSince time.Time
	for s.life.Err() == nil {
		s.mu.Lock()
		present, changed, p := s.present, s.changed, s.poll
		s.mu.Unlock()
		if len(present) == 0 {
			// Nothing to consume yet: report the client's position and wait
			// for a topic to appear.
			if p != nil && s.signalReady(p, s.readyEcho(p)) != nil {
				p.cancel()
			}
			select {
			case <-changed:
			case <-s.life.Done():
			}
			continue
		}
		sessCtx, cancel := context.WithCancel(s.life)
		s.mu.Lock()
		s.sessCancel = cancel
		s.mu.Unlock()
		err := s.cg.Consume(sessCtx, present, s)
		cancel()
		if s.life.Err() != nil {
			return
		}
		if err == nil {
			failingSince = time.Time{}
			continue
		}
		if isConfigurationError(err) || errors.Is(err, errNoCommittedOffset) {
			s.fail(err)
			return
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		} else if time.Since(failingSince) >= s.k.connectionWatchdog {
			s.fail(fmt.Errorf("%w: %v", errConnectionClosed, err))
			return
		}
		s.k.log.Debug("consumer group session failed, retrying", "group", s.group, "error", err)
		select {
		case <-time.After(time.Second):
		case <-s.life.Done():
		}
	}
}

// readyEcho is the cursor reported when no partition is assigned: the
// client's own cursor, if it may use one.
func (s *subscription) readyEcho(p *poll) string {
	if s.qos.ids {
		return p.req.LastID
	}
	return ""
}

// errNoCommittedOffset is auto_offset_reset = none meeting a partition
// without committed offset (Java's NoOffsetForPartitionException).
var errNoCommittedOffset = asConfigError(errors.New("auto_offset_reset is none and a partition has no committed offset"))

// Setup positions a new group session (sarama.ConsumerGroupHandler):
// cursor positions on partitions not yet positioned for the attached poll,
// the auto_offset_reset = none check, the positions of a pooled
// subscription, and the attached poll's Ready cursor.
func (s *subscription) Setup(sess sarama.ConsumerGroupSession) error {
	claims := sess.Claims()
	var tps []topicPartition
	for t, ps := range claims {
		for _, p := range ps {
			tps = append(tps, topicPartition{t, p})
		}
	}
	s.sortPartitions(tps)
	s.mu.Lock()
	p := s.poll
	fromCursor := map[topicPartition]int64{}
	for _, tp := range tps {
		off, ok := s.cursor[tp]
		if !ok || s.cursorApplied[tp] {
			continue
		}
		// Resume after the client's position (docs/behaviour.md 2.7). MarkOffset
		// only moves forward and ResetOffset only backward: together they
		// set it.
		sess.MarkOffset(tp.topic, tp.partition, off+1, "")
		sess.ResetOffset(tp.topic, tp.partition, off+1, "")
		s.cursorApplied[tp] = true
		fromCursor[tp] = off + 1
	}
	needReady := p != nil && !p.ready
	s.mu.Unlock()
	resetNone := s.cfg.Consumer.AutoOffsetReset == "none"
	computeCursor := needReady && s.qos.ids && p.req.LastID == "" && len(tps) > 0
	var committed map[topicPartition]int64
	if (resetNone || computeCursor || s.pooled) && len(tps) > 0 {
		var err error
		if committed, err = s.fetchCommitted(tps); err != nil {
			return err
		}
	}
	if resetNone {
		for _, tp := range tps {
			if _, ok := fromCursor[tp]; committed[tp] < 0 && !ok {
				return fmt.Errorf("%w (%s partition %d)", errNoCommittedOffset, tp.topic, tp.partition)
			}
		}
	}
	// next is where a partition starts: the cursor, the committed offset,
	// or auto_offset_reset. A pooled subscription knows it for every
	// partition, so later polls need no round trip for their cursor.
	next := func(tp topicPartition) (int64, error) {
		if o, ok := fromCursor[tp]; ok {
			return o, nil
		}
		if o := committed[tp]; o >= 0 {
			return o, nil
		}
		ts := sarama.OffsetNewest
		if s.cfg.Consumer.AutoOffsetReset == "earliest" {
			ts = sarama.OffsetOldest
		}
		return s.client.GetOffset(tp.topic, tp.partition, ts)
	}
	var pos map[topicPartition]int64
	if s.pooled {
		pos = make(map[topicPartition]int64, len(tps))
		for _, tp := range tps {
			o, err := next(tp)
			if err != nil {
				return err
			}
			pos[tp] = o
		}
	}
	s.mu.Lock()
	s.live, s.claimed, s.pos = sess, tps, pos
	s.joins++
	s.mu.Unlock()
	if !needReady {
		return nil
	}
	cursor := s.readyEcho(p)
	if computeCursor {
		first := tps[0]
		o, ok := pos[first]
		if !ok {
			var err error
			if o, err = next(first); err != nil {
				return err
			}
		}
		// The position before the first record to deliver; -1 when nothing
		// precedes it (docs/differences.md #2).
		cursor = encodeID(first.topic, first.partition, o-1, s.encode)
	}
	if s.signalReady(p, cursor) != nil {
		p.cancel()
	}
	return nil
}

// sortPartitions orders partitions by the configured topic order (name
// order for a pattern), then partition number.
func (s *subscription) sortPartitions(tps []topicPartition) {
	rank := map[string]int{}
	for i, t := range s.topics {
		rank[t] = i
	}
	sort.Slice(tps, func(i, j int) bool {
		a, b := tps[i], tps[j]
		ra, oka := rank[a.topic]
		rb, okb := rank[b.topic]
		switch {
		case oka && okb && ra != rb:
			return ra < rb
		case oka != okb:
			return oka
		case a.topic != b.topic:
			return a.topic < b.topic
		}
		return a.partition < b.partition
	})
}

// fetchCommitted reads the group's committed offsets; -1 means none.
func (s *subscription) fetchCommitted(tps []topicPartition) (map[topicPartition]int64, error) {
	parts := map[string][]int32{}
	for _, tp := range tps {
		parts[tp.topic] = append(parts[tp.topic], tp.partition)
	}
	coord, err := s.client.Coordinator(s.group)
	if err != nil {
		return nil, err
	}
	resp, err := coord.FetchOffset(sarama.NewOffsetFetchRequest(s.client.Config().Version, s.group, parts))
	if err != nil {
		return nil, err
	}
	if resp.Err != sarama.ErrNoError {
		return nil, resp.Err
	}
	out := make(map[topicPartition]int64, len(tps))
	for _, tp := range tps {
		b := resp.GetBlock(tp.topic, tp.partition)
		switch {
		case b == nil:
			out[tp] = -1
		case b.Err != sarama.ErrNoError:
			return nil, b.Err
		default:
			out[tp] = b.Offset
		}
	}
	return out, nil
}

// Cleanup runs when a session ends. With commits of acknowledged records,
// it waits (bounded) for the records this session delivered to be
// acknowledged, so their offsets are committed before the partitions move.
func (s *subscription) Cleanup(sess sarama.ConsumerGroupSession) error {
	s.mu.Lock()
	if s.live == sess {
		s.live, s.claimed, s.pos = nil, nil, nil
	}
	s.mu.Unlock()
	if !s.qos.commitAcked {
		return nil
	}
	stop := make(chan struct{})
	t := time.AfterFunc(rebalanceAckWait, func() { close(stop) })
	defer t.Stop()
	s.acks.waitSession(sess, stop)
	return nil
}

// ConsumeClaim converts one partition's records and hands them to the
// sender in batches of what is immediately available.
func (s *subscription) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	in := claim.Messages()
	done := sess.Context().Done()
	for {
		var first *sarama.ConsumerMessage
		select {
		case m, ok := <-in:
			if !ok {
				return nil
			}
			first = m
		case <-done:
			return nil
		}
		b := claimBatch{msgs: make([]*gateway.Message, 0, 16), recs: make([]recordPos, 0, 16)}
		s.add(&b, sess, claim, first)
		closed := false
	fill:
		for len(b.msgs) < maxBatch {
			select {
			case m, ok := <-in:
				if !ok {
					closed = true
					break fill
				}
				s.add(&b, sess, claim, m)
			default:
				break fill
			}
		}
		select {
		case s.batches <- b:
		case <-done:
			return nil
		}
		if closed {
			return nil
		}
	}
}

func (s *subscription) add(b *claimBatch, sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, r *sarama.ConsumerMessage) {
	metrics.fetched(s.group, r.Topic, r.Partition, r.Timestamp, claim.HighWaterMarkOffset())
	b.msgs = append(b.msgs, s.toMessage(r))
	b.recs = append(b.recs, recordPos{sess: sess, topic: r.Topic, partition: r.Partition, offset: r.Offset})
}

// toMessage converts a record (docs/behaviour.md 2.6, docs/differences.md #6).
func (s *subscription) toMessage(r *sarama.ConsumerMessage) *gateway.Message {
	return recordMessage(r, s.strip, s.qos.ids, s.encode)
}

// recordMessage converts a record: strip removes the Confluent header, ids
// gives the message its position as id (encoded when encode is set).
func recordMessage(r *sarama.ConsumerMessage, strip, ids, encode bool) *gateway.Message {
	content := r.Value
	tombstone := content == nil
	if tombstone {
		content = []byte{}
	} else if strip {
		content = stripConfluentHeader(content)
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	md := make(map[string]any, 6)
	md["topic"] = r.Topic
	md["partition"] = int(r.Partition)
	md["offset"] = r.Offset
	md["sourceTimestamp"] = ts.UnixMilli()
	if r.Key != nil {
		md["key"] = validUTF8(r.Key)
	}
	if tombstone {
		md["tombstone"] = true
	}
	m := &gateway.Message{Content: content, Metadata: md}
	if len(r.Headers) > 0 {
		h := make(gateway.Headers, len(r.Headers))
		for _, rh := range r.Headers {
			if rh == nil {
				continue
			}
			name := validUTF8(rh.Key)
			h[name] = append(h[name], validUTF8(rh.Value))
		}
		m.Headers = h
	}
	if ids {
		m.ID = encodeID(r.Topic, r.Partition, r.Offset, encode)
	}
	return m
}

// validUTF8 decodes Kafka bytes as UTF-8 text (docs/behaviour.md 2.6). Kafka does
// not require keys or headers to be text, but they travel as protobuf strings,
// which must be valid UTF-8: an invalid sequence would make Send fail for the
// whole batch and the record could never be delivered. Each run of invalid
// bytes becomes U+FFFD instead.
func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// stripConfluentHeader removes the Confluent schema-registry wire header:
// magic byte 0 and a 4-byte schema id. Values without it are left as they
// are.
func stripConfluentHeader(b []byte) []byte {
	if len(b) >= 5 && b[0] == 0 {
		return b[5:]
	}
	return b
}

// sendLoop merges the claims' batches, applies the QoS and the limit, tags
// messages and hands them to p. Send blocks while the client is slow, which
// stalls the claims and, through sarama's bounded channels, the fetches.
//
// Records fetched past p's limit are kept in s.leftover, never delivered
// nor committed by p, and are the first the next poll gets: no record is
// lost or read twice across polls of a kept subscription.
func (s *subscription) sendLoop(p *poll) {
	var sent int64
	limit := p.req.Limit
	done := p.ctx.Done()
	for {
		if limit > 0 && sent >= limit {
			// The page is full: what is fetched stays buffered (and the
			// fetches stall once the bounded buffers are full).
			<-done
			return
		}
		var b claimBatch
		if len(s.leftover.msgs) > 0 {
			b, s.leftover = s.leftover, claimBatch{}
		} else {
			select {
			case b = <-s.batches:
			case <-done:
				return
			}
		}
	gather:
		for len(b.msgs) < maxBatch {
			select {
			case more := <-s.batches:
				b.msgs = append(b.msgs, more.msgs...)
				b.recs = append(b.recs, more.recs...)
			default:
				break gather
			}
		}
		b = s.dropStale(b)
		if limit > 0 && int64(len(b.msgs)) > limit-sent {
			left := limit - sent
			// Kept for the next poll; the three-index slices stop an
			// append to this batch from writing over them.
			s.leftover = claimBatch{msgs: b.msgs[left:], recs: b.recs[left:]}
			b.msgs, b.recs = b.msgs[:left:left], b.recs[:left:left]
		}
		if len(b.msgs) == 0 {
			continue
		}
		first := s.tag + 1
		for _, m := range b.msgs {
			s.tag++
			m.Tag = s.tag
		}
		switch {
		case s.qos.commitBeforeSend:
			if err := s.commit.commit(b.recs); err != nil {
				// Not committed, so not delivered: rejoin and re-read from
				// the committed offsets.
				s.k.log.Warn("at-most-once commit failed, rejoining", "group", s.group, "error", err)
				s.tag = first - 1
				s.leftover = claimBatch{}
				s.rejoin()
				continue
			}
		case s.qos.commitAcked:
			s.acks.add(b.recs, first)
		}
		for _, chunk := range splitBySize(b.msgs, maxSendBytes) {
			if err := p.out.Send(chunk); err != nil {
				s.sendFailed(p, err)
				return
			}
		}
		sent += int64(len(b.msgs))
		s.advance(b.recs)
	}
}

// advance records delivered positions, so the next poll's starting cursor
// and cursor checks need no broker round trip.
func (s *subscription) advance(recs []recordPos) {
	if !s.pooled {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if r.sess == s.live {
			s.pos[topicPartition{r.topic, r.partition}] = r.offset + 1
		}
	}
}

// maxSendBytes bounds the estimated size of one Send. A batch of large
// records (up to maxBatch of them, each up to the broker's record limit) could
// otherwise exceed the gRPC message limit and fail on every retry; half the
// limit leaves room for what the estimate leaves out.
const maxSendBytes = serve.MaxMessageSize / 2

// splitBySize cuts msgs into consecutive chunks whose estimated encoded size
// stays within limit. A message larger than limit on its own gets a chunk of
// its own (its Send then fails and is reported).
func splitBySize(msgs []*gateway.Message, limit int) [][]*gateway.Message {
	var out [][]*gateway.Message
	start, size := 0, 0
	for i, m := range msgs {
		n := estimatedSize(m)
		if i > start && size+n > limit {
			out = append(out, msgs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(msgs) {
		out = append(out, msgs[start:])
	}
	return out
}

// estimatedSize over-estimates a message's encoded size: every field's
// bytes plus generous room for tags, lengths and numbers.
func estimatedSize(m *gateway.Message) int {
	n := 64 + len(m.Content) + len(m.ID)
	for k, vs := range m.Headers {
		n += 16 + len(k)
		for _, v := range vs {
			n += 16 + len(v)
		}
	}
	for k, v := range m.Metadata {
		n += 32 + len(k)
		if str, ok := v.(string); ok {
			n += len(str)
		}
	}
	return n
}

// sendFailed ends the poll after a failed Send. When the client
// side is gone that is the normal end and nothing is reported. Any other
// failure (a batch the client side cannot take) is reported as
// FAILURE_ENDPOINT_UNKNOWN_ERROR: ending quietly would look like a clean end
// of stream, and a client resuming from its last id would meet the same
// record and end again, forever.
func (s *subscription) sendFailed(p *poll, err error) {
	if p.parent.Err() != nil {
		p.cancel()
		return
	}
	// The cause is kept as text only: classify must not read a transport
	// error of the client side (io.EOF) as a lost Kafka connection.
	s.fail(fmt.Errorf("%w: sending to the client side: %v", &gateway.Failure{
		Status: 500, Key: keyEndpointUnknownError, Message: msgEndpointUnknownError,
	}, err))
}

// dropStale removes records whose session has ended: with commits, their
// partitions are re-read from the committed offsets by their new owner, so
// delivering them would duplicate them or commit through a dead session.
// Without commits (QoS none) they are delivered anyway.
func (s *subscription) dropStale(b claimBatch) claimBatch {
	if !s.qos.commitAcked && !s.qos.commitBeforeSend {
		return b
	}
	keep := 0
	for i := range b.msgs {
		if b.recs[i].sess.Context().Err() != nil {
			continue
		}
		b.msgs[keep], b.recs[keep] = b.msgs[i], b.recs[i]
		keep++
	}
	b.msgs, b.recs = b.msgs[:keep], b.recs[:keep]
	return b
}

// ackLoop applies the client side's acknowledgements until the channel
// closes (the client side went away) or stop is closed.
func (s *subscription) ackLoop(p *poll, stop <-chan struct{}) {
	defer s.acks.close()
	acks := p.out.Acks()
	for {
		select {
		case t, ok := <-acks:
			if !ok {
				return
			}
			if s.qos.commitAcked {
				s.acks.ack(t)
			}
		case <-stop:
			return
		}
	}
}
