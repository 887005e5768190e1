package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// countingSub is an endpoint.Subscription that counts and acknowledges
// everything at once, so the benchmark measures the endpoint alone.
type countingSub struct {
	n    atomic.Int64
	want int64
	acks chan uint64
	done chan struct{}
}

// benchGroups numbers consumer groups: every run must start from scratch.
var benchGroups atomic.Int64

var errStreamGone = errors.New("stream gone")

func (s *countingSub) Ready(string) error { return nil }
func (s *countingSub) Send(ms []*gateway.Message) error {
	select {
	case s.acks <- ms[len(ms)-1].Tag:
	default:
	}
	if s.n.Add(int64(len(ms))) >= s.want {
		select {
		case <-s.done:
		default:
			// The client side goes away: acknowledgements end too.
			close(s.done)
			close(s.acks)
		}
		return errStreamGone
	}
	return nil
}
func (s *countingSub) Acks() <-chan uint64 { return s.acks }

// BenchmarkConsume drains a topic through Subscribe and, for comparison,
// through a bare sarama consumer group.
//
//	go test -run '^$' -bench Consume -benchtime 3x
func BenchmarkConsume(b *testing.B) {
	const records = 100000
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addrs := strings.Join(c.ListenAddrs(), ",")
	kcl, err := kgo.NewClient(kgo.SeedBrokers(addrs), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	recs := make([]*kgo.Record, records)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "bench", Value: payload}
	}
	if err := kcl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	kcl.Close()

	for _, qos := range []string{"none", "at-least-once"} {
		b.Run("subscribe/"+qos, func(b *testing.B) {
			k := NewKafka(testLogger(b))
			configureDirect(b, k, addrs)
			for range b.N {
				sub := &countingSub{want: records, acks: make(chan uint64, 1), done: make(chan struct{})}
				ctx, cancel := context.WithCancel(context.Background())
				go func() { <-sub.done; cancel() }()
				req := &endpoint.SubscribeRequest{InstanceID: "i", QoS: qos,
					Context: &gateway.Context{Request: &gateway.Request{ClientIdentifier: fmt.Sprintf("bench-%s-%d", qos, benchGroups.Add(1))}}}
				if err := k.Subscribe(ctx, req, sub); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
	b.Run("sarama-group", func(b *testing.B) {
		for range b.N {
			sc := sarama.NewConfig()
			sc.Version = kafkaVersion
			sc.Consumer.Offsets.Initial = sarama.OffsetOldest
			g, err := sarama.NewConsumerGroup([]string{addrs}, fmt.Sprintf("raw-%d", benchGroups.Add(1)), sc)
			if err != nil {
				b.Fatal(err)
			}
			h := &rawHandler{want: records, done: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-h.done; cancel() }()
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{"bench"}, h); err != nil {
					b.Fatal(err)
				}
			}
			_ = g.Close()
		}
		b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "msg/s")
	})
}

func configureDirect(b *testing.B, k *Kafka, addrs string) {
	var resp lifecycle.ConfigureResponse
	k.Configure(context.Background(), &lifecycle.ConfigureRequest{InstanceID: "i", APIID: "api", Type: "kafka",
		ConfigJSON: []byte(`{"bootstrap_servers":"` + addrs + `","consumer":{"enabled":true,"topics":["bench"],"auto_offset_reset":"earliest"}}`)}, &resp)
	if err := resp.Diagnostics.Err(); err != nil {
		b.Fatal(err)
	}
}

type rawHandler struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (h *rawHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *rawHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *rawHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		if h.n.Add(1) == h.want {
			close(h.done)
		}
	}
	return nil
}
