package main

import (
	"testing"
	"time"
)

// TestRetryDelay is the retry schedule: LINEAR waits initial*n, EXPONENTIAL
// doubles from initial, both capped at max_delay_seconds.
func TestRetryDelay(t *testing.T) {
	tests := map[string]struct {
		policy retryPolicy
		want   []time.Duration
	}{
		"linear":           {retryPolicy{InitialDelay: time.Second, MaxDelay: 3 * time.Second}, []time.Duration{1, 2, 3, 3}},
		"exponential":      {retryPolicy{Exponential: true, InitialDelay: time.Second, MaxDelay: 5 * time.Second}, []time.Duration{1, 2, 4, 5}},
		"zero":             {retryPolicy{}, []time.Duration{0, 0, 0, 0}},
		"capped at once":   {retryPolicy{Exponential: true, InitialDelay: 4 * time.Second, MaxDelay: 3 * time.Second}, []time.Duration{3, 3, 3}},
		"linear long":      {retryPolicy{InitialDelay: 2 * time.Second, MaxDelay: 30 * time.Second}, []time.Duration{2, 4, 6, 8, 10}},
		"exponential 1-30": {retryPolicy{Exponential: true, InitialDelay: time.Second, MaxDelay: 30 * time.Second}, []time.Duration{1, 2, 4, 8, 16, 30, 30}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for i, w := range tc.want {
				if got := tc.policy.delay(i + 1); got != w*time.Second {
					t.Fatalf("delay(%d) = %v, want %v", i+1, got, w*time.Second)
				}
			}
		})
	}
}
