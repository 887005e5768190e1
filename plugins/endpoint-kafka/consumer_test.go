package main

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// asInt reads a number from metadata, whatever numeric type the wire gave.
func asInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int32:
		return int(x)
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return -1
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// expectOnly checks that the next message is sentinel: it is produced after
// the subscription is ready, so receiving it first proves nothing older was
// pending (a way to assert "no message" without waiting for a timeout).
func expectOnly(t *testing.T, c *cluster, s *plugintest.Subscription, topic, sentinel string) *gateway.Message {
	t.Helper()
	c.produceValues(t, topic, sentinel)
	got := collect(t, s, 1)
	if string(got[0].Content) != sentinel {
		t.Fatalf("got %q before the sentinel %q", got[0].Content, sentinel)
	}
	return got[0]
}

// docs/behaviour.md 7.1: qos auto, limit 2, three records: the first request gets
// message1 and message2 without ids, the second message3, the third nothing.
// Only delivered records are committed (docs/behaviour.md 8.2).
func TestVector1AutoLimit(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	c.produceValues(t, "test-topic", "message1", "message2", "message3")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest"}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("keyless-ip", nil), QoS: "auto", Limit: 2}

	s, cursor := subscribe(t, h, req)
	if cursor != "" {
		t.Fatalf("auto has no cursor, got %q", cursor)
	}
	got := collect(t, s, 2)
	if !reflect.DeepEqual(contents(got), []string{"message1", "message2"}) {
		t.Fatalf("request 1 = %v", contents(got))
	}
	for _, m := range got {
		if m.ID != "" || m.Metadata["topic"] != "test-topic" || m.Metadata["key"] != "key" {
			t.Fatalf("message %+v", m)
		}
	}
	// message3 was fetched (one fetch returns all three) but not delivered:
	// only the first two are committed.
	c.waitCommitted(t, "keyless-ip", "test-topic", 0, 2)
	closeAndWait(t, k, s)

	s, _ = subscribe(t, h, req)
	if got := collect(t, s, 1); string(got[0].Content) != "message3" {
		t.Fatalf("request 2 = %v", contents(got))
	}
	closeAndWait(t, k, s)

	s, _ = subscribe(t, h, req)
	expectOnly(t, c, s, "test-topic", "message4")
	closeAndWait(t, k, s)
}

// docs/behaviour.md 7.2 with docs/differences.md #2: at-least-once and at-most-once give ids,
// the Ready cursor is the position before the first record, cursors resume
// after the given offset.
func TestVector2Cursors(t *testing.T) {
	t.Parallel()
	for _, qos := range []string{"at-least-once", "at-most-once"} {
		t.Run(qos, func(t *testing.T) {
			c := startCluster(t, map[string]int32{"test-topic": 1, "empty-topic": 1})
			c.produceValues(t, "test-topic", "message1", "message2", "message3")
			h, k := startPlugin(t)
			configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest"}))
			req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("client", nil), QoS: qos, Limit: 2}

			s, cursor := subscribe(t, h, req)
			if cursor != b64("test-topic@0#-1") {
				t.Fatalf("first cursor %q", cursor)
			}
			got := collect(t, s, 2)
			if got[0].ID != "dGVzdC10b3BpY0AwIzA=" || got[1].ID != "dGVzdC10b3BpY0AwIzE=" {
				t.Fatalf("ids %q %q", got[0].ID, got[1].ID)
			}
			closeAndWait(t, k, s)

			s, cursor = subscribe(t, h, req)
			if cursor != "dGVzdC10b3BpY0AwIzE=" {
				t.Fatalf("second cursor %q", cursor)
			}
			if got := collect(t, s, 1); got[0].ID != "dGVzdC10b3BpY0AwIzI=" || string(got[0].Content) != "message3" {
				t.Fatalf("request 2 = %+v", got[0])
			}
			closeAndWait(t, k, s)

			s, cursor = subscribe(t, h, req)
			if cursor != "dGVzdC10b3BpY0AwIzI=" {
				t.Fatalf("third cursor %q", cursor)
			}
			closeAndWait(t, k, s)

			// A recent cursor on a fresh group: nothing before the sentinel,
			// and the cursor is echoed.
			fresh := req
			fresh.Context = subCtx("fresh", nil)
			fresh.LastID = "dGVzdC10b3BpY0AwIzI="
			s, cursor = subscribe(t, h, fresh)
			if cursor != fresh.LastID {
				t.Fatalf("echoed cursor %q", cursor)
			}
			if m := expectOnly(t, c, s, "test-topic", "message4"); m.ID != b64("test-topic@0#3") {
				t.Fatalf("sentinel id %q", m.ID)
			}
			closeAndWait(t, k, s)

			// Resume after offset 0 on another fresh group.
			resume := req
			resume.Context = subCtx("resume", nil)
			resume.LastID = b64("test-topic@0#0")
			s, _ = subscribe(t, h, resume)
			if got := collect(t, s, 2); !reflect.DeepEqual(contents(got), []string{"message2", "message3"}) {
				t.Fatalf("resumed = %v", contents(got))
			}
			closeAndWait(t, k, s)

			// Empty topic: the cursor names offset -1, nothing is skipped.
			configure(t, h, "empty", consumerConfig(c.addrs, map[string]any{"topics": []string{"empty-topic"}, "auto_offset_reset": "earliest"}))
			empty := req
			empty.InstanceID = "empty"
			s, cursor = subscribe(t, h, empty)
			if cursor != b64("empty-topic@0#-1") {
				t.Fatalf("empty topic cursor %q", cursor)
			}
			if m := expectOnly(t, c, s, "empty-topic", "first"); m.ID != b64("empty-topic@0#0") {
				t.Fatalf("first id %q", m.ID)
			}
			closeAndWait(t, k, s)
		})
	}
}

func TestPlainIDsAndMalformedCursor(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	c.produceValues(t, "test-topic", "m1", "m2")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest", "encode_message_id": false}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("plain", nil), QoS: "at-least-once", LastID: "test-topic@0#0"}
	s, cursor := subscribe(t, h, req)
	if cursor != "test-topic@0#0" {
		t.Fatalf("cursor %q", cursor)
	}
	if got := collect(t, s, 1); got[0].ID != "test-topic@0#1" || string(got[0].Content) != "m2" {
		t.Fatalf("got %+v", got[0])
	}
	closeAndWait(t, k, s)

	req.LastID = "garbage"
	f := h.Subscribe(t, req).Wait(t, wait)
	if f == nil || f.Status != 400 || !f.RequestLevel || !strings.Contains(f.Message, cursorForm) {
		t.Fatalf("malformed cursor failure %+v", f)
	}
	// Without ids the cursor is ignored, as the reference does.
	req.QoS, req.LastID = "auto", "garbage"
	s, _ = subscribe(t, h, req)
	closeAndWait(t, k, s)
}

// docs/behaviour.md 7.3: a context attribute adds topics; messages of both arrive,
// each partition in order. (Order across topics is not a Kafka guarantee.)
func TestVector3TopicsAttribute(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1, "test-topic-attribute": 1})
	c.produceValues(t, "test-topic", "message1", "message2")
	c.produceValues(t, "test-topic-attribute", "another-message")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest"}))
	ctx := subCtx("c", map[string]any{"gravitee.attribute.kafka.topics": "test-topic,test-topic-attribute"})
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: ctx, QoS: "auto", Limit: 3})
	got := collect(t, s, 3)
	var main, other []string
	for _, m := range got {
		switch m.Metadata["topic"] {
		case "test-topic":
			main = append(main, string(m.Content))
		case "test-topic-attribute":
			other = append(other, string(m.Content))
		}
	}
	if !reflect.DeepEqual(main, []string{"message1", "message2"}) || !reflect.DeepEqual(other, []string{"another-message"}) {
		t.Fatalf("got %v / %v", main, other)
	}
	closeAndWait(t, k, s)
}

// docs/behaviour.md 7.4: dynamic auto_offset_reset from a header.
func TestVector4DynamicOffsetReset(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	c.produceValues(t, "test-topic", "message1")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "{#request.headers['X-AutoOffsetReset'][0]}"}))

	bad := subCtx("c", nil)
	bad.Request.Headers = gateway.Headers{"X-AutoOffsetReset": {"constraint_violation"}}
	f := h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: "i", Context: bad, QoS: "auto"}).Wait(t, wait)
	if f == nil || f.Status != 500 || f.Key != "FAILURE_CONFIGURATION_INVALID" || f.Message != "Invalid configuration" || !f.RequestLevel {
		t.Fatalf("failure %+v", f)
	}

	good := subCtx("c", nil)
	good.Request.Headers = gateway.Headers{"X-AutoOffsetReset": {"earliest"}}
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: good, QoS: "auto"})
	if got := collect(t, s, 1); string(got[0].Content) != "message1" {
		t.Fatalf("got %v", contents(got))
	}
	closeAndWait(t, k, s)
}

// docs/behaviour.md 2.5: QoS none never commits, so the same group starts over.
func TestQoSNoneNeverCommits(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	c.produceValues(t, "test-topic", "message1", "message2")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest"}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("none-group", nil), QoS: "none"}
	for range 2 {
		s, _ := subscribe(t, h, req)
		got := collect(t, s, 2)
		if !reflect.DeepEqual(contents(got), []string{"message1", "message2"}) || got[0].ID != "" {
			t.Fatalf("got %v", contents(got))
		}
		closeAndWait(t, k, s)
	}
	if o := c.committed(t, "none-group", "test-topic", 0); o != -1 {
		t.Fatalf("QoS none committed offset %d", o)
	}
}

// at-least-once: unacknowledged records are not committed.
func TestAtLeastOnceCommitsOnlyAcked(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	c.produceValues(t, "test-topic", "m1", "m2", "m3")
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest"}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("alo", nil), QoS: "at-least-once"}
	s, _ := subscribe(t, h, req)
	var got []*gateway.Message
	for len(got) < 3 {
		b := s.Next(t, wait)
		if b == nil {
			t.Fatal("no batch")
		}
		got = append(got, b...)
	}
	s.Ack(t, got[0].Tag) // only m1
	c.waitCommitted(t, "alo", "test-topic", 0, 1)
	closeAndWait(t, k, s)
	if o := c.committed(t, "alo", "test-topic", 0); o != 1 {
		t.Fatalf("committed %d after close, want 1", o)
	}
	s, _ = subscribe(t, h, req)
	if got := collect(t, s, 2); !reflect.DeepEqual(contents(got), []string{"m2", "m3"}) {
		t.Fatalf("redelivered %v", contents(got))
	}
	closeAndWait(t, k, s)
}

// docs/behaviour.md 2.2 / 7.8: subscriptions sharing a group split the records
// without duplicates.
func TestSharedGroupSplitsRecords(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"shared": 2})
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"shared"}, "auto_offset_reset": "earliest"}))
	req := endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("custom", nil), QoS: "at-least-once"}
	s1, _ := subscribe(t, h, req)
	s2, _ := subscribe(t, h, req)
	var recs []*kgo.Record
	for i := range 40 {
		recs = append(recs, &kgo.Record{Topic: "shared", Partition: int32(i % 2), Value: fmt.Appendf(nil, "r%02d", i)})
	}
	c.produce(t, recs...)

	res := make(chan []*gateway.Message, 2)
	seen := map[string]int{}
	for _, s := range []*plugintest.Subscription{s1, s2} {
		go func() {
			var out []*gateway.Message
			for {
				b := s.Next(t, wait/10)
				if b == nil {
					res <- out
					return
				}
				out = append(out, b...)
				s.Ack(t, b[len(b)-1].Tag)
				if len(out) == 20 {
					res <- out
					return
				}
			}
		}()
	}
	var parts [2][]int
	for i := range 2 {
		for _, m := range <-res {
			seen[string(m.Content)]++
			parts[i] = append(parts[i], asInt(m.Metadata["partition"]))
		}
	}
	if len(seen) != 40 {
		t.Fatalf("got %d distinct records, want 40", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("%s delivered %d times", v, n)
		}
	}
	for i, p := range parts {
		slices.Sort(p)
		if len(p) != 20 || p[0] != p[19] {
			t.Fatalf("subscription %d got partitions %v, want one partition each", i, p)
		}
	}
	closeAndWait(t, k, s1, s2)
}

// The last acknowledgements are committed when the subscription ends, not
// only periodically.
func TestCommitOnClose(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"test-topic": 1})
	c.produceValues(t, "test-topic", "m1", "m2", "m3")
	h, k := startPlugin(t)
	k.commitInterval = time.Hour
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"test-topic"}, "auto_offset_reset": "earliest"}))
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("close", nil), QoS: "at-least-once"})
	collect(t, s, 3)
	waitAcksApplied(t, k)
	if o := c.committed(t, "close", "test-topic", 0); o != -1 {
		t.Fatalf("committed %d before close with an hourly interval", o)
	}
	closeAndWait(t, k, s)
	if o := c.committed(t, "close", "test-topic", 0); o != 3 {
		t.Fatalf("committed %d after close, want 3", o)
	}
}

// waitAcksApplied waits until every running subscription has applied the
// acknowledgements of everything it delivered.
func waitAcksApplied(t *testing.T, k *Kafka) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		pending := 0
		k.subsMu.Lock()
		for p := range k.subs {
			if p.s != nil {
				pending += p.s.acks.pendingCount()
			}
		}
		k.subsMu.Unlock()
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still unacknowledged", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
