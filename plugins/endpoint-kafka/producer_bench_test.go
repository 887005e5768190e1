package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The producer design choice (docs/architecture.md, "Data path"): one shared AsyncProducer whose
// records carry their batch's tracker, against sarama's SyncProducer
// SendMessages, for the batch sizes a publish stream carries.
//
//	go test -run '^$' -bench Produce -benchtime 2s
func BenchmarkProduce(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addrs := strings.Join(c.ListenAddrs(), ",")
	cfg := &Config{BootstrapServers: addrs, Producer: ProducerConfig{Enabled: true, Topics: []string{"bench"}}}
	cfg.applyDefaults()
	payload := make([]byte, 256)

	for _, n := range []int{1, 16, 128, 512} {
		b.Run(fmt.Sprintf("async-tracker/batch=%d", n), func(b *testing.B) {
			p, err := newSharedProducer(cfg, keyOf(cfg))
			if err != nil {
				b.Fatal(err)
			}
			defer p.close()
			b.SetBytes(int64(n * len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				recs := make([]sarama.ProducerMessage, n)
				for i := range recs {
					recs[i] = sarama.ProducerMessage{Topic: "bench", Value: sarama.ByteEncoder(payload)}
				}
				if err := p.send(context.Background(), recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msg/s")
		})
		b.Run(fmt.Sprintf("sync-producer/batch=%d", n), func(b *testing.B) {
			sc, err := newSaramaConfig(cfg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			sc.Producer.RequiredAcks = sarama.WaitForAll
			sc.Producer.Return.Successes = true
			sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
			sp, err := sarama.NewSyncProducer([]string{addrs}, sc)
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			b.SetBytes(int64(n * len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				recs := make([]*sarama.ProducerMessage, n)
				for i := range recs {
					recs[i] = &sarama.ProducerMessage{Topic: "bench", Value: sarama.ByteEncoder(payload)}
				}
				if err := sp.SendMessages(recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// Concurrent requests of one record each, as HTTP POST clients send them:
// with every flush trigger at zero, records that arrive while a request is
// in flight share the next one, so throughput grows with the number of
// clients while a lone record still leaves at once.
//
//	go test -run '^$' -bench ProduceConcurrent -benchtime 2s
func BenchmarkProduceConcurrent(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cfg := &Config{BootstrapServers: strings.Join(c.ListenAddrs(), ","), Producer: ProducerConfig{Enabled: true, Topics: []string{"bench"}}}
	cfg.applyDefaults()
	payload := make([]byte, 256)
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			p, err := newSharedProducer(cfg, keyOf(cfg))
			if err != nil {
				b.Fatal(err)
			}
			defer p.close()
			// RunParallel starts parallelism x GOMAXPROCS goroutines.
			b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
			if clients == 1 {
				b.SetParallelism(1)
			}
			b.SetBytes(int64(len(payload)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := []sarama.ProducerMessage{{Topic: "bench", Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(payload)}}
					if err := p.send(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
