package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// wait bounds every wait in behaviour tests; tests never depend on how long
// anything takes, only on it happening before this.
const wait = 30 * time.Second

// cluster is an embedded fake Kafka broker for one test.
type cluster struct {
	*kfake.Cluster
	addrs string
	kcl   *kgo.Client
	adm   *kadm.Client
}

// startCluster starts a one-broker cluster with topics (name: partitions).
func startCluster(t *testing.T, topics map[string]int32, opts ...kfake.Opt) *cluster {
	t.Helper()
	for name, n := range topics {
		opts = append(opts, kfake.SeedTopics(n, name))
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl := &cluster{Cluster: c, addrs: strings.Join(c.ListenAddrs(), ",")}
	return cl
}

// client returns a franz-go client for producing and reading in tests, so
// what the plugin writes is checked by another Kafka implementation.
func (c *cluster) client(t *testing.T) *kgo.Client {
	t.Helper()
	if c.kcl == nil {
		kcl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.addrs, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kcl.Close)
		c.kcl = kcl
		c.adm = kadm.NewClient(kcl)
	}
	return c.kcl
}

// produce writes records with explicit partitions (Partition field).
func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.client(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceValues writes values to partition 0 of topic, with key "key".
func (c *cluster) produceValues(t *testing.T, topic string, values ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("key"), Value: []byte(v)})
	}
	c.produce(t, recs...)
}

// readAll reads every record of topic from the start (the topic must hold
// exactly n records).
func (c *cluster) readAll(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	kcl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.addrs, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := kcl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(out), n, topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("read %d records of %s, want %d", len(out), topic, n)
	}
	return out
}

// committed returns the group's committed offset of topic partition p, or -1.
func (c *cluster) committed(t *testing.T, group, topic string, p int32) int64 {
	t.Helper()
	c.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	offs, err := c.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// A group that never joined nor committed (QoS none streams
		// share a groupless consumer) has no offsets.
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, p); ok && o.Err == nil {
		return o.At
	}
	return -1
}

// waitCommitted waits until the group's committed offset of topic
// partition p reaches want. Acknowledgements travel asynchronously, so a
// test that closes a subscription right after acknowledging could race its
// own acknowledgement; periodic commits make the offset appear without it.
func (c *cluster) waitCommitted(t *testing.T, group, topic string, p int32, want int64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := c.committed(t, group, topic, p)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("committed offset %d, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createTopic creates a topic while a test runs.
func (c *cluster) createTopic(t *testing.T, topic string, partitions int32) {
	t.Helper()
	c.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// startPlugin serves a fresh plugin through the test harness.
func startPlugin(t *testing.T) (*plugintest.Harness, *Kafka) {
	t.Helper()
	k := NewKafka(testLogger(t))
	k.metadataRefresh = 100 * time.Millisecond
	// The instances' broker checks outlive the harness otherwise.
	t.Cleanup(func() {
		k.Range(func(_ string, inst *instance) bool {
			inst.health.close()
			return true
		})
	})
	h := plugintest.Start(t, k)
	h.Timeout = wait
	return h, k
}

// configure configures instance id with a JSON configuration.
func configure(t *testing.T, h *plugintest.Harness, id string, cfg map[string]any) {
	t.Helper()
	if d := h.Configure(t, id, "kafka", cfg); d.HasErrors() {
		t.Fatal(d.Err())
	}
}

// consumerConfig is a configuration consuming topics.
func consumerConfig(addrs string, consumer map[string]any) map[string]any {
	consumer["enabled"] = true
	return map[string]any{"bootstrap_servers": addrs, "consumer": consumer}
}

// subCtx is a subscribing client's context with a client identifier.
func subCtx(clientID string, attrs map[string]any) *gateway.Context {
	return &gateway.Context{APIID: "api", Request: &gateway.Request{ID: "req", ClientIdentifier: clientID, Method: "GET", Headers: gateway.Headers{}}, Attributes: attrs}
}

// collect reads batches until n messages arrived, acknowledging each batch.
func collect(t *testing.T, s *plugintest.Subscription, n int) []*gateway.Message {
	t.Helper()
	var out []*gateway.Message
	for len(out) < n {
		b := s.Next(t, wait)
		if b == nil {
			t.Fatalf("got %d messages, want %d; subscription failure: %v", len(out), n, s.Failure())
		}
		for _, m := range b {
			if m.Error != nil {
				t.Fatalf("error message: %+v", m.Error)
			}
		}
		out = append(out, b...)
		s.Ack(t, b[len(b)-1].Tag)
	}
	return out
}

// contents lists message contents.
func contents(ms []*gateway.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Content))
	}
	return out
}

// closeAndWait closes subscriptions and waits until the plugin has ended
// every subscription, so their commits and group departures are done.
func closeAndWait(t *testing.T, k *Kafka, subs ...*plugintest.Subscription) {
	t.Helper()
	for _, s := range subs {
		s.Close()
	}
	deadline := time.Now().Add(wait)
	for {
		k.subsMu.Lock()
		n := len(k.subs)
		k.subsMu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions still running", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// subscribe starts a subscription and waits for Ready.
func subscribe(t *testing.T, h *plugintest.Harness, req endpoint.SubscribeRequest) (*plugintest.Subscription, string) {
	t.Helper()
	s := h.Subscribe(t, req)
	return s, s.Ready(t, wait)
}
