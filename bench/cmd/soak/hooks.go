package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// refuseEvery is how often the receiver answers 503 to a request it would
// otherwise accept (one request in refuseEvery, counted per subscription),
// so that the gateway's retries run all along. Attempts of one message are
// consecutive requests of its partition, so a message is refused at most
// once this way: no message exhausts its attempts on these 503s.
const refuseEvery = 50

// poisonEvery picks the records the dlq subscription's path refuses on
// every attempt (those whose body hash is a multiple of it): they exhaust
// their attempts and go to the dead-letter topic.
const poisonEvery = 500

// receiver is the webhook callback of both push subscriptions, on
// loopback in the soak's process. It counts the 2xx answers per body (by a
// 64-bit hash of it) so that the end of the run can tell which records were
// delivered, and how many times.
type receiver struct {
	srv  *http.Server
	url  string
	subs map[string]*hookCounts // by subscription id
}

// hookCounts are one subscription's deliveries as the receiver saw them.
type hookCounts struct {
	poison bool // refuse the poison records (the dlq subscription)

	requests, delivered, refused atomic.Int64

	mu   sync.Mutex
	seen map[uint64]uint32 // body hash -> 2xx answers
}

func bodyHash(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

func isPoison(h uint64) bool { return h%poisonEvery == 0 }

// startReceiver listens on a loopback port: /hook is soak-hook's callback,
// /hook-dlq soak-hook-dlq's.
func startReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + l.Addr().String(), subs: map[string]*hookCounts{
		hookID:    {seen: map[uint64]uint32{}},
		hookDLQID: {seen: map[uint64]uint32{}, poison: true},
	}}
	paths := map[string]*hookCounts{"/hook": r.subs[hookID], "/hook-dlq": r.subs[hookDLQID]}
	r.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c := paths[req.URL.Path]
		if c == nil || req.Method != http.MethodPost {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h := bodyHash(body)
		n := c.requests.Add(1)
		if n%refuseEvery == 0 || (c.poison && isPoison(h)) {
			c.refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		c.mu.Lock()
		c.seen[h]++
		c.mu.Unlock()
		c.delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *receiver) stop() { _ = r.srv.Close() }

// delivered and refused sum the 2xx and 503 answers of both subscriptions.
func (r *receiver) delivered() (n int64) {
	for _, c := range r.subs {
		n += c.delivered.Load()
	}
	return n
}

func (r *receiver) refused() (n int64) {
	for _, c := range r.subs {
		n += c.refused.Load()
	}
	return n
}

// pushSub is a push subscription as /apis shows it.
type pushSub struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	LastError    string `json:"last_error"`
	Delivered    int64  `json:"delivered"`
	Failed       int64  `json:"failed"`
	Retried      int64  `json:"retried"`
	DeadLettered int64  `json:"dead_lettered"`
}

// pushStatus reads the push subscriptions of every API from the admin
// /apis.
func pushStatus(admin string) ([]pushSub, error) {
	resp, err := http.Get("http://" + admin + "/apis")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct {
		APIs []struct {
			Push []pushSub `json:"push_subscriptions"`
		} `json:"apis"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	var out []pushSub
	for _, a := range doc.APIs {
		out = append(out, a.Push...)
	}
	return out, nil
}

// pushRunning says whether both subscriptions run.
func (g *gateway) pushRunning() bool {
	subs, err := pushStatus(g.admin)
	if err != nil {
		return false
	}
	running := 0
	for _, s := range subs {
		if s.State == "running" {
			running++
		}
	}
	return running == 2
}

// interrupted lists the subscriptions the gateway reports as interrupted
// (stopped with an error: the callback's failure ended consumption).
func interrupted(subs []pushSub) []string {
	var out []string
	for _, s := range subs {
		if s.State == "stopped" {
			out = append(out, fmt.Sprintf("%s: %s", s.ID, s.LastError))
		}
	}
	return out
}

// readTopic calls f with every record of topic, from the first to the end
// as it is when called.
func readTopic(bootstrap, topic string, f func(*sarama.ConsumerMessage)) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient([]string{bootstrap}, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return err
		}
		if end <= first {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, first)
		if err != nil {
			return err
		}
		timeout := time.NewTimer(2 * time.Minute)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				f(m)
				done = m.Offset >= end-1
			case e := <-pc.Errors():
				pc.Close()
				return e
			case <-timeout.C:
				pc.Close()
				return fmt.Errorf("%s/%d: reading up to offset %d timed out", topic, p, end)
			}
		}
		timeout.Stop()
		pc.Close()
	}
	return nil
}

// hookReport is the end-of-run check of one subscription.
type hookReport struct {
	id                  string
	records             int64 // in the topic
	delivered           int64 // 2xx answers
	missing, duplicates int64
	unknown             int64 // delivered bodies the topic does not hold
	deadLettered        int64 // records in the dlq topic from this subscription
	poison              int64 // records the receiver always refuses
	gateway             pushSub
}

func (h hookReport) ok() bool { return h.missing == 0 && h.unknown == 0 }

func (h hookReport) String() string {
	s := fmt.Sprintf("%s: %d records, %d deliveries (%d duplicates), %d missing", h.id, h.records, h.delivered, h.duplicates, h.missing)
	if h.unknown > 0 {
		s += fmt.Sprintf(", %d deliveries of no record", h.unknown)
	}
	if h.poison > 0 || h.deadLettered > 0 {
		s += fmt.Sprintf(", %d dead letters (%d records always refused)", h.deadLettered, h.poison)
	}
	s += fmt.Sprintf("; gateway: delivered %d, failed attempts %d, retried %d, dead-lettered %d, state %s",
		h.gateway.Delivered, h.gateway.Failed, h.gateway.Retried, h.gateway.DeadLettered, h.gateway.State)
	if !h.ok() && h.gateway.LastError != "" {
		s += " (last error: " + h.gateway.LastError + ")"
	}
	return s
}

// checkDeliveries reads the subscribed topic and the dead-letter topic and
// compares them with what the receiver got: every record must have been
// delivered at least once (or, for the dlq subscription, dead-lettered);
// deliveries beyond a record's copies in the topic are duplicates.
func checkDeliveries(g *gateway, r *receiver) ([]hookReport, error) {
	inTopic := map[uint64]uint32{}
	var records int64
	if err := readTopic(g.kafka, topic, func(m *sarama.ConsumerMessage) {
		inTopic[bodyHash(m.Value)]++
		records++
	}); err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	dead := map[uint64]uint32{}
	var deadLetters int64
	if err := readTopic(g.kafka, dlqTopic, func(m *sarama.ConsumerMessage) {
		for _, h := range m.Headers {
			if strings.EqualFold(string(h.Key), "X-Sluice-Dlq-Subscription") && string(h.Value) == hookDLQID {
				dead[bodyHash(m.Value)]++
				deadLetters++
			}
		}
	}); err != nil {
		return nil, fmt.Errorf("reading %s: %w", dlqTopic, err)
	}
	subs, err := pushStatus(g.admin)
	if err != nil {
		return nil, err
	}
	var out []hookReport
	for _, id := range []string{hookID, hookDLQID} {
		c := r.subs[id]
		c.mu.Lock()
		var rep hookReport
		if c.poison {
			rep = tally(inTopic, c.seen, dead, isPoison)
		} else {
			rep = tally(inTopic, c.seen, nil, nil)
		}
		c.mu.Unlock()
		rep.id, rep.records, rep.delivered = id, records, c.delivered.Load()
		for _, s := range subs {
			if s.ID == id {
				rep.gateway = s
			}
		}
		out = append(out, rep)
	}
	if d := out[1].deadLettered; d != deadLetters {
		return out, fmt.Errorf("%d dead letters of %s in %s, %d of them of a record of %s", deadLetters, hookDLQID, dlqTopic, d, topic)
	}
	return out, nil
}

// tally compares the records of the topic (body hash -> copies) with one
// subscription's deliveries and, when it has a dlq, its dead letters (and
// counts the records poison says its callback always refuses).
func tally(inTopic, seen, dead map[uint64]uint32, poison func(uint64) bool) hookReport {
	var rep hookReport
	for h, n := range inTopic {
		got := seen[h] + dead[h]
		if poison != nil && poison(h) {
			rep.poison += int64(n)
		}
		rep.deadLettered += int64(dead[h])
		if got < n {
			rep.missing += int64(n - got)
		} else {
			rep.duplicates += int64(got - n)
		}
	}
	for h, n := range seen {
		if inTopic[h] == 0 {
			rep.unknown += int64(n)
		}
	}
	return rep
}
