package main

import (
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// qosPolicy is what a QoS level means for a consumer (docs/behaviour.md 2.5,
// docs/differences.md #4).
type qosPolicy struct {
	// name is the QoS label.
	name string
	// ids gives messages their position as id, and honours cursors.
	ids bool
	// commitBeforeSend commits each batch's offsets synchronously before the
	// batch is handed over (at-most-once).
	commitBeforeSend bool
	// commitAcked commits the offsets of acknowledged messages, periodically
	// and when the subscription ends (auto, at-least-once).
	commitAcked bool
}

// qosPolicyFor returns the policy of a QoS label; "" is the default, auto.
func qosPolicyFor(qos string) (qosPolicy, error) {
	switch qos {
	case endpoint.QoSNone:
		return qosPolicy{name: qos}, nil
	case endpoint.QoSAuto, "":
		return qosPolicy{name: endpoint.QoSAuto, commitAcked: true}, nil
	case endpoint.QoSAtMostOnce:
		return qosPolicy{name: qos, ids: true, commitBeforeSend: true}, nil
	case endpoint.QoSAtLeastOnce:
		return qosPolicy{name: qos, ids: true, commitAcked: true}, nil
	}
	return qosPolicy{}, fmt.Errorf("Unsupported QoS '%s' for Kafka", qos)
}

// unsupportedQoS is the request-level failure for a QoS the endpoint does
// not serve.
func unsupportedQoS(err error) *gateway.Failure {
	return &gateway.Failure{Status: 400, Key: "FAILURE_QOS_UNSUPPORTED", Message: err.Error(), RequestLevel: true}
}

// recordPos is the position of one delivered record and the group session
// it was fetched in (offsets can only be committed through that session).
type recordPos struct {
	sess      sarama.ConsumerGroupSession
	topic     string
	partition int32
	offset    int64
}

// pendingRec is a delivered record waiting for its acknowledgement.
type pendingRec struct {
	recordPos
	tag uint64
}

// sessionPartition keys per-partition maxima within one session.
type sessionPartition struct {
	sess sarama.ConsumerGroupSession
	topicPartition
}

// ackTracker remembers delivered records until the client side acknowledges
// them, then marks their offsets for commit. Only acknowledged records are
// ever marked, so a record fetched but not delivered (an HTTP GET that hit
// its limit) is never committed (docs/behaviour.md 8.2).
type ackTracker struct {
	// group is the consumer group, for the lag metric.
	group   string
	mu      sync.Mutex
	pending []pendingRec // in tag order
	closed  bool         // no acknowledgement will come any more
	changed chan struct{}
}

func newAckTracker(group string) *ackTracker {
	return &ackTracker{group: group, changed: make(chan struct{})}
}

// add records delivered messages; tags increase.
func (t *ackTracker) add(recs []recordPos, firstTag uint64) {
	t.mu.Lock()
	for i, r := range recs {
		t.pending = append(t.pending, pendingRec{recordPos: r, tag: firstTag + uint64(i)})
	}
	t.mu.Unlock()
}

// ack marks every record with tag <= through.
func (t *ackTracker) ack(through uint64) {
	t.mu.Lock()
	n := 0
	for n < len(t.pending) && t.pending[n].tag <= through {
		n++
	}
	if n == 0 {
		t.mu.Unlock()
		return
	}
	done := t.pending[:n]
	marks := map[sessionPartition]int64{}
	for _, r := range done {
		k := sessionPartition{r.sess, topicPartition{r.topic, r.partition}}
		if o, ok := marks[k]; !ok || r.offset > o {
			marks[k] = r.offset
		}
	}
	rest := copy(t.pending, t.pending[n:])
	clear(t.pending[rest:])
	t.pending = t.pending[:rest]
	t.signalLocked()
	t.mu.Unlock()
	for k, o := range marks {
		// Committed offsets name the next record to read.
		k.sess.MarkOffset(k.topic, k.partition, o+1, "")
		metrics.committed(t.group, k.topic, k.partition, o+1)
	}
}

// reopen says a new poll will acknowledge what it is delivered.
func (t *ackTracker) reopen() {
	t.mu.Lock()
	t.closed = false
	t.mu.Unlock()
}

// pendingCount is the number of delivered records not yet acknowledged.
func (t *ackTracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// close says no acknowledgement will arrive any more.
func (t *ackTracker) close() {
	t.mu.Lock()
	t.closed = true
	t.signalLocked()
	t.mu.Unlock()
}

func (t *ackTracker) signalLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// waitSession blocks until no delivered record of sess awaits its
// acknowledgement, the tracker is closed, or stop is closed. A session
// calls it before giving its partitions up, so acknowledged offsets are
// committed by that session rather than lost to the rebalance.
func (t *ackTracker) waitSession(sess sarama.ConsumerGroupSession, stop <-chan struct{}) {
	for {
		t.mu.Lock()
		waiting := false
		if !t.closed {
			for _, r := range t.pending {
				if r.sess == sess {
					waiting = true
					break
				}
			}
		}
		ch := t.changed
		t.mu.Unlock()
		if !waiting {
			return
		}
		select {
		case <-ch:
		case <-stop:
			return
		}
	}
}

// committer commits at-most-once batches synchronously over a connection
// of its own. Sarama's offset manager shares the connection its fetches use,
// and a broker answers requests of one connection in order, so a commit
// would wait behind every idle fetch's long poll (up to fetch.max.wait).
// Java's consumer also keeps a separate coordinator connection.
type committer struct {
	client sarama.Client
	group  string
}

func newCommitter(addrs []string, sc *sarama.Config, group string) (*committer, error) {
	client, err := sarama.NewClient(addrs, sc)
	if err != nil {
		return nil, err
	}
	return &committer{client: client, group: group}, nil
}

func (c *committer) close() { _ = c.client.Close() }

// commit commits the offsets after recs, per session (generation and member
// fence the commit: a session that lost its partitions cannot commit).
func (c *committer) commit(recs []recordPos) error {
	marks := map[sessionPartition]int64{}
	for _, r := range recs {
		k := sessionPartition{r.sess, topicPartition{r.topic, r.partition}}
		if o, ok := marks[k]; !ok || r.offset > o {
			marks[k] = r.offset
		}
	}
	reqs := map[sarama.ConsumerGroupSession]*sarama.OffsetCommitRequest{}
	for k, o := range marks {
		req := reqs[k.sess]
		if req == nil {
			req = sarama.NewOffsetCommitRequest(c.client.Config(), c.group)
			req.ConsumerGroupGeneration = k.sess.GenerationID()
			req.ConsumerID = k.sess.MemberID()
			reqs[k.sess] = req
		}
		// Committed offsets name the next record to read.
		req.AddBlockWithLeaderEpoch(k.topic, k.partition, o+1, -1, 0, "")
	}
	for _, req := range reqs {
		coord, err := c.client.Coordinator(c.group)
		if err != nil {
			return err
		}
		resp, err := coord.CommitOffset(req)
		if err != nil {
			_ = c.client.RefreshCoordinator(c.group)
			return err
		}
		for _, parts := range resp.Errors {
			for _, kerr := range parts {
				if kerr != sarama.ErrNoError {
					if kerr == sarama.ErrNotCoordinatorForConsumer || kerr == sarama.ErrConsumerCoordinatorNotAvailable {
						_ = c.client.RefreshCoordinator(c.group)
					}
					return kerr
				}
			}
		}
	}
	for k, o := range marks {
		metrics.committed(c.group, k.topic, k.partition, o+1)
	}
	return nil
}
