package devkafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersion is the protocol version the tests speak; the gateway's
// Kafka plugin negotiates recent versions as well.
var saramaVersion = sarama.V3_9_0_0

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = saramaVersion
	c.ClientID = "devkafka-test"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	return c
}

type sentRecord struct {
	key, value string
	headers    map[string]string
	partition  int32
	offset     int64
	ts         time.Time
}

// produce sends n records to topic through one producer per compression
// codec, with a key and headers, and returns what was acknowledged.
func produce(t *testing.T, addr, topic string, n int) []sentRecord {
	t.Helper()
	codecs := []sarama.CompressionCodec{sarama.CompressionLZ4, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionZSTD, sarama.CompressionNone}
	producers := make([]sarama.SyncProducer, len(codecs))
	for i, codec := range codecs {
		c := saramaConfig()
		c.Producer.Compression = codec
		if codec == sarama.CompressionZSTD {
			c.Producer.Idempotent = true
			c.Net.MaxOpenRequests = 1
		}
		p, err := sarama.NewSyncProducer([]string{addr}, c)
		if err != nil {
			t.Fatalf("producer (%v): %v", codec, err)
		}
		defer p.Close()
		producers[i] = p
	}
	var sent []sentRecord
	for i := range n {
		ts := time.UnixMilli(time.Now().UnixMilli()).Add(time.Duration(i) * time.Millisecond)
		r := sentRecord{
			key:   fmt.Sprintf("key-%d", i),
			value: fmt.Sprintf(`{"n":%d,"v":"%s"}`, i, strings.Repeat("x", i*37)),
			headers: map[string]string{
				"X-Index": fmt.Sprint(i),
				"X-Codec": codecs[i%len(codecs)].String(),
			},
			ts: ts,
		}
		msg := &sarama.ProducerMessage{
			Topic:     topic,
			Key:       sarama.StringEncoder(r.key),
			Value:     sarama.StringEncoder(r.value),
			Timestamp: ts,
		}
		for k, v := range r.headers {
			msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		part, off, err := producers[i%len(producers)].SendMessage(msg)
		if err != nil {
			t.Fatalf("send %d (%v): %v", i, codecs[i%len(codecs)], err)
		}
		r.partition, r.offset = part, off
		sent = append(sent, r)
	}
	return sent
}

func headersOf(m *sarama.ConsumerMessage) map[string]string {
	h := make(map[string]string, len(m.Headers))
	for _, rh := range m.Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	return h
}

func checkRecord(t *testing.T, want sentRecord, got *sarama.ConsumerMessage) {
	t.Helper()
	if got.Partition != want.partition || got.Offset != want.offset {
		t.Errorf("record %s at %d/%d, want %d/%d", want.key, got.Partition, got.Offset, want.partition, want.offset)
	}
	if string(got.Key) != want.key || string(got.Value) != want.value {
		t.Errorf("record at %d/%d: key %q value %q, want %q %q", got.Partition, got.Offset, got.Key, got.Value, want.key, want.value)
	}
	gh := headersOf(got)
	if len(gh) != len(want.headers) {
		t.Errorf("record %s headers %v, want %v", want.key, gh, want.headers)
	}
	for k, v := range want.headers {
		if gh[k] != v {
			t.Errorf("record %s header %s = %q, want %q", want.key, k, gh[k], v)
		}
	}
	if !got.Timestamp.Equal(want.ts) {
		t.Errorf("record %s timestamp %v, want %v", want.key, got.Timestamp, want.ts)
	}
}

// groupHandler collects messages, marks them and commits once it has want.
type groupHandler struct {
	want int
	mu   sync.Mutex
	got  []*sarama.ConsumerMessage
	done chan struct{}
	once sync.Once
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, m)
		n := len(h.got)
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n >= h.want {
			s.Commit()
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// consumeGroup joins group, reads until want messages arrived, commits and
// leaves.
func consumeGroup(t *testing.T, addr, group, topic string, want int) []*sarama.ConsumerMessage {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, saramaConfig())
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	h := &groupHandler{want: want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case err := <-errc:
		t.Fatalf("consume: %v", err)
	case <-time.After(15 * time.Second):
		h.mu.Lock()
		n := len(h.got)
		h.mu.Unlock()
		t.Fatalf("group %s got %d of %d messages in time", group, n, want)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("close consumer group: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// readAll reads every partition of topic from the oldest offset to the high
// water mark.
func readAll(t *testing.T, addr, topic string) map[string]*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions: %v", err)
	}
	out := map[string]*sarama.ConsumerMessage{}
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset: %v", err)
		}
		if hwm == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume partition %d: %v", p, err)
		}
		for last := int64(-1); last+1 < hwm; {
			select {
			case m := <-pc.Messages():
				out[string(m.Key)] = m
				last = m.Offset
			case <-time.After(10 * time.Second):
				t.Fatalf("partition %d: timed out before offset %d", p, hwm)
			}
		}
		_ = pc.Close()
	}
	return out
}

func committedOffsets(t *testing.T, addr, group, topic string) map[int32]int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int32]int64{}
	for p, b := range resp.Blocks[topic] {
		if b.Err != sarama.ErrNoError {
			t.Fatalf("offset of %s/%d: %v", topic, p, b.Err)
		}
		if b.Offset >= 0 {
			out[p] = b.Offset
		}
	}
	return out
}

func TestPersistenceAcrossRestartWithSarama(t *testing.T) {
	dir := t.TempDir()
	const topic, group, n = "orders", "g1", 20
	cfg := Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "kafka"), Topics: map[string]int{topic: 3}}

	b := startBroker(t, cfg)
	sent := produce(t, b.Addr(), topic, n)
	got := consumeGroup(t, b.Addr(), group, topic, n)
	if len(got) != n {
		t.Fatalf("group read %d messages, want %d", len(got), n)
	}
	byKey := map[string]sentRecord{}
	wantCommitted := map[int32]int64{}
	for _, r := range sent {
		byKey[r.key] = r
		wantCommitted[r.partition] = max(wantCommitted[r.partition], r.offset+1)
	}
	for _, m := range got {
		checkRecord(t, byKey[string(m.Key)], m)
	}
	if c := committedOffsets(t, b.Addr(), group, topic); fmt.Sprint(c) != fmt.Sprint(wantCommitted) {
		t.Fatalf("committed before restart %v, want %v", c, wantCommitted)
	}
	if len(wantCommitted) < 2 {
		t.Fatalf("records landed in %d partition(s); the test wants several", len(wantCommitted))
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Restart from the same data dir on a new port.
	b2 := startBroker(t, cfg)
	all := readAll(t, b2.Addr(), topic)
	if len(all) != n {
		t.Fatalf("after restart read %d records, want %d", len(all), n)
	}
	for k, r := range byKey {
		checkRecord(t, r, all[k])
	}
	if c := committedOffsets(t, b2.Addr(), group, topic); fmt.Sprint(c) != fmt.Sprint(wantCommitted) {
		t.Fatalf("committed after restart %v, want %v", c, wantCommitted)
	}

	// The group resumes after its committed offsets: it sees only new records.
	more := produce(t, b2.Addr(), topic, 1)
	if more[0].offset != wantCommitted[more[0].partition] {
		t.Fatalf("new record at offset %d, want %d (offsets continue after restart)", more[0].offset, wantCommitted[more[0].partition])
	}
	resumed := consumeGroup(t, b2.Addr(), group, topic, 1)
	if len(resumed) != 1 {
		t.Fatalf("resumed group read %d records, want only the new one", len(resumed))
	}
	checkRecord(t, more[0], resumed[0])
}

func TestPortZeroAndAutoCreate(t *testing.T) {
	b := startBroker(t, Config{Listen: "127.0.0.1:0"})
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 with a real port", b.Addr())
	}
	if b.DataDir() != "" {
		t.Fatalf("DataDir() = %q, want empty (memory only)", b.DataDir())
	}
	b2 := startBroker(t, Config{Listen: "127.0.0.1:0"})
	if b2.Addr() == b.Addr() {
		t.Fatalf("two brokers share %s", b.Addr())
	}
	// Producing to an unknown topic creates it (one partition, as Kafka).
	sent := produce(t, b.Addr(), "auto-created", 3)
	all := readAll(t, b.Addr(), "auto-created")
	for _, r := range sent {
		checkRecord(t, r, all[r.key])
	}
	c, err := sarama.NewClient([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions("auto-created")
	if err != nil || len(parts) != 1 {
		t.Fatalf("auto-created topic partitions %v (%v), want 1", parts, err)
	}
}

func TestWildcardListenAdvertisesLoopback(t *testing.T) {
	b := startBroker(t, Config{Listen: "0.0.0.0:0", Topics: map[string]int{"w": 1}})
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want the loopback address", b.Addr())
	}
	c, err := sarama.NewClient([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.Brokers()
	if len(brokers) != 1 || brokers[0].Addr() != b.Addr() {
		t.Fatalf("metadata brokers %v, want one at %s", brokers, b.Addr())
	}
}

func TestConfiguredTopicsAndExistingLeftAlone(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Topics: map[string]int{"a": 3, "b.c_d-1": 1}})
	partitions := func(addr, topic string) int {
		c, err := sarama.NewClient([]string{addr}, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ps, err := c.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		return len(ps)
	}
	if n := partitions(b.Addr(), "a"); n != 3 {
		t.Fatalf("topic a has %d partitions, want 3", n)
	}
	if n := partitions(b.Addr(), "b.c_d-1"); n != 1 {
		t.Fatalf("topic b.c_d-1 has %d partitions, want 1", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Topics: map[string]int{"a": 5, "new": 2}})
	if n := partitions(b2.Addr(), "a"); n != 3 {
		t.Fatalf("existing topic a has %d partitions after restart, want 3 (left alone)", n)
	}
	if n := partitions(b2.Addr(), "new"); n != 2 {
		t.Fatalf("topic new has %d partitions, want 2", n)
	}
}

func TestCrashRecovery(t *testing.T) {
	// What is on disk while the broker runs, without Close, must be enough:
	// copy the data dir of a live broker (as a kill -9 would leave it) and
	// start a second broker on the copy.
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	b := startBroker(t, Config{Listen: "127.0.0.1:0", DataDir: live, Topics: map[string]int{"t": 2}})
	sent := produce(t, b.Addr(), "t", 6)
	consumeGroup(t, b.Addr(), "crash-group", "t", 6)
	want := committedOffsets(t, b.Addr(), "crash-group", "t")

	copyDir := filepath.Join(dir, "copy")
	if err := os.CopyFS(copyDir, os.DirFS(live)); err != nil {
		t.Fatalf("copy data dir: %v", err)
	}
	b2 := startBroker(t, Config{Listen: "127.0.0.1:0", DataDir: copyDir})
	all := readAll(t, b2.Addr(), "t")
	for _, r := range sent {
		checkRecord(t, r, all[r.key])
	}
	if got := committedOffsets(t, b2.Addr(), "crash-group", "t"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("committed offsets after crash %v, want %v", got, want)
	}
}

func TestCompressionAcrossVersions(t *testing.T) {
	b := startBroker(t, Config{Listen: "127.0.0.1:0", Topics: map[string]int{"v": 1}})
	for _, v := range []sarama.KafkaVersion{sarama.DefaultVersion, sarama.V2_1_0_0, sarama.V4_1_0_0} {
		t.Run(v.String(), func(t *testing.T) {
			old := saramaVersion
			saramaVersion = v
			defer func() { saramaVersion = old }()
			topic := "v-" + strings.ReplaceAll(v.String(), ".", "_")
			sent := produce(t, b.Addr(), topic, 5)
			all := readAll(t, b.Addr(), topic)
			for _, r := range sent {
				checkRecord(t, r, all[r.key])
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	log := testLogger(t)
	dir := t.TempDir()
	b := startBroker(t, Config{Listen: "127.0.0.1:0", DataDir: dir})

	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"address in use", Config{Listen: b.Addr()}, "address already in use"},
		{"data dir in use", Config{Listen: "127.0.0.1:0", DataDir: dir}, "is in use by another running dev broker"},
		{"bad listen", Config{Listen: "localhost"}, "is not host:port"},
		{"bad port", Config{Listen: "127.0.0.1:99999"}, "port must be a number"},
		{"bad topic", Config{Listen: "127.0.0.1:0", Topics: map[string]int{"a b": 1}}, `contains ' '`},
		{"zero partitions", Config{Listen: "127.0.0.1:0", Topics: map[string]int{"z": 0}}, "has 0 partitions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Start(ctx, c.cfg, log)
			if err == nil {
				_ = got.Close()
				t.Fatalf("Start succeeded, want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "dev_kafka: ") {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
		})
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Start(cancelled, Config{Listen: "127.0.0.1:0"}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v, want context.Canceled", err)
	}

	// The lock is released by Close: the same dir starts again.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	startBroker(t, Config{Listen: "127.0.0.1:0", DataDir: dir})
}
