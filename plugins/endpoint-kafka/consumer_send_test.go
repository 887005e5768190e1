package main

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/twmb/franz-go/pkg/kgo"
)

// docs/behaviour.md 2.6: keys and header values are decoded as UTF-8, invalid
// sequences becoming U+FFFD. Sent as they are, they made Send fail and the
// subscription end as if cleanly, so a resuming client met the same record
// again and again.
func TestInvalidUTF8KeyAndHeaders(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"bin": 1})
	c.produce(t,
		&kgo.Record{Topic: "bin", Key: []byte{0xff, 0xfe, 'k'}, Value: []byte("v1"), Headers: []kgo.RecordHeader{
			{Key: "h", Value: []byte{'a', 0xff, 0xfe, 'b'}},
			{Key: "h", Value: []byte("ok")},
			{Key: string([]byte{'n', 0xc3}), Value: []byte{0xe2, 0x82}},
		}},
		&kgo.Record{Topic: "bin", Key: []byte("k2"), Value: []byte("v2")},
	)
	h, k := startPlugin(t)
	configure(t, h, "i", consumerConfig(c.addrs, map[string]any{"topics": []string{"bin"}, "auto_offset_reset": "earliest"}))
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("utf8", nil), QoS: endpoint.QoSAtLeastOnce})
	got := collect(t, s, 2)
	closeAndWait(t, k, s)

	if string(got[0].Content) != "v1" || got[0].Metadata["key"] != "\uFFFDk" {
		t.Fatalf("record 0: content %q, key %q", got[0].Content, got[0].Metadata["key"])
	}
	wantHeaders := gateway.Headers{"h": {"a\uFFFDb", "ok"}, "n\uFFFD": {"\uFFFD"}}
	if !reflect.DeepEqual(got[0].Headers, wantHeaders) {
		t.Fatalf("record 0 headers %q, want %q", got[0].Headers, wantHeaders)
	}
	if string(got[1].Content) != "v2" || got[1].Metadata["key"] != "k2" || asInt(got[1].Metadata["offset"]) != 1 {
		t.Fatalf("record 1: %+v", got[1])
	}
}

// failingOut is a client side whose first Send fails with err; it records
// what else is sent. goneOnFail makes the client side go away as the Send
// fails, as a disconnecting client does.
type failingOut struct {
	err        error
	goneOnFail context.CancelFunc

	mu    sync.Mutex
	calls int
	sent  [][]*gateway.Message
}

func (o *failingOut) Ready(string) error { return nil }

func (o *failingOut) Send(msgs []*gateway.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.calls == 1 {
		if o.goneOnFail != nil {
			o.goneOnFail()
		}
		return o.err
	}
	o.sent = append(o.sent, msgs)
	return nil
}

func (o *failingOut) Acks() <-chan uint64 { return nil }

// A failed Send is reported as FAILURE_ENDPOINT_UNKNOWN_ERROR unless the
// client side went away, which ends the subscription quietly.
func TestSendFailure(t *testing.T) {
	tests := map[string]struct {
		err        error
		clientGone bool
		wantKey    string // "" = nothing reported
	}{
		"encoding error":       {err: errors.New("message 0: metadata key: string is not valid UTF-8"), wantKey: keyEndpointUnknownError},
		"transport error":      {err: io.EOF, wantKey: keyEndpointUnknownError},
		"client gone":          {err: errors.New("rpc error: code = Canceled desc = context canceled"), clientGone: true},
		"client gone with EOF": {err: io.EOF, clientGone: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.Background())
			defer cancelParent()
			out := &failingOut{err: tc.err}
			if tc.clientGone {
				out.goneOnFail = cancelParent
			}
			s := &subscription{
				k: NewKafka(testLogger(t)), inst: &instance{id: "i"}, group: "g",
				batches: make(chan claimBatch, 1), acks: newAckTracker("g"),
			}
			p := &poll{req: &endpoint.SubscribeRequest{InstanceID: "i"}, out: out, parent: parent}
			p.ctx, p.cancel = context.WithCancel(parent)
			defer p.cancel()
			s.poll = p
			s.batches <- claimBatch{msgs: []*gateway.Message{{Content: []byte("x")}}, recs: []recordPos{{topic: "t"}}}

			s.sendLoop(p) // returns once the Send failed
			if p.ctx.Err() == nil {
				t.Fatal("the subscription goes on after a failed Send")
			}
			s.report(p)

			if tc.wantKey == "" {
				if s.pollFailed(p) || len(out.sent) != 0 {
					t.Fatalf("client gone: failure %v, sent %v", p.failure, out.sent)
				}
				return
			}
			if p.failure == nil || p.failure.Key != tc.wantKey || p.failure.Status != 500 {
				t.Fatalf("failure %+v, want key %s", p.failure, tc.wantKey)
			}
			if len(out.sent) != 1 || len(out.sent[0]) != 1 || out.sent[0][0].Error == nil ||
				out.sent[0][0].Metadata["key"] != tc.wantKey || string(out.sent[0][0].Content) != msgEndpointUnknownError {
				t.Fatalf("error message not sent: %+v", out.sent)
			}
		})
	}
}

func TestSplitBySize(t *testing.T) {
	msg := func(n int) *gateway.Message { return &gateway.Message{Content: make([]byte, n)} }
	one := estimatedSize(msg(100))
	tests := map[string]struct {
		sizes []int
		limit int
		want  []int // chunk lengths
	}{
		"empty":               {sizes: nil, limit: one, want: nil},
		"all fit":             {sizes: []int{100, 100, 100}, limit: 3 * one, want: []int{3}},
		"split at the limit":  {sizes: []int{100, 100, 100}, limit: 2 * one, want: []int{2, 1}},
		"one per chunk":       {sizes: []int{100, 100, 100}, limit: one, want: []int{1, 1, 1}},
		"oversized alone":     {sizes: []int{100, 1000, 100}, limit: 2 * one, want: []int{1, 1, 1}},
		"oversized first":     {sizes: []int{1000, 100, 100}, limit: 2 * one, want: []int{1, 2}},
		"just over the limit": {sizes: []int{100, 100}, limit: 2*one - 1, want: []int{1, 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var msgs []*gateway.Message
			for _, n := range tc.sizes {
				msgs = append(msgs, msg(n))
			}
			chunks := splitBySize(msgs, tc.limit)
			var lens []int
			var joined []*gateway.Message
			for _, c := range chunks {
				lens = append(lens, len(c))
				joined = append(joined, c...)
			}
			if !reflect.DeepEqual(lens, tc.want) {
				t.Fatalf("chunk lengths %v, want %v", lens, tc.want)
			}
			for i := range msgs {
				if joined[i] != msgs[i] {
					t.Fatalf("message %d out of order", i)
				}
			}
		})
	}
}

// The estimate covers every field a record's message carries, so it never
// undercounts what grows with the record.
func TestEstimatedSizeGrowsWithFields(t *testing.T) {
	base := &gateway.Message{Content: []byte("v")}
	full := &gateway.Message{Content: []byte("v"), ID: strings.Repeat("i", 100),
		Headers:  gateway.Headers{"h": {strings.Repeat("x", 100)}},
		Metadata: map[string]any{"key": strings.Repeat("k", 100), "offset": int64(1)}}
	if d := estimatedSize(full) - estimatedSize(base); d < 300 {
		t.Fatalf("estimate grew by %d for 300 bytes of id, header and key", d)
	}
}
