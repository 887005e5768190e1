package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinCounter counts the JoinGroup requests the broker receives per group:
// evidence of group joins from the broker's side, independent of the
// plugin's own bookkeeping.
type joinCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func countJoins(c *cluster) *joinCounter {
	jc := &joinCounter{n: map[string]int{}}
	c.ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		jc.mu.Lock()
		jc.n[req.(*kmsg.JoinGroupRequest).Group]++
		jc.mu.Unlock()
		return nil, nil, false // observe only; the broker handles it
	})
	return jc
}

func (jc *joinCounter) of(group string) int {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	return jc.n[group]
}

// pollPage runs one bounded poll as HTTP GET does: subscribe, take n
// messages (acknowledged), let the acknowledgements land, end the poll.
func pollPage(t *testing.T, h *plugintest.Harness, k *Kafka, req endpoint.SubscribeRequest, n int) (string, []*gateway.Message) {
	t.Helper()
	s, cursor := subscribe(t, h, req)
	var got []*gateway.Message
	if n > 0 {
		got = collect(t, s, n)
	}
	// The core half-closes the stream after the last acknowledgement;
	// the harness cancels it, so the test waits for the acknowledgements.
	waitAcksApplied(t, k)
	closeAndWait(t, k, s)
	return cursor, got
}

// keptJoins is the number of group sessions the kept consumer of group has
// set up, or -1 when none is kept.
func keptJoins(k *Kafka, group string) int {
	k.sessions.mu.Lock()
	defer k.sessions.mu.Unlock()
	for key, l := range k.sessions.kept {
		if key.group == group && len(l) > 0 {
			s := l[len(l)-1]
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.joins
		}
	}
	return -1
}

// waitGroupEmpty waits until group has no member: its consumers left.
func waitGroupEmpty(t *testing.T, c *cluster, group string) {
	t.Helper()
	c.client(t)
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		gs, err := c.adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil {
			if g, ok := gs[group]; ok && g.Err == nil && len(g.Members) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still has members (%v)", group, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Polls of one group page through a topic on one consumer: no join after
// the first poll, and the records fetched past each page's limit come
// first in the next page, none lost and none twice.
func TestKeptSessionPages(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		qos        string
		partitions int32
	}{
		"auto":                       {qos: "auto", partitions: 1},
		"at-least-once":              {qos: "at-least-once", partitions: 1},
		"at-most-once":               {qos: "at-most-once", partitions: 1},
		"at-least-once 2 partitions": {qos: "at-least-once", partitions: 2},
		"at-most-once 2 partitions":  {qos: "at-most-once", partitions: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t, map[string]int32{"t": tc.partitions})
			joins := countJoins(c)
			var recs []*kgo.Record
			var want []string
			for i := range 10 {
				v := fmt.Sprintf("v%d", i)
				want = append(want, v)
				recs = append(recs, &kgo.Record{Topic: "t", Partition: int32(i) % tc.partitions, Value: []byte(v)})
			}
			c.produce(t, recs...)
			h, k := startPlugin(t)
			configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}, "auto_offset_reset": "earliest"}))
			req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("pager", nil), QoS: tc.qos, Limit: 3}

			var got []string
			_, page := pollPage(t, h, k, req, 3)
			got = append(got, contents(page)...)
			warm := joins.of("pager")
			if warm == 0 || keptJoins(k, "pager") != 1 {
				t.Fatalf("first poll: %d JoinGroup requests, kept consumer joined %d times", warm, keptJoins(k, "pager"))
			}
			for _, n := range []int{3, 3, 1} {
				_, page := pollPage(t, h, k, req, n)
				if len(page) != n {
					t.Fatalf("page of %d, want %d", len(page), n)
				}
				got = append(got, contents(page)...)
			}
			if j := joins.of("pager"); j != warm || keptJoins(k, "pager") != 1 {
				t.Fatalf("later polls joined again: %d JoinGroup requests after the first poll's %d", j, warm)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want each of %v once", got, want)
			}
			// Nothing older waits: the next record is the next page.
			s, _ := subscribe(t, h, req)
			expectOnly(t, c, s, "t", "sentinel")
			waitAcksApplied(t, k)
			closeAndWait(t, k, s)
			if k.sessions.size() != 1 {
				t.Fatalf("%d kept consumers, want 1", k.sessions.size())
			}
		})
	}
}

// A cursor at the kept position (the previous page's nextCursor) costs
// nothing; a cursor elsewhere moves the kept consumer there and the next
// poll without cursor continues from it.
func TestKeptSessionCursorSeek(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	joins := countJoins(c)
	c.produceValues(t, "t", "m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}, "auto_offset_reset": "earliest"}))
	id := func(o int) string { return b64(fmt.Sprintf("t@0#%d", o)) }
	req := func(cursor string) endpoint.SubscribeRequest {
		return endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("seeker", nil), QoS: "at-least-once", Limit: 2, LastID: cursor}
	}
	steps := []struct {
		name      string
		cursor    string
		wantReady string
		want      []string
		joins     int // group sessions of the kept consumer after the step
	}{
		{name: "cold, no cursor", wantReady: id(-1), want: []string{"m0", "m1"}, joins: 1},
		{name: "next cursor", cursor: id(1), wantReady: id(1), want: []string{"m2", "m3"}, joins: 1},
		{name: "no cursor continues", wantReady: id(3), want: []string{"m4", "m5"}, joins: 1},
		{name: "back", cursor: id(0), wantReady: id(0), want: []string{"m1", "m2"}, joins: 2},
		{name: "continues after the seek", wantReady: id(2), want: []string{"m3", "m4"}, joins: 2},
		{name: "forward", cursor: id(6), wantReady: id(6), want: []string{"m7"}, joins: 3},
	}
	var warm int
	for i, st := range steps {
		n := len(st.want)
		ready, page := pollPage(t, h, k, req(st.cursor), n)
		if ready != st.wantReady || !slices.Equal(contents(page), st.want) {
			t.Fatalf("%s: ready %q items %v, want %q %v", st.name, ready, contents(page), st.wantReady, st.want)
		}
		for _, m := range page {
			if m.ID != id(asInt(m.Metadata["offset"])) {
				t.Fatalf("%s: id %q at offset %v", st.name, m.ID, m.Metadata["offset"])
			}
		}
		if j := keptJoins(k, "seeker"); j != st.joins {
			t.Fatalf("%s: kept consumer set up %d group sessions, want %d", st.name, j, st.joins)
		}
		if i == 0 {
			warm = joins.of("seeker")
		} else if st.joins == 1 && joins.of("seeker") != warm {
			t.Fatalf("%s: JoinGroup requests %d, want %d", st.name, joins.of("seeker"), warm)
		}
	}
}

// A kept consumer is closed (committing what was acknowledged and leaving
// its group) when idle past the bound, on Unconfigure, on reload and on
// Drain; the next poll starts a new one from the committed offsets.
func TestKeptSessionClosed(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, h *plugintest.Harness, k *Kafka, addrs string){
		"idle": func(t *testing.T, h *plugintest.Harness, k *Kafka, _ string) {
			if n := k.sessions.evictIdle(time.Now().Add(-time.Second)); n != 0 {
				t.Fatalf("evicted %d consumers used within the idle bound", n)
			}
			if n := k.sessions.evictIdle(time.Now().Add(defaultSessionIdle)); n != 1 {
				t.Fatalf("evicted %d idle consumers, want 1", n)
			}
		},
		"unconfigure": func(t *testing.T, h *plugintest.Harness, k *Kafka, _ string) {
			h.Unconfigure(t, "i")
		},
		"reload": func(t *testing.T, h *plugintest.Harness, k *Kafka, addrs string) {
			configure(t, h, "i", consumerConfig(addrs, map[string]any{"topics": []string{"t"}, "auto_offset_reset": "earliest"}))
		},
		"drain": func(t *testing.T, h *plugintest.Harness, k *Kafka, _ string) {
			if err := h.Drain(t, wait); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, closeIt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t, map[string]int32{"t": 1})
			c.produceValues(t, "t", "m0", "m1", "m2")
			h, k := startPlugin(t)
			k.commitInterval = time.Hour // only closing commits
			configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}, "auto_offset_reset": "earliest"}))
			req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("closing", nil), QoS: "at-least-once", Limit: 2}
			pollPage(t, h, k, req, 2)
			if k.sessions.size() != 1 {
				t.Fatalf("%d kept consumers after a poll, want 1", k.sessions.size())
			}
			closeIt(t, h, k, c.addrs)
			if k.sessions.size() != 0 {
				t.Fatalf("%d kept consumers left", k.sessions.size())
			}
			waitGroupEmpty(t, c, "closing")
			if o := c.committed(t, "closing", "t", 0); o != 2 {
				t.Fatalf("committed %d on close, want 2", o)
			}
			if name == "reload" || name == "idle" {
				// A new consumer starts from the committed offset.
				if _, page := pollPage(t, h, k, req, 1); string(page[0].Content) != "m2" {
					t.Fatalf("after close: %v", contents(page))
				}
			}
		})
	}
}

// A poll that ends before its deliveries are acknowledged (the client left
// before its page was written) does not keep its consumer, which is past
// those records: the next poll reads them again (at-least-once). QoS none
// never keeps one (each request restarts from auto_offset_reset).
func TestKeptSessionNotKept(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	c.produceValues(t, "t", "m0", "m1", "m2")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}, "auto_offset_reset": "earliest"}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("gone", nil), QoS: "at-least-once", Limit: 2}

	s, _ := subscribe(t, h, req)
	n := 0
	for n < 2 {
		b := s.Next(t, wait)
		if b == nil {
			t.Fatalf("subscription ended: %v", s.Failure())
		}
		n += len(b) // never acknowledged
	}
	closeAndWait(t, k, s)
	if k.sessions.size() != 0 {
		t.Fatal("a consumer with unacknowledged deliveries was kept")
	}
	if _, page := pollPage(t, h, k, req, 2); !slices.Equal(contents(page), []string{"m0", "m1"}) {
		t.Fatalf("after an unacknowledged page: %v", contents(page))
	}

	none := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("none", nil), QoS: "none", Limit: 1}
	pollPage(t, h, k, none, 1)
	if _, page := pollPage(t, h, k, none, 1); string(page[0].Content) != "m0" {
		t.Fatalf("QoS none continued from a kept consumer: %v", contents(page))
	}
}
