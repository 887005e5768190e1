package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Java's Utils.murmur2 of these inputs, from Kafka's UtilsTest, as signed
// 32-bit values; the default partitioner uses (hash & 0x7fffffff) % n.
var javaMurmur2 = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc": 479470107,
}

func TestPartitionerMatchesJava(t *testing.T) {
	p := sarama.NewMurmur2Partitioner("t")
	for key, h := range javaMurmur2 {
		for _, n := range []int32{1, 3, 7, 100, 1024} {
			want := (h & 0x7fffffff) % n
			got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
			if err != nil || got != want {
				t.Errorf("partition of %q over %d = %d, %v; want %d (Java)", key, n, got, err, want)
			}
		}
	}
}

// docs/behaviour.md 7.5: the record value is the exact body, request headers become
// record headers.
func TestPublishValueAndHeaders(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	h, _ := startPlugin(t)
	configure(t, h, "i", map[string]any{"bootstrap_servers": c.addrs, "producer": map[string]any{"enabled": true, "topics": []string{"test-topic"}}})
	body := []byte(`{"field":"value"}`)
	msg := &gateway.Message{Content: body, Headers: gateway.Headers{"X-Test-Header": {"header-value"}, "Multi": {"a", "b"}}}
	if f := h.Publish(t, "i", subCtx("c", nil), msg); f != nil {
		t.Fatal(f)
	}
	r := c.readAll(t, "test-topic", 1)[0]
	if string(r.Value) != string(body) || r.Key != nil {
		t.Fatalf("record value %q key %q", r.Value, r.Key)
	}
	got := map[string][]string{}
	for _, hd := range r.Headers {
		got[hd.Key] = append(got[hd.Key], string(hd.Value))
	}
	if fmt.Sprint(got["X-Test-Header"]) != "[header-value]" || fmt.Sprint(got["Multi"]) != "[a b]" || len(got) != 2 {
		t.Fatalf("record headers %v", got)
	}
}

// docs/behaviour.md 3: message attributes choose topics (comma list, trimmed), the
// record is sent to every one of them; the key comes from attributes.
func TestPublishFanOutAndKeys(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1, "test-topic-message-attribute": 1, "another-topic-override": 1, "ctx-topic": 1, "keyed": 8})
	h, _ := startPlugin(t)
	configure(t, h, "i", map[string]any{"bootstrap_servers": c.addrs, "producer": map[string]any{"enabled": true, "topics": []string{"test-topic"}}})

	fan := &gateway.Message{Content: []byte("fan"), Attributes: map[string]any{
		"gravitee.attribute.kafka.topics":    "test-topic-message-attribute, another-topic-override",
		"gravitee.attribute.kafka.recordKey": "mk",
	}}
	plain := &gateway.Message{Content: []byte("plain")}
	if f := h.Publish(t, "i", subCtx("c", nil), fan, plain); f != nil {
		t.Fatal(f)
	}
	for _, topic := range []string{"test-topic-message-attribute", "another-topic-override"} {
		r := c.readAll(t, topic, 1)[0]
		if string(r.Value) != "fan" || string(r.Key) != "mk" {
			t.Fatalf("%s: value %q key %q", topic, r.Value, r.Key)
		}
	}
	if r := c.readAll(t, "test-topic", 1)[0]; string(r.Value) != "plain" || r.Key != nil {
		t.Fatalf("test-topic: value %q key %q", r.Value, r.Key)
	}

	// Context attributes apply to the whole batch.
	ctx := subCtx("c", map[string]any{"gravitee.attribute.kafka.topics": "ctx-topic", "gravitee.attribute.endpoint.kafka.recordKey": "ck"})
	if f := h.Publish(t, "i", ctx, &gateway.Message{Content: []byte("c1")}); f != nil {
		t.Fatal(f)
	}
	if r := c.readAll(t, "ctx-topic", 1)[0]; string(r.Value) != "c1" || string(r.Key) != "ck" {
		t.Fatalf("ctx-topic: value %q key %q", r.Value, r.Key)
	}

	// One key, one partition, the one Java's partitioner picks.
	var batch []*gateway.Message
	for i := range 20 {
		batch = append(batch, &gateway.Message{Content: fmt.Appendf(nil, "k%d", i), Attributes: map[string]any{"gravitee.attribute.kafka.recordKey": "foobar"}})
	}
	if f := h.Publish(t, "i", subCtx("c", map[string]any{"gravitee.attribute.kafka.topics": "keyed"}), batch...); f != nil {
		t.Fatal(f)
	}
	want := (javaMurmur2["foobar"] & 0x7fffffff) % 8
	for _, r := range c.readAll(t, "keyed", 20) {
		if r.Partition != want {
			t.Fatalf("record %q on partition %d, want %d", r.Value, r.Partition, want)
		}
	}
}

func TestPublishDisabledAndInvalid(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	h, _ := startPlugin(t)
	configure(t, h, "off", map[string]any{"bootstrap_servers": c.addrs})
	if f := h.Publish(t, "off", subCtx("c", nil), &gateway.Message{Content: []byte("x")}); f != nil {
		t.Fatalf("disabled producer: %v", f)
	}
	configure(t, h, "dyn", map[string]any{"bootstrap_servers": c.addrs, "producer": map[string]any{"enabled": true, "topics": []string{"t"}, "compression_type": "gzip"}})
	f := h.Publish(t, "dyn", subCtx("c", map[string]any{"gravitee.attributes.endpoint.kafka.producer.compressionType": "brotli"}), &gateway.Message{Content: []byte("x")})
	if f == nil || f.Status != 500 || f.Key != "FAILURE_CONFIGURATION_INVALID" || f.Message != "Invalid configuration" || !f.RequestLevel {
		t.Fatalf("invalid dynamic configuration: %+v", f)
	}
	if f := h.Publish(t, "nope", subCtx("c", nil), &gateway.Message{}); f == nil {
		t.Fatal("unknown instance accepted")
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	h, _ := startPlugin(t)
	tests := map[string]struct {
		bootstrap string
		key       string
		message   string
	}{
		"not host:port": {"wrong", "FAILURE_ENDPOINT_CONFIGURATION_INVALID", "Endpoint configuration invalid"},
		"unreachable":   {"127.0.0.1:1", "FAILURE_ENDPOINT_CONNECTION_CLOSED", "Endpoint connection closed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			configure(t, h, name, map[string]any{"bootstrap_servers": tc.bootstrap, "producer": map[string]any{"enabled": true, "topics": []string{"t"}}})
			f := h.Publish(t, name, subCtx("c", nil), &gateway.Message{Content: []byte("x")})
			if f == nil || f.Status != 500 || f.Key != tc.key || f.Message != tc.message || f.RequestLevel {
				t.Fatalf("failure = %+v, want %s", f, tc.key)
			}
		})
	}
}

func TestProducersSharedAndEvicted(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	k := NewKafka(testLogger(t))
	cfgA := &Config{BootstrapServers: c.addrs, Producer: ProducerConfig{Enabled: true, Topics: []string{"t"}}}
	cfgA.applyDefaults()
	cfgB := cfgA.clone()
	cfgB.Producer.CompressionType = "lz4"
	pa, err := k.producers.acquire(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	pa2, err := k.producers.acquire(cfgA.clone())
	if err != nil {
		t.Fatal(err)
	}
	pb, err := k.producers.acquire(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	if pa != pa2 || pa == pb || k.producers.size() != 2 {
		t.Fatalf("sharing: a=%p a'=%p b=%p size=%d", pa, pa2, pb, k.producers.size())
	}
	k.producers.release(pa, false)
	k.producers.release(pa2, false)
	k.producers.release(pb, false)
	// Used ones survive, idle ones go.
	if n := k.producers.evictIdle(time.Now()); n != 0 {
		t.Fatalf("evicted %d fresh producers", n)
	}
	pb, _ = k.producers.acquire(cfgB)
	if n := k.producers.evictIdle(time.Now().Add(2 * defaultProducerIdle)); n != 1 || k.producers.size() != 1 {
		t.Fatalf("evicted %d, size %d; want the idle one only", n, k.producers.size())
	}
	k.producers.release(pb, false)
	// A failing producer is retired; the next acquire gets a new one.
	k.producers.release(mustAcquire(t, k, cfgB), true)
	if pb2 := mustAcquire(t, k, cfgB); pb2 == pb {
		t.Fatal("a failed producer was reused")
	} else {
		k.producers.release(pb2, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := k.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := k.producers.acquire(cfgA); err != errDraining {
		t.Fatalf("acquire after drain: %v", err)
	}
}

func mustAcquire(t *testing.T, k *Kafka, cfg *Config) *sharedProducer {
	t.Helper()
	p, err := k.producers.acquire(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The producer batches across requests without a timer (see
// producerSaramaConfig): every flush trigger is zero, so sarama sends as
// soon as a partition is free, and acks=all is kept.
func TestProducerBatchingSettings(t *testing.T) {
	sc, err := producerSaramaConfig(&Config{BootstrapServers: "localhost:9092"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ got, want any }{
		"acks":               {sc.Producer.RequiredAcks, sarama.WaitForAll},
		"flush frequency":    {sc.Producer.Flush.Frequency, time.Duration(0)},
		"flush bytes":        {sc.Producer.Flush.Bytes, 0},
		"flush messages":     {sc.Producer.Flush.Messages, 0},
		"flush max messages": {sc.Producer.Flush.MaxMessages, 0},
		"max open requests":  {sc.Net.MaxOpenRequests, 5},
		"channel buffer":     {sc.ChannelBufferSize, 256},
		"max message bytes":  {sc.Producer.MaxMessageBytes, 1 << 20},
	}
	for name, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", name, tc.got, tc.want)
		}
	}
}
