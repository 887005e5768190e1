package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWebhookAcrossBrokerRestart kills the broker while an at-least-once
// push subscription delivers, and starts it again: every record is delivered
// at least once, the first delivery of each in order (one partition), and
// the subscription is running again afterwards, without touching the
// gateway. Repeats are counted: at-least-once allows them where a commit was
// lost with the broker.
func TestWebhookAcrossBrokerRestart(t *testing.T) {
	b := newTestBroker(t, map[string]int{"hooks": 1, "hooks-dlq": 1})
	r := newReceiver(t, nil)
	g := startGatewayOn(t, hookAPI("at-least-once", map[string]string{"restart-hook": `
      callback_url = "` + r.srv.URL + `/in"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "LINEAR"
        max_attempts          = 1000
        initial_delay_seconds = 1
        max_delay_seconds     = 1
      }`}), b.Addr())
	waitState(t, g, "restart-hook", "running", 30*time.Second)
	produceN(t, g, "r", 1, 50)
	r.waitDelivered(t, 50, 30*time.Second)
	time.Sleep(3 * time.Second) // past the consumer's commit interval (1 s)

	// Records still being delivered and committed when the broker dies;
	// those before are committed (the wait above).
	produceN(t, g, "r", 51, 100)
	b.kill()
	killed := time.Now()
	time.Sleep(b.holdDown())
	b.start()
	back := time.Now()
	produceN(t, g, "r", 101, 150)
	want := seq("r", 1, 150)
	var got, firsts []string
	repeats := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, _ = r.delivered()
		seen := map[string]bool{}
		firsts, repeats = firsts[:0], 0
		for _, body := range got {
			if seen[body] {
				repeats++
				continue
			}
			seen[body] = true
			firsts = append(firsts, body)
		}
		if len(firsts) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered 90 s after the broker was back: %q", len(firsts), len(want), firsts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(firsts, ",") != strings.Join(want, ",") {
		t.Fatalf("first deliveries %q, want %q in order", firsts, want)
	}
	st := waitState(t, g, "restart-hook", "running", 30*time.Second)
	t.Logf("150 records, 0 lost, %d repeated; broker down %v; all delivered %v after it was back; state %v",
		repeats, back.Sub(killed).Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond), st["state"])
	if repeats > 50 {
		t.Errorf("%d repeats: more than the 50 records in flight at the kill, so committed positions were lost", repeats)
	}
	if fmt.Sprint(st["state"]) != "running" {
		t.Fatalf("subscription state %v after the restart, want running", st["state"])
	}
}
