package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
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

	produced := produceSteadily(ctx, t, g, total, 50*time.Millisecond, spreadRecord)

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
	var adders []func(map[string]int)
	for _, r := range readers {
		adders = append(adders, r.addValues)
	}
	seen := waitEveryValue(t, total, "r-%04d", adders, nil)
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

// spreadRecord is the i-th record of the rebalance tests: keys spread the
// records over the three partitions.
func spreadRecord(i int) *kgo.Record {
	return &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("r-%04d", i))}
}

// addValues counts the values p got into seen.
func (p *getPoller) addValues(seen map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.values {
		seen[v]++
	}
}

// getPoller is an at-least-once HTTP GET client: it polls one path with one
// client identifier, page after page, and records every item it gets.
type getPoller struct {
	g        *Gateway
	path     string
	clientID string

	mu     sync.Mutex
	values []string
	polls  int
	errs   []string
}

func (p *getPoller) run(ctx context.Context) {
	client := &http.Client{Timeout: 30 * time.Second}
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.g.URL(p.path), nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Gravitee-Client-Identifier", p.clientID)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				p.fail(err.Error())
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var page getItems
		switch {
		case err != nil:
			if ctx.Err() == nil {
				p.fail(err.Error())
			}
			continue
		case resp.StatusCode != http.StatusOK:
			p.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
			continue
		case json.Unmarshal(body, &page) != nil:
			p.fail("not JSON: " + string(body))
			continue
		case page.Error != nil:
			p.fail(fmt.Sprintf("error in page: %v", page.Error))
		}
		p.mu.Lock()
		p.polls++
		for _, it := range page.Items {
			p.values = append(p.values, it.Content)
		}
		p.mu.Unlock()
	}
}

func (p *getPoller) fail(s string) {
	p.mu.Lock()
	p.errs = append(p.errs, s)
	p.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
}

func (p *getPoller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.values)
}

// TestRebalanceDuringAtLeastOnceHTTPGetLosesNothing is the SSE test above
// for HTTP GET: at-least-once pollers sharing one client identifier (one
// consumer group) page through a 3-partition topic that is being written to,
// and a second and a third poller join mid-stream. A poll waits up to 1 s
// for its group's kept consumer to finish the previous poll and otherwise
// gets a consumer of its own (plugins/endpoint-kafka/README.md), so polls of
// 1.5 s make each poller that joins add a member: the group rebalances.
// Every record must reach a poller; a page is committed only after it was
// written, so repeats are what at-least-once allows around a rebalance:
// counted and logged, not failed.
func TestRebalanceDuringAtLeastOnceHTTPGetLosesNothing(t *testing.T) {
	api := strings.NewReplacer(
		"messages_limit_count       = 100", "messages_limit_count       = 1000",
		"messages_limit_duration_ms = 1000", "messages_limit_duration_ms = 1500",
	).Replace(faultAPI)
	if api == faultAPI {
		t.Fatal("faultAPI's http-get settings changed: update this test")
	}
	g := StartGateway(t, api, map[string]int{"faults": 3})
	const total = 900
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	produced := produceSteadily(ctx, t, g, total, 50*time.Millisecond, spreadRecord)

	group := uniqueID("getrebalance")
	var pollers []*getPoller
	var wg sync.WaitGroup
	join := func() {
		p := &getPoller{g: g, path: "/faults", clientID: group}
		pollers = append(pollers, p)
		wg.Add(1)
		go func() { defer wg.Done(); p.run(ctx) }()
	}
	sum := func() int {
		n := 0
		for _, p := range pollers {
			n += p.count()
		}
		return n
	}
	// The group's size, sampled while the pollers read: the rebalances are
	// real only if overlapping polls made it grow.
	maxMembers := 0
	sample := func() {
		maxMembers = max(maxMembers, groupMembers(t, g, group))
	}
	waitSum := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; sum() < n; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("pollers stuck at %d of %d records", sum(), n)
			}
			if i%5 == 0 {
				sample()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	join()
	waitSum(150)
	join() // first rebalance
	waitSum(400)
	join() // second rebalance
	waitSum(600)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	var adders []func(map[string]int)
	for _, p := range pollers {
		adders = append(adders, p.addValues)
	}
	seen := waitEveryValue(t, total, "r-%04d", adders, sample)
	cancel()
	wg.Wait()
	dups := 0
	var repeated []string
	for v, n := range seen {
		dups += n - 1
		if n > 1 {
			repeated = append(repeated, v)
		}
	}
	sort.Strings(repeated)
	per := make([]int, len(pollers))
	polls := make([]int, len(pollers))
	for i, p := range pollers {
		per[i], polls[i] = p.count(), p.polls
		for _, e := range p.errs {
			t.Errorf("poller %d: %s", i+1, e)
		}
	}
	if maxMembers < 2 {
		t.Errorf("the group never had more than %d member: no rebalance happened", maxMembers)
	}
	if len(repeated) > 0 {
		t.Logf("repeated: %v", repeated[:min(len(repeated), 20)])
	}
	t.Logf("%d records, 0 lost, %d repeated across the rebalances (at-least-once); records per poller %v in %v polls; group of up to %d members", total, dups, per, polls, maxMembers)
	g.noErrorLogs(t)
}
