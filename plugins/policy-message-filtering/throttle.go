package main

import (
	"sync"
	"time"
)

// throttle lets through one log line per key and interval. An attribute whose
// EL fails on every message (a header most clients do not send) would
// otherwise log once per message, on the hot path.
type throttle struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[string]time.Time
	dropped  map[string]int
	now      func() time.Time
}

func newThrottle(interval time.Duration) *throttle {
	return &throttle{interval: interval, last: map[string]time.Time{}, dropped: map[string]int{}, now: time.Now}
}

// allow reports whether a line for key may be logged now, and how many lines
// for key were held back since the last one.
func (t *throttle) allow(key string) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if last, seen := t.last[key]; seen && now.Sub(last) < t.interval {
		t.dropped[key]++
		return false, 0
	}
	t.last[key] = now
	suppressed = t.dropped[key]
	delete(t.dropped, key)
	return true, suppressed
}
