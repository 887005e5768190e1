// Package logthrottle limits log lines that would otherwise repeat once per
// message: an EL value that fails on every message (a header most clients
// do not send) must not log on the hot path, yet the operator must still
// see it and how often it happened.
package logthrottle

import (
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/sdk/serve"
)

// Throttle lets through one line per key and interval. It is safe for
// concurrent use.
type Throttle struct {
	// Now is the clock; tests replace it.
	Now func() time.Time

	mu       sync.Mutex
	interval time.Duration
	last     map[string]time.Time
	dropped  map[string]int
}

// New returns a throttle that lets one line per key through every interval.
func New(interval time.Duration) *Throttle {
	return &Throttle{Now: time.Now, interval: interval, last: map[string]time.Time{}, dropped: map[string]int{}}
}

// Allow reports whether a line for key may be logged now, and how many lines
// for key were held back since the last one.
func (t *Throttle) Allow(key string) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	if last, seen := t.last[key]; seen && now.Sub(last) < t.interval {
		t.dropped[key]++
		return false, 0
	}
	t.last[key] = now
	suppressed = t.dropped[key]
	delete(t.dropped, key)
	return true, suppressed
}

// KeyFunc says which lines count as the same: lines with equal keys share
// one allowance.
type KeyFunc func(msg string, args []any) string

// ByMessageAndArgs treats lines as the same when their message and every
// argument are.
func ByMessageAndArgs(msg string, args []any) string { return msg + "\x00" + fmt.Sprint(args...) }

// ByMessageAndArg treats lines as the same when their message and the value
// of the named argument (a key-value pair in args) are.
func ByMessageAndArg(name string) KeyFunc {
	return func(msg string, args []any) string {
		key := msg
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == name {
				key += "\x00" + fmt.Sprint(args[i+1])
			}
		}
		return key
	}
}

// Warn returns a function that logs warnings through serve.Logger, at most
// one line per key every interval, adding "suppressed_since_last" with the
// number of lines held back.
func Warn(interval time.Duration, key KeyFunc) func(msg string, args ...any) {
	th := New(interval)
	return func(msg string, args ...any) {
		ok, suppressed := th.Allow(key(msg, args))
		if !ok {
			return
		}
		if suppressed > 0 {
			args = append(args, "suppressed_since_last", suppressed)
		}
		serve.Logger().Warn(msg, args...)
	}
}
