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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startHubPlugin is startPlugin with the hub settings set before the plugin
// serves (the fields are read by its goroutines).
func startHubPlugin(t *testing.T, linger time.Duration, queue int) (*plugintest.Harness, *Kafka) {
	t.Helper()
	k := NewKafka(testLogger(t))
	k.metadataRefresh = 100 * time.Millisecond
	k.hubLinger, k.hubQueue = linger, queue
	h := plugintest.Start(t, k)
	h.Timeout = wait
	return h, k
}

// waitFor polls cond until it holds; it fails the test after wait. Only
// that something happens is asserted, never how soon.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkPartitionOrder checks that ms holds, per partition, exactly the
// values want lists for it, in order.
func checkPartitionOrder(t *testing.T, name string, ms []*gateway.Message, want map[int][]string) {
	t.Helper()
	got := map[int][]string{}
	for _, m := range ms {
		p := asInt(m.Metadata["partition"])
		got[p] = append(got[p], string(m.Content))
	}
	for p, w := range want {
		if !slices.Equal(got[p], w) {
			t.Fatalf("%s: partition %d got %v, want %v", name, p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: records of partitions %v, want %d partitions", name, got, len(want))
	}
}

// Two QoS none streams of the same topics share one consumer and both get
// every record produced after they attached, in order per partition; a
// stream of other topics gets a consumer of its own; a hub closes once its
// last stream left.
func TestHubSharesOneConsumer(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"shared": 2, "other": 1})
	h, k := startHubPlugin(t, 0, defaultHubQueue)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"shared"}}))

	s1, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("client-1", nil), QoS: "none"})
	s2, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("client-2", nil), QoS: "none"})
	if n, hubs := k.consumersOpened.Load(), k.hubs.size(); n != 1 || hubs != 1 {
		t.Fatalf("two streams of the same topics opened %d consumers in %d hubs, want 1 in 1", n, hubs)
	}

	want := map[int][]string{}
	var recs []*kgo.Record
	for i := range 30 {
		p := int32(i % 2)
		v := fmt.Sprintf("p%d-%d", p, i)
		recs = append(recs, &kgo.Record{Topic: "shared", Partition: p, Value: []byte(v)})
		want[int(p)] = append(want[int(p)], v)
	}
	c.produce(t, recs...)
	checkPartitionOrder(t, "stream 1", collect(t, s1, 30), want)
	checkPartitionOrder(t, "stream 2", collect(t, s2, 30), want)

	s3, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", QoS: "none",
		Context: subCtx("client-3", map[string]any{attrKafkaTopics: "other"})})
	if n, hubs := k.consumersOpened.Load(), k.hubs.size(); n != 2 || hubs != 2 {
		t.Fatalf("a stream of other topics: %d consumers in %d hubs, want 2 in 2", n, hubs)
	}
	c.produceValues(t, "other", "o1")
	if got := collect(t, s3, 1); string(got[0].Content) != "o1" {
		t.Fatalf("stream 3 got %v", contents(got))
	}
	// Nothing of "other" reached the first streams: their next record is
	// the sentinel of their own topic.
	for _, s := range []*plugintest.Subscription{s1, s2} {
		if m := expectOnly(t, c, s, "shared", "sentinel"); asInt(m.Metadata["partition"]) != 0 {
			t.Fatalf("sentinel from partition %v", m.Metadata["partition"])
		}
	}

	s1.Close()
	waitFor(t, "the first stream ended", func() bool {
		k.subsMu.Lock()
		defer k.subsMu.Unlock()
		return len(k.subs) == 2
	})
	if k.hubs.size() != 2 || k.consumersClosed.Load() != 0 {
		t.Fatal("a hub closed while a stream was still attached")
	}
	closeAndWait(t, k, s2, s3)
	waitFor(t, "both hubs closed", func() bool { return k.hubs.size() == 0 && k.consumersClosed.Load() == 2 })
}

// A hub lingers after its last stream: a stream that comes back reuses it.
// Unconfiguring the instance closes it.
func TestHubLingersForReconnects(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"linger": 1})
	h, k := startHubPlugin(t, time.Hour, defaultHubQueue)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"linger"}}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("client", nil), QoS: "none"}

	s, _ := subscribe(t, h, req)
	closeAndWait(t, k, s)
	if k.hubs.size() != 1 || k.consumersClosed.Load() != 0 {
		t.Fatal("the hub closed without lingering")
	}
	s, _ = subscribe(t, h, req)
	expectOnly(t, c, s, "linger", "again")
	if n := k.consumersOpened.Load(); n != 1 {
		t.Fatalf("a reconnect within the linger opened %d consumers, want 1", n)
	}
	closeAndWait(t, k, s)
	h.Unconfigure(t, "i")
	waitFor(t, "hub closed on unconfigure", func() bool { return k.hubs.size() == 0 && k.consumersClosed.Load() == 1 })
}

// With auto_offset_reset = earliest, a stream that attaches after the hub
// read the topic still gets it from the start (the hub's replay); a group
// with committed offsets starts from them, on a consumer of its own.
func TestHubEarliestReplayAndCommittedGroup(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"early": 1})
	c.produceValues(t, "early", "m1", "m2", "m3")
	h, k := startHubPlugin(t, 0, defaultHubQueue)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"early"}, "auto_offset_reset": "earliest"}))

	s1, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("first", nil), QoS: "none"})
	if got := contents(collect(t, s1, 3)); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("first stream got %v", got)
	}
	s2, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("second", nil), QoS: "none"})
	if got := contents(collect(t, s2, 3)); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("later stream got %v", got)
	}
	if n := k.consumersOpened.Load(); n != 1 {
		t.Fatalf("%d consumers, want 1 shared", n)
	}

	c.client(t)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "early", Partition: 0, At: 2, LeaderEpoch: -1})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.adm.CommitOffsets(ctx, "committed", offs); err != nil {
		t.Fatal(err)
	}
	s3, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("committed", nil), QoS: "none"})
	if got := contents(collect(t, s3, 1)); !slices.Equal(got, []string{"m3"}) {
		t.Fatalf("a group with commits got %v, want its commit's next record", got)
	}
	if n := k.consumersOpened.Load(); n != 2 {
		t.Fatalf("%d consumers, want the shared one and the committed group's own", n)
	}
	closeAndWait(t, k, s1, s2, s3)
}

// fakeSub is an endpoint.Subscription called directly (no gRPC buffers in
// between), so a test decides exactly when Send returns.
type fakeSub struct {
	gate    chan struct{} // when non-nil, Send waits for it to close
	entered chan struct{} // closed by the first Send

	mu    sync.Mutex
	ready bool
	msgs  []*gateway.Message
	once  sync.Once
}

func newFakeSub(blocking bool) *fakeSub {
	f := &fakeSub{entered: make(chan struct{})}
	if blocking {
		f.gate = make(chan struct{})
	}
	return f
}

func (f *fakeSub) Ready(string) error {
	f.mu.Lock()
	f.ready = true
	f.mu.Unlock()
	return nil
}

func (f *fakeSub) Send(ms []*gateway.Message) error {
	f.once.Do(func() { close(f.entered) })
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, ms...)
	f.mu.Unlock()
	return nil
}

func (f *fakeSub) Acks() <-chan uint64 { return nil }

func (f *fakeSub) isReady() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeSub) received() []*gateway.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

// A stream that does not read does not hold the others back: once it is
// more than the queue behind, it is dropped with FAILURE_CONSUMER_TOO_SLOW
// while the other stream gets every record.
func TestHubSlowStreamDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	const queue = 8
	c := startCluster(t, map[string]int32{"busy": 1})
	h, k := startHubPlugin(t, 0, queue)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"busy"}}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast, slow := newFakeSub(false), newFakeSub(true)
	slowDone := make(chan error, 1)
	go func() {
		_ = k.Subscribe(ctx, &endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("fast", nil), QoS: "none"}, fast)
	}()
	go func() {
		slowDone <- k.Subscribe(ctx, &endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("slow", nil), QoS: "none"}, slow)
	}()
	waitFor(t, "both streams ready", func() bool { return fast.isReady() && slow.isReady() })

	// The slow stream takes the first record and then stops reading.
	c.produceValues(t, "busy", "v0")
	select {
	case <-slow.entered:
	case <-time.After(wait):
		t.Fatal("the slow stream was never sent anything")
	}
	const n = 5 * queue
	var want []string
	want = append(want, "v0")
	// One record at a time, each once the fast stream has it: the fast
	// stream never has more than one queued, the slow one piles them up.
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("v%d", i)
		want = append(want, v)
		c.produceValues(t, "busy", v)
		waitFor(t, "the fast stream got "+v, func() bool { return len(fast.received()) >= i+1 })
	}
	if got := contents(fast.received()); !slices.Equal(got, want) {
		t.Fatalf("fast stream got %v", got)
	}

	close(slow.gate)
	select {
	case <-slowDone:
	case <-time.After(wait):
		t.Fatal("the slow stream was never ended")
	}
	got := slow.received()
	if len(got) == 0 || got[len(got)-1].Error == nil || got[len(got)-1].Error.Key != keyConsumerTooSlow {
		t.Fatalf("slow stream did not end with %s: %d messages, last %+v", keyConsumerTooSlow, len(got), got[len(got)-1])
	}
	if len(got)-1 > queue+1 {
		t.Fatalf("slow stream got %d records, more than it had room for", len(got)-1)
	}
	if n := k.consumersOpened.Load(); n != 1 {
		t.Fatalf("%d consumers, want 1", n)
	}
}
