package logthrottle

import (
	"testing"
	"time"
)

func TestThrottleLetsOneLinePerKeyAndInterval(t *testing.T) {
	th := New(time.Minute)
	now := time.Unix(0, 0)
	th.Now = func() time.Time { return now }
	steps := []struct {
		name           string
		key            string
		advance        time.Duration
		wantOK         bool
		wantSuppressed int
	}{
		{"first line passes", "a", 0, true, 0},
		{"same key held back", "a", time.Second, false, 0},
		{"held back again", "a", time.Second, false, 0},
		{"other key passes", "b", 0, true, 0},
		{"after the interval, with the count", "a", time.Minute, true, 2},
		{"count reset", "a", time.Minute, true, 0},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		ok, n := th.Allow(s.key)
		if ok != s.wantOK || n != s.wantSuppressed {
			t.Fatalf("%s: allow = %v, %d; want %v, %d", s.name, ok, n, s.wantOK, s.wantSuppressed)
		}
	}
}

func TestKeys(t *testing.T) {
	byAttr := ByMessageAndArg("attribute")
	if byAttr("m", []any{"attribute", "a", "error", "x"}) != byAttr("m", []any{"attribute", "a", "error", "y"}) {
		t.Fatal("ByMessageAndArg: other arguments changed the key")
	}
	if ByMessageAndArgs("m", []any{"a", 1}) == ByMessageAndArgs("m", []any{"a", 2}) {
		t.Fatal("ByMessageAndArgs: arguments ignored")
	}
}
