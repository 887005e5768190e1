package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRebalanceDuringAtLeastOnceSSELosesNothing reads a 3-partition topic
// that is being written to with at-least-once SSE clients sharing one
// consumer group (one client identifier), and makes the group rebalance
// twice mid-stream by adding a second and a third reader. Every record must
// reach one of the readers; repeats across readers are what at-least-once
// allows around a rebalance (offsets are committed after the write), so
// they are counted, not failed. Readers only join: a reader that left would
// take with it what was written to its socket but not yet read, which is
// the client's loss, not the gateway's.
func TestRebalanceDuringAtLeastOnceSSELosesNothing(t *testing.T) {
	g := StartGateway(t, faultAPI, map[string]int{"faults": 3})
	const total = 900
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	prod := g.Kgo(t, kgo.DefaultProduceTopic("faults"))
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 10 {
			var recs []*kgo.Record
			for j := i; j < i+10; j++ {
				// Keys spread the records over the three partitions.
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", j%7)), Value: []byte(fmt.Sprintf("r-%04d", j))})
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		produced <- nil
	}()

	group := uniqueID("rebalance")
	var readers []*resumingSSE
	join := func() {
		c := &resumingSSE{g: g, path: "/faults", clientID: group, progress: make(chan struct{}, 1)}
		readers = append(readers, c)
		go c.run(ctx)
	}
	sum := func() int {
		n := 0
		for _, r := range readers {
			n += r.count()
		}
		return n
	}
	waitSum := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for sum() < n {
			if time.Now().After(deadline) {
				t.Fatalf("readers stuck at %d of %d events", sum(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	join()
	waitSum(150)
	join() // first rebalance
	waitSum(400)
	join() // second rebalance
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen = map[string]int{}
		for _, r := range readers {
			r.mu.Lock()
			for _, v := range r.values {
				seen[v]++
			}
			r.mu.Unlock()
		}
		if len(seen) == total {
			break
		}
		if time.Now().After(deadline) {
			var missing []string
			for i := 0; i < total && len(missing) < 10; i++ {
				if v := fmt.Sprintf("r-%04d", i); seen[v] == 0 {
					missing = append(missing, v)
				}
			}
			t.Fatalf("%d of %d records reached a reader; missing e.g. %v", len(seen), total, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	per := make([]int, len(readers))
	for i, r := range readers {
		per[i] = r.count()
	}
	t.Logf("%d records, 0 lost, %d repeated across the two rebalances (at-least-once); events per reader %v", total, dups, per)
}
