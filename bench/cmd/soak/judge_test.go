package main

import (
	"testing"
	"time"
)

// TestJudgeFailsOnlyASustainedRise checks the verdict: a flat series with a
// spike passes, a steady leak fails, a warm-up climb in the first quarter
// passes.
func TestJudgeFailsOnlyASustainedRise(t *testing.T) {
	mk := func(f func(i int) int64) []sample {
		s := make([]sample, 40)
		for i := range s {
			s[i] = sample{at: time.Duration(i) * 10 * time.Second, coreGoroutines: 100, coreRSS: 100 << 20,
				pluginRSS: 50 << 20, coreFDs: 30, pluginFDs: 60, coreThreads: 10, pluginThreads: 40}
			s[i].coreGoroutines = f(i)
		}
		return s
	}
	ok := func(s []sample) bool {
		for _, v := range judge(s) {
			if v.name == "core_goroutines" {
				return v.ok
			}
		}
		t.Fatal("no verdict for core_goroutines")
		return false
	}
	if !ok(mk(func(i int) int64 { return 100 })) {
		t.Error("flat series failed")
	}
	if !ok(mk(func(i int) int64 {
		if i == 35 {
			return 5000
		}
		return 100
	})) {
		t.Error("a single spike failed")
	}
	if !ok(mk(func(i int) int64 { return int64(min(i, 10)) * 30 })) {
		t.Error("a warm-up climb failed")
	}
	if ok(mk(func(i int) int64 { return 100 + int64(i)*3 })) {
		t.Error("a steady leak of 3 goroutines per sample passed")
	}
}

// TestJudgeCoversPushLag checks that the push subscriptions' lag is judged:
// a backlog that keeps growing fails.
func TestJudgeCoversPushLag(t *testing.T) {
	s := make([]sample, 40)
	for i := range s {
		s[i] = sample{at: time.Duration(i) * 10 * time.Second, pushLag: 100 + int64(i)*200}
	}
	for _, v := range judge(s) {
		if v.name == "push_lag" {
			if v.ok {
				t.Errorf("a growing push lag passed: %s", v)
			}
			return
		}
	}
	t.Fatal("no verdict for push_lag")
}
