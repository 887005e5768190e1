package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errorOf waits for the error message a subscription ends with.
func errorOf(t *testing.T, s *plugintest.Subscription) *gateway.Failure {
	t.Helper()
	for {
		b := s.Next(t, wait)
		if b == nil {
			t.Fatalf("subscription ended without an error message (failure %v)", s.Failure())
		}
		for _, m := range b {
			if m.Error != nil {
				if string(m.Content) != m.Error.Message || m.Metadata["key"] != m.Error.Key || len(m.ID) != 36 {
					t.Fatalf("error message shape: %+v", m)
				}
				return m.Error
			}
		}
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"present": 1})
	h, _ := startPlugin(t)
	tests := map[string]struct {
		cfg     map[string]any
		key     string
		message string
	}{
		"not host:port": {consumerConfig("wrong", map[string]any{"topics": []string{"t"}}),
			"FAILURE_ENDPOINT_CONFIGURATION_INVALID", "Endpoint configuration invalid"},
		"unresolvable host": {consumerConfig("no-such-host.invalid:9092", map[string]any{"topics": []string{"t"}}),
			"FAILURE_ENDPOINT_CONFIGURATION_INVALID", "Endpoint configuration invalid"},
		"unreachable": {consumerConfig("127.0.0.1:1", map[string]any{"topics": []string{"t"}}),
			"FAILURE_ENDPOINT_CONNECTION_CLOSED", "Endpoint connection closed"},
		"missing topic checked": {consumerConfig(c.addrs, map[string]any{"topics": []string{"present", "absent1", "absent2"}, "check_topic_existence": true}),
			"FAILURE_ENDPOINT_CONFIGURATION_INVALID", "Endpoint configuration invalid: topics do not exist: absent1, absent2"},
		"offset reset none": {consumerConfig(c.addrs, map[string]any{"topics": []string{"present"}, "auto_offset_reset": "none"}),
			"FAILURE_ENDPOINT_CONFIGURATION_INVALID", "Endpoint configuration invalid"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			configure(t, h, name, tc.cfg)
			s := h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: name, Context: subCtx("g-"+name, nil), QoS: "at-least-once"})
			s.Ready(t, wait)
			f := errorOf(t, s)
			if f.Status != 500 || f.Key != tc.key || f.Message != tc.message || f.RequestLevel {
				t.Fatalf("failure %+v, want %s %q", f, tc.key, tc.message)
			}
			if end := s.Wait(t, wait); end != nil {
				t.Fatalf("stream ended with failure %v after the error message", end)
			}
		})
	}
}

func TestSubscribeRequestLevelFailures(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	h, _ := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}}))
	f := h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("c", nil), QoS: "exactly-once"}).Wait(t, wait)
	if f == nil || !f.RequestLevel || !strings.Contains(f.Message, "Unsupported QoS 'exactly-once' for Kafka") {
		t.Fatalf("unsupported QoS: %+v", f)
	}
	f = h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: "nope", Context: subCtx("c", nil), QoS: "auto"}).Wait(t, wait)
	if f == nil {
		t.Fatal("unknown instance accepted")
	}
}

// docs/differences.md #3: without check_topic_existence a subscription waits for a
// missing topic and consumes it once it exists.
func TestWaitsForMissingTopic(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"present": 1})
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"later"}, "auto_offset_reset": "earliest"}))
	s, cursor := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("w", nil), QoS: "at-least-once"})
	if cursor != "" {
		t.Fatalf("cursor %q with nothing assigned", cursor)
	}
	c.createTopic(t, "later", 1)
	c.produceValues(t, "later", "hello")
	if got := collect(t, s, 1); string(got[0].Content) != "hello" || got[0].ID != b64("later@0#0") {
		t.Fatalf("got %+v", got[0])
	}
	closeAndWait(t, k, s)
}

// A topic pattern consumes every matching topic, including new ones.
func TestTopicPattern(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"demo-a": 1, "other": 1})
	c.produceValues(t, "demo-a", "a1")
	c.produceValues(t, "other", "o1")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topic_pattern": "demo-.*", "auto_offset_reset": "earliest"}))
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("p", nil), QoS: "auto"})
	if got := collect(t, s, 1); string(got[0].Content) != "a1" {
		t.Fatalf("got %v", contents(got))
	}
	c.createTopic(t, "demo-b", 1)
	c.produceValues(t, "demo-b", "b1")
	c.produceValues(t, "other", "o2")
	if got := collect(t, s, 1); string(got[0].Content) != "b1" || got[0].Metadata["topic"] != "demo-b" {
		t.Fatalf("got %v", contents(got))
	}
	closeAndWait(t, k, s)
}

// docs/behaviour.md 2.6, docs/differences.md #6: what a record becomes.
func TestRecordConversion(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"conv": 1})
	ts := time.UnixMilli(1700000000123)
	c.produce(t,
		&kgo.Record{Topic: "conv", Key: []byte("k1"), Value: []byte("v1"), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}, {Key: "x", Value: []byte("y")}}},
		&kgo.Record{Topic: "conv", Value: []byte{0, 0, 0, 0, 7, 'a', 'v', 'r', 'o'}, Timestamp: ts},
		&kgo.Record{Topic: "conv", Key: []byte("gone"), Value: nil, Timestamp: ts},
		&kgo.Record{Topic: "conv", Value: []byte{1, 2, 3, 4, 5, 6}, Timestamp: ts},
		&kgo.Record{Topic: "conv", Value: []byte{0, 1}, Timestamp: ts},
	)
	h, k := startPlugin(t)
	for _, strip := range []bool{false, true} {
		id := "strip"
		if !strip {
			id = "keep"
		}
		configure(t, h, id, consumerConfig(c.addrs, map[string]any{"topics": []string{"conv"}, "auto_offset_reset": "earliest", "remove_confluent_header": strip}))
		s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: id, Context: subCtx(id, nil), QoS: "none"})
		got := collect(t, s, 5)
		closeAndWait(t, k, s)

		m := got[0]
		if string(m.Content) != "v1" || m.Metadata["key"] != "k1" || asInt(m.Metadata["partition"]) != 0 || asInt(m.Metadata["offset"]) != 0 ||
			asInt(m.Metadata["sourceTimestamp"]) != 1700000000123 || m.Metadata["topic"] != "conv" || m.Metadata["tombstone"] != nil {
			t.Fatalf("record 0: %+v", m)
		}
		if !reflect.DeepEqual(m.Headers, gateway.Headers{"h": {"1", "2"}, "x": {"y"}}) {
			t.Fatalf("headers %v", m.Headers)
		}
		if _, ok := got[1].Metadata["key"]; ok {
			t.Fatalf("a record without key has metadata key: %v", got[1].Metadata)
		}
		wantAvro := "\x00\x00\x00\x00\x07avro"
		if strip {
			wantAvro = "avro"
		}
		if string(got[1].Content) != wantAvro {
			t.Fatalf("strip=%v: content %q", strip, got[1].Content)
		}
		if len(got[2].Content) != 0 || got[2].Metadata["tombstone"] != true || got[2].Metadata["key"] != "gone" {
			t.Fatalf("tombstone %+v", got[2])
		}
		if string(got[3].Content) != "\x01\x02\x03\x04\x05\x06" || string(got[4].Content) != "\x00\x01" {
			t.Fatalf("values without the Confluent header changed: %q %q", got[3].Content, got[4].Content)
		}
		for i, m := range got {
			if m.Tag != uint64(i+1) {
				t.Fatalf("tags %d at %d", m.Tag, i)
			}
		}
	}
}

func TestStripConfluentHeader(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"header":         {"\x00\x00\x00\x00\x01payload", "payload"},
		"header only":    {"\x00\x00\x00\x00\x01", ""},
		"too short":      {"\x00\x00\x00\x01", "\x00\x00\x00\x01"},
		"no magic":       {"\x01\x00\x00\x00\x01payload", "\x01\x00\x00\x00\x01payload"},
		"empty":          {"", ""},
		"text untouched": {`{"a":1}`, `{"a":1}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(stripConfluentHeader([]byte(tc.in))); got != tc.want {
				t.Fatalf("strip(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Send blocks while the client is slow; the subscription still ends when
// the client goes away, and limit bounds what is delivered.
func TestLimitAndBackpressure(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"big": 1})
	var recs []*kgo.Record
	for range 2000 {
		recs = append(recs, &kgo.Record{Topic: "big", Value: []byte("x")})
	}
	c.produce(t, recs...)
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"big"}, "auto_offset_reset": "earliest"}))
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("lim", nil), QoS: "auto", Limit: 300})
	got := collect(t, s, 300)
	if len(got) != 300 {
		t.Fatalf("delivered %d with limit 300", len(got))
	}
	c.waitCommitted(t, "lim", "big", 0, 300)
	closeAndWait(t, k, s)

	// A client that never reads: the plugin blocks in Send and still ends.
	s, _ = subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("slow", nil), QoS: "auto"})
	closeAndWait(t, k, s)
}

func TestConsumerDisabledAndUnconfigure(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	h, k := startPlugin(t)
	configure(t, h, "off", map[string]any{"bootstrap_servers": c.addrs})
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "off", Context: subCtx("c", nil), QoS: "auto"})
	closeAndWait(t, k, s)

	configure(t, h, "on", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}}))
	s, _ = subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "on", Context: subCtx("c", nil), QoS: "auto"})
	h.Unconfigure(t, "on")
	if f := s.Wait(t, wait); f != nil {
		t.Fatalf("unconfigure ended the subscription with %v", f)
	}
}

func TestDrainEndsSubscriptionsAndFlushes(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	h, _ := startPlugin(t)
	configure(t, h, "i", map[string]any{"bootstrap_servers": c.addrs,
		"producer": map[string]any{"enabled": true, "topics": []string{"t"}},
		"consumer": map[string]any{"enabled": true, "topics": []string{"t"}, "auto_offset_reset": "earliest"}})
	if f := h.Publish(t, "i", subCtx("c", nil), &gateway.Message{Content: []byte("before")}); f != nil {
		t.Fatal(f)
	}
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("d", nil), QoS: "at-least-once"})
	collect(t, s, 1)
	if err := h.Drain(t, wait); err != nil {
		t.Fatal(err)
	}
	if f := s.Wait(t, wait); f != nil {
		t.Fatalf("drain ended the subscription with %v", f)
	}
	if o := c.committed(t, "d", "t", 0); o != 1 {
		t.Fatalf("drain committed %d, want 1", o)
	}
	if f := h.Publish(t, "i", subCtx("c", nil), &gateway.Message{Content: []byte("after")}); f == nil {
		t.Fatal("publish accepted after drain")
	}
}

// A cluster lost during a subscription ends it with
// FAILURE_ENDPOINT_CONNECTION_CLOSED once the watchdog gives up.
func TestConnectionLost(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1})
	c.produceValues(t, "t", "m1")
	h, k := startPlugin(t)
	k.connectionWatchdog = time.Second
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"t"}, "auto_offset_reset": "earliest"}))
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("lost", nil), QoS: "auto"})
	collect(t, s, 1)
	c.Close()
	if f := errorOf(t, s); f.Key != "FAILURE_ENDPOINT_CONNECTION_CLOSED" || f.Message != "Endpoint connection closed" {
		t.Fatalf("failure %+v", f)
	}
}
