package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Kept consumer sessions for bounded polls (HTTP GET). Creating a consumer
// and joining its group costs several broker round trips and a rebalance
// per request; a client paging through a topic would pay them on every
// page. A poll instead reuses the consumer its previous poll left, with its
// group membership, its claims and the records it fetched past the limit.
const (
	// defaultSessionIdle is how long a kept consumer waits for its next
	// poll. Past it, it commits what was acknowledged, leaves its group
	// (so the group's other members get its partitions back) and closes.
	// 30 s covers clients that poll every few seconds while bounding how
	// long an abandoned consumer holds partitions.
	defaultSessionIdle = 30 * time.Second
	// defaultMaxSessions bounds the kept consumers, idle or serving a poll.
	// Each holds a few connections and bounded buffers (4 batches of up to
	// maxBatch records, the records of one page past its limit, and
	// sarama's per-partition channels), so memory stays bounded whatever the
	// number of clients: past the bound the oldest idle consumer is closed,
	// and when none is idle a poll gets a consumer of its own, closed after
	// it, as without the cache.
	defaultMaxSessions = 256
	// handoverWait bounds how long a poll waits for the busy consumer of
	// its key. A client paging sequentially sends its next GET as soon as
	// it has the previous page, often before that poll's consumer is back
	// in the cache (its last acknowledgement is still on the way): a new
	// consumer then would join the group, take partitions from the warm
	// one and leave the page empty until its duration ends. Polls that
	// really run concurrently get a consumer of their own after the bound.
	handoverWait = time.Second
)

// sessionKey says which polls may share a consumer: those of one instance
// (a reload makes a new one), one group, one QoS level, one resolved topic
// set and one evaluated configuration.
type sessionKey struct {
	inst   *instance
	group  string
	qos    string
	topics string
	config string
}

func newSessionKey(inst *instance, cfg *Config, qos qosPolicy, group string, topics []string, pattern *regexp.Regexp) sessionKey {
	k := sessionKey{inst: inst, group: group, qos: qos.name, topics: strings.Join(topics, "\x00")}
	if pattern != nil {
		k.topics = "\x01" + pattern.String()
	}
	if cfg != inst.static {
		// Evaluated per request (EL or override attributes): requests share
		// a consumer only when every evaluated field is equal.
		b, _ := json.Marshal(cfg)
		k.config = string(b)
	}
	return k
}

// sessionCache holds the idle kept consumers. A consumer serves one poll at
// a time: a poll takes an idle consumer of its key, the most recently used;
// when every consumer of its key is busy it waits for one (up to
// handoverWait), then gets a new one, which joins the group as a further
// member. Sequential polls thus keep finding the same warm consumer, and
// polls that overlap for longer split the group's partitions, as the
// reference's consumers per request do, instead of queueing behind each
// other.
type sessionCache struct {
	idle time.Duration
	max  int

	mu       sync.Mutex
	kept     map[sessionKey][]*subscription // idle; most recently used last
	busy     map[sessionKey]int             // kept consumers serving a poll
	freed    map[sessionKey]chan struct{}   // closed when a busy one ends its poll
	open     int                            // kept consumers, idle or busy
	draining bool
	janitor  chan struct{} // closed to stop the idle janitor; nil before start
	closing  sync.WaitGroup
}

func newSessionCache() *sessionCache {
	return &sessionCache{
		idle: defaultSessionIdle, max: defaultMaxSessions, kept: map[sessionKey][]*subscription{},
		busy: map[sessionKey]int{}, freed: map[sessionKey]chan struct{}{},
	}
}

// take returns an idle consumer for key, or nil and whether a new consumer
// may be kept after its poll. It waits for a busy consumer of key (up to
// handoverWait, or until ctx ends).
func (c *sessionCache) take(ctx context.Context, key sessionKey) (*subscription, bool) {
	var timeout <-chan time.Time
	waited := false
	for {
		c.mu.Lock()
		if c.draining {
			c.mu.Unlock()
			return nil, false
		}
		for l := c.kept[key]; len(l) > 0; l = c.kept[key] {
			s := l[len(l)-1]
			c.setLocked(key, l[:len(l)-1])
			if s.reusable() {
				c.busy[key]++
				c.mu.Unlock()
				return s, true
			}
			// Failed while idle (lost cluster, rebalance error): replace it.
			c.open--
			c.closeAsync(s)
		}
		if c.busy[key] == 0 || waited {
			admitted := c.open < c.max || c.evictOldestLocked()
			if admitted {
				c.open++
				c.busy[key]++
			}
			c.mu.Unlock()
			return nil, admitted
		}
		freed := c.freed[key]
		if freed == nil {
			freed = make(chan struct{})
			c.freed[key] = freed
		}
		c.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(handoverWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			waited = true
		case <-ctx.Done():
			return nil, false
		}
	}
}

// put keeps s for the next poll of its key; false means s must be closed.
func (c *sessionCache) put(s *subscription) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[s.key]--; c.busy[s.key] <= 0 {
		delete(c.busy, s.key)
	}
	if ch := c.freed[s.key]; ch != nil {
		close(ch)
		delete(c.freed, s.key)
	}
	if c.draining || s.inst.ctx.Err() != nil || s.inst.retired.Load() || !s.reusable() {
		c.open--
		return false
	}
	c.kept[s.key] = append(c.kept[s.key], s)
	c.startJanitorLocked()
	return true
}

func (c *sessionCache) setLocked(key sessionKey, l []*subscription) {
	if len(l) == 0 {
		delete(c.kept, key)
		return
	}
	c.kept[key] = l
}

// evictOldestLocked closes the least recently used idle consumer; false
// when none is idle.
func (c *sessionCache) evictOldestLocked() bool {
	var oldest *subscription
	var at time.Time
	for _, l := range c.kept {
		s := l[0]
		if u := s.lastUse(); oldest == nil || u.Before(at) {
			oldest, at = s, u
		}
	}
	if oldest == nil {
		return false
	}
	c.removeLocked(oldest)
	return true
}

// removeLocked takes s out of the cache and closes it.
func (c *sessionCache) removeLocked(s *subscription) {
	l := c.kept[s.key]
	for i, x := range l {
		if x == s {
			c.setLocked(s.key, append(l[:i:i], l[i+1:]...))
			c.open--
			c.closeAsync(s)
			return
		}
	}
}

// closeAsync closes s without holding up the caller; Drain waits for it.
func (c *sessionCache) closeAsync(s *subscription) {
	c.closing.Add(1)
	go func() {
		defer c.closing.Done()
		s.close()
	}()
}

// evictIdle closes the consumers idle since now minus the idle bound and
// returns how many.
func (c *sessionCache) evictIdle(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old []*subscription
	for _, l := range c.kept {
		for _, s := range l {
			if now.Sub(s.lastUse()) >= c.idle {
				old = append(old, s)
			}
		}
	}
	for _, s := range old {
		c.removeLocked(s)
	}
	return len(old)
}

// closeInstance closes the idle consumers of an unconfigured or replaced
// instance; busy ones are closed when their poll ends (put refuses them).
func (c *sessionCache) closeInstance(inst *instance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old []*subscription
	for key, l := range c.kept {
		if key.inst == inst {
			old = append(old, l...)
		}
	}
	for _, s := range old {
		c.removeLocked(s)
	}
}

// size is the number of idle kept consumers, for tests and metrics.
func (c *sessionCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.kept {
		n += len(l)
	}
	return n
}

// startJanitorLocked starts the idle eviction loop once.
func (c *sessionCache) startJanitorLocked() {
	if c.janitor != nil || c.draining {
		return
	}
	stop := make(chan struct{})
	c.janitor = stop
	period := max(c.idle/4, time.Second)
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

// stop refuses to keep consumers any more and closes the idle ones.
func (c *sessionCache) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.janitor != nil {
		close(c.janitor)
		c.janitor = nil
	}
	var all []*subscription
	for _, l := range c.kept {
		all = append(all, l...)
	}
	for _, s := range all {
		c.removeLocked(s)
	}
}

// wait waits until every consumer closed by the cache has committed and
// left its group, or ctx ends.
func (c *sessionCache) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.closing.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lastUse is when s last started or ended a poll.
func (s *subscription) lastUse() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUsed
}
