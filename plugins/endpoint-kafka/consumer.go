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
	// FAILURE_ENDPOINT_CONNECTION_CLOSED (REFERENCE 2.9: 10 attempts x 1 s).
	defaultConnectionWatchdog = 10 * time.Second
)

// defaultMetadataRefresh is how often a subscription with a topic pattern or
// missing topics looks for new topics.
const defaultMetadataRefresh = 5 * time.Second

// subscription is one client subscription: one consumer group member whose
// records are batched, tagged and handed to the client side.
type subscription struct {
	k     *Kafka
	inst  *instance
	cfg   *Config
	req   *endpoint.SubscribeRequest
	out   endpoint.Subscription
	qos   qosPolicy
	group string

	// parent is the client's context: done when the client side is gone.
	parent context.Context
	// ctx is parent merged with the instance's; cancel ends the
	// subscription from inside (failure, drain, unconfigure).
	ctx    context.Context
	cancel context.CancelFunc
	// stopInstanceWatch releases the link from the instance's context.
	stopInstanceWatch func() bool

	encode  bool
	strip   bool
	topics  []string // explicit topics (nil with a pattern)
	pattern *regexp.Regexp
	cursor  map[topicPartition]int64

	client sarama.Client
	cg     sarama.ConsumerGroup
	commit *committer // at-most-once only

	batches chan claimBatch
	acks    *ackTracker

	mu            sync.Mutex
	ready         bool
	failure       *gateway.Failure
	sessCancel    context.CancelFunc
	present       []string
	cursorApplied map[topicPartition]bool
	changed       chan struct{} // closed when present topics change
}

// claimBatch is what a partition's claim hands to the sender.
type claimBatch struct {
	msgs []*gateway.Message
	recs []recordPos
}

// Subscribe runs one subscription until ctx ends (REFERENCE 2).
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
	s := &subscription{
		k: k, inst: inst, cfg: cfg, req: req, out: out, qos: qos,
		encode:        cfg.Consumer.encodeIDs(),
		strip:         cfg.Consumer.RemoveConfluentHeader,
		batches:       make(chan claimBatch, 4),
		acks:          newAckTracker(),
		cursorApplied: map[topicPartition]bool{},
		changed:       make(chan struct{}),
	}
	if qos.ids && req.LastID != "" {
		ps, err := parseCursor(req.LastID, s.encode)
		if err != nil {
			return cursorFailure(req.LastID, s.encode, err)
		}
		s.cursor = make(map[topicPartition]int64, len(ps))
		for _, p := range ps {
			s.cursor[p.topicPartition] = p.offset
		}
	}
	s.group = groupID(req.Context)
	if !k.register(s, ctx) {
		return &gateway.Failure{Status: 503, Key: keyEndpointConnectionClosed, Message: msgEndpointConnectionClosed, Retriable: true, RequestLevel: true}
	}
	defer k.unregister(s)
	s.run()
	return nil
}

// register adds a running subscription so Drain can end it; false when
// draining.
func (k *Kafka) register(s *subscription, parent context.Context) bool {
	k.subsMu.Lock()
	defer k.subsMu.Unlock()
	if k.draining {
		return false
	}
	s.parent = parent
	s.ctx, s.cancel = context.WithCancel(parent)
	s.stopInstanceWatch = context.AfterFunc(s.inst.ctx, s.cancel)
	k.subs[s] = struct{}{}
	k.subsWG.Add(1)
	return true
}

func (k *Kafka) unregister(s *subscription) {
	s.stopInstanceWatch()
	s.cancel()
	k.subsMu.Lock()
	delete(k.subs, s)
	k.subsMu.Unlock()
	k.subsWG.Done()
}

// groupID chooses the consumer group (REFERENCE 2.2, DESIGN 10.5): the
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

// fail records the first failure and ends the subscription; run sends it to
// the client as an error message.
func (s *subscription) fail(err error) {
	f := classify(err)
	if errors.Is(err, errMissingTopics) {
		// DESIGN 10.3: the message names the missing topics.
		f.Message = msgEndpointConfigurationInvalid + ": " + err.Error()
	}
	s.mu.Lock()
	if s.failure == nil {
		s.failure = f
		s.k.log.Warn("subscription failed", "instance", s.req.InstanceID, "group", s.group, "key", f.Key, "error", err)
	}
	s.mu.Unlock()
	s.cancel()
}

// signalReady reports the starting position once.
func (s *subscription) signalReady(cursor string) error {
	s.mu.Lock()
	if s.ready {
		s.mu.Unlock()
		return nil
	}
	s.ready = true
	s.mu.Unlock()
	return s.out.Ready(cursor)
}

// run connects, consumes until the subscription ends, commits what was
// acknowledged, leaves the group and reports a failure if there was one.
func (s *subscription) run() {
	s.consume()
	s.report()
}

// report sends the failure that ended the subscription, if any, while the
// client side is there to be told.
func (s *subscription) report() {
	s.mu.Lock()
	f := s.failure
	s.mu.Unlock()
	if f != nil && s.parent.Err() == nil {
		// Only our own cancel fired: the client side is still there to be
		// told, as an error message (REFERENCE 2.9).
		if s.signalReady(s.readyEcho()) == nil {
			_ = s.out.Send([]*gateway.Message{errorMessage(f)})
		}
	}
}

func (s *subscription) consume() {
	if err := s.connect(); err != nil {
		s.fail(err)
		return
	}
	present, missing, err := s.resolvePresent()
	err = setupError(err)
	if err != nil || (len(missing) > 0 && s.cfg.Consumer.CheckTopicExistence) {
		if err == nil {
			err = asConfigError(fmt.Errorf("%w: %s", errMissingTopics, strings.Join(missing, ", ")))
		}
		s.fail(err)
		s.closeClients()
		return
	}
	s.setPresent(present)

	errorsDone := make(chan struct{})
	go func() { defer close(errorsDone); s.watchErrors() }()
	senderDone := make(chan struct{})
	go func() { defer close(senderDone); s.sendLoop() }()
	ackStop := make(chan struct{})
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); s.ackLoop(ackStop) }()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if s.pattern != nil || len(missing) > 0 {
			s.watchTopics()
		}
	}()

	// Sessions run under base, which outlives s.ctx: when the client goes
	// away the last acknowledgements are marked first, then base ends and
	// the session commits them as it is released.
	base, stopSessions := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); s.consumeLoop(base) }()

	<-s.ctx.Done()
	<-senderDone
	if s.hasFailure() {
		close(ackStop)
	} else {
		t := time.AfterFunc(ackDrainTimeout, func() { close(ackStop) })
		defer t.Stop()
	}
	<-ackDone
	stopSessions()
	<-loopDone
	s.closeClients()
	<-errorsDone
	<-watchDone
}

// closeClients leaves the group and closes the connections.
func (s *subscription) closeClients() {
	_ = s.cg.Close()
	_ = s.client.Close()
	if s.commit != nil {
		s.commit.close()
	}
}

func (s *subscription) hasFailure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure != nil
}

// errMissingTopics reports topics that do not exist when
// check_topic_existence is set (DESIGN 10.3).
var errMissingTopics = errors.New("topics do not exist")

// connect creates the client and the group member.
func (s *subscription) connect() error {
	addrs, err := bootstrapAddrs(s.cfg.BootstrapServers)
	if err != nil {
		return asConfigError(err)
	}
	topics, pattern, err := consumerTopics(s.req.Context, s.cfg)
	if err != nil {
		return asConfigError(err)
	}
	s.topics, s.pattern = topics, pattern
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
	return nil
}

// resolvePresent splits the wanted topics into those the cluster has and
// those it lacks; with a pattern, present are the matching topics.
func (s *subscription) resolvePresent() (present, missing []string, err error) {
	if s.pattern != nil {
		if err := s.client.RefreshMetadata(); err != nil {
			return nil, nil, err
		}
		all, err := s.client.Topics()
		if err != nil {
			return nil, nil, err
		}
		for _, t := range all {
			if !strings.HasPrefix(t, "__") && s.pattern.MatchString(t) {
				present = append(present, t)
			}
		}
		sort.Strings(present)
		return present, nil, nil
	}
	if err := s.client.RefreshMetadata(s.topics...); err != nil && !onlyMissingTopics(err) {
		return nil, nil, err
	}
	all, err := s.client.Topics()
	if err != nil {
		return nil, nil, err
	}
	exists := make(map[string]bool, len(all))
	for _, t := range all {
		exists[t] = true
	}
	for _, t := range s.topics {
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
		case <-s.ctx.Done():
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
// base ends. A cluster unreachable for connectionWatchdog fails the
// subscription.
func (s *subscription) consumeLoop(base context.Context) {
	var failingSince time.Time
	for base.Err() == nil && s.ctx.Err() == nil {
		s.mu.Lock()
		present, changed := s.present, s.changed
		s.mu.Unlock()
		if len(present) == 0 {
			// Nothing to consume yet: report the client's position and wait
			// for a topic to appear.
			if err := s.signalReady(s.readyEcho()); err != nil {
				s.cancel()
				return
			}
			select {
			case <-changed:
			case <-base.Done():
			case <-s.ctx.Done():
			}
			continue
		}
		sessCtx, cancel := context.WithCancel(base)
		s.mu.Lock()
		s.sessCancel = cancel
		s.mu.Unlock()
		err := s.cg.Consume(sessCtx, present, s)
		cancel()
		if base.Err() != nil || s.ctx.Err() != nil {
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
		case <-base.Done():
		case <-s.ctx.Done():
		}
	}
}

// readyEcho is the cursor reported when no partition is assigned: the
// client's own cursor, if it may use one.
func (s *subscription) readyEcho() string {
	if s.qos.ids {
		return s.req.LastID
	}
	return ""
}

// errNoCommittedOffset is auto_offset_reset = none meeting a partition
// without committed offset (Java's NoOffsetForPartitionException).
var errNoCommittedOffset = asConfigError(errors.New("auto_offset_reset is none and a partition has no committed offset"))

// Setup positions a new session (sarama.ConsumerGroupHandler): cursor positions on partitions seen for
// the first time, the auto_offset_reset = none check, and the Ready cursor.
func (s *subscription) Setup(sess sarama.ConsumerGroupSession) error {
	claims := sess.Claims()
	var tps []topicPartition
	for t, ps := range claims {
		for _, p := range ps {
			tps = append(tps, topicPartition{t, p})
		}
	}
	s.sortPartitions(tps)
	fromCursor := map[topicPartition]bool{}
	for _, tp := range tps {
		off, ok := s.cursor[tp]
		if !ok || s.cursorApplied[tp] {
			continue
		}
		// Resume after the client's position (REFERENCE 2.7). MarkOffset
		// only moves forward and ResetOffset only backward: together they
		// set it.
		sess.MarkOffset(tp.topic, tp.partition, off+1, "")
		sess.ResetOffset(tp.topic, tp.partition, off+1, "")
		s.cursorApplied[tp] = true
		fromCursor[tp] = true
	}
	s.mu.Lock()
	needReady := !s.ready
	s.mu.Unlock()
	resetNone := s.cfg.Consumer.AutoOffsetReset == "none"
	computeCursor := needReady && s.qos.ids && s.req.LastID == "" && len(tps) > 0
	var committed map[topicPartition]int64
	if (resetNone || computeCursor) && len(tps) > 0 {
		var err error
		if committed, err = s.fetchCommitted(tps); err != nil {
			return err
		}
	}
	if resetNone {
		for _, tp := range tps {
			if committed[tp] < 0 && !fromCursor[tp] {
				return fmt.Errorf("%w (%s partition %d)", errNoCommittedOffset, tp.topic, tp.partition)
			}
		}
	}
	if !needReady {
		return nil
	}
	cursor := s.readyEcho()
	if computeCursor {
		first := tps[0]
		next := committed[first]
		if next < 0 {
			ts := sarama.OffsetNewest
			if s.cfg.Consumer.AutoOffsetReset == "earliest" {
				ts = sarama.OffsetOldest
			}
			var err error
			if next, err = s.client.GetOffset(first.topic, first.partition, ts); err != nil {
				return err
			}
		}
		// The position before the first record to deliver; -1 when nothing
		// precedes it (DESIGN 10.2).
		cursor = encodeID(first.topic, first.partition, next-1, s.encode)
	}
	return s.signalReady(cursor)
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
		s.add(&b, sess, first)
		closed := false
	fill:
		for len(b.msgs) < maxBatch {
			select {
			case m, ok := <-in:
				if !ok {
					closed = true
					break fill
				}
				s.add(&b, sess, m)
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

func (s *subscription) add(b *claimBatch, sess sarama.ConsumerGroupSession, r *sarama.ConsumerMessage) {
	b.msgs = append(b.msgs, s.toMessage(r))
	b.recs = append(b.recs, recordPos{sess: sess, topic: r.Topic, partition: r.Partition, offset: r.Offset})
}

// toMessage converts a record (REFERENCE 2.6, DESIGN 10.6).
func (s *subscription) toMessage(r *sarama.ConsumerMessage) *gateway.Message {
	content := r.Value
	tombstone := content == nil
	if tombstone {
		content = []byte{}
	} else if s.strip {
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
	if s.qos.ids {
		m.ID = encodeID(r.Topic, r.Partition, r.Offset, s.encode)
	}
	return m
}

// validUTF8 decodes Kafka bytes as UTF-8 text (REFERENCE 2.6). Kafka does
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
// messages and hands them to the client side. Send blocks while the client
// is slow, which stalls the claims and, through sarama's bounded channels,
// the fetches.
func (s *subscription) sendLoop() {
	var tag uint64
	var sent int64
	done := s.ctx.Done()
	for {
		var b claimBatch
		select {
		case b = <-s.batches:
		case <-done:
			return
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
		if s.req.Limit > 0 {
			left := s.req.Limit - sent
			if left <= 0 {
				continue
			}
			if int64(len(b.msgs)) > left {
				// Records past the limit are never delivered, so never committed.
				b.msgs, b.recs = b.msgs[:left], b.recs[:left]
			}
		}
		if len(b.msgs) == 0 {
			continue
		}
		first := tag + 1
		for _, m := range b.msgs {
			tag++
			m.Tag = tag
		}
		switch {
		case s.qos.commitBeforeSend:
			if err := s.commit.commit(b.recs); err != nil {
				// Not committed, so not delivered: rejoin and re-read from
				// the committed offsets.
				s.k.log.Warn("at-most-once commit failed, rejoining", "group", s.group, "error", err)
				tag = first - 1
				s.rejoin()
				continue
			}
		case s.qos.commitAcked:
			s.acks.add(b.recs, first)
		}
		for _, chunk := range splitBySize(b.msgs, maxSendBytes) {
			if err := s.out.Send(chunk); err != nil {
				s.sendFailed(err)
				return
			}
		}
		sent += int64(len(b.msgs))
		if s.req.Limit > 0 && sent >= s.req.Limit {
			s.cg.PauseAll()
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

// sendFailed ends the subscription after a failed Send. When the client
// side is gone that is the normal end and nothing is reported. Any other
// failure (a batch the client side cannot take) is reported as
// FAILURE_ENDPOINT_UNKNOWN_ERROR: ending quietly would look like a clean end
// of stream, and a client resuming from its last id would meet the same
// record and end again, forever.
func (s *subscription) sendFailed(err error) {
	if s.parent.Err() != nil {
		s.cancel()
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
func (s *subscription) ackLoop(stop <-chan struct{}) {
	defer s.acks.close()
	acks := s.out.Acks()
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
