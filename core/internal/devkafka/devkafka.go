// Package devkafka runs the embedded Kafka-compatible development broker that
// the gateway starts for its `dev_kafka` HCL block:
//
//	dev_kafka {
//	  listen   = "127.0.0.1:9092"
//	  data_dir = ".sluice/kafka"
//	  topics   = { demo = 3 }
//	}
//
// The broker is franz-go's kfake (github.com/twmb/franz-go/pkg/kfake) with one
// node. It speaks the Kafka wire protocol well enough for IBM/sarama and
// franz-go clients: produce (idempotent too) and fetch with gzip, snappy, lz4
// and zstd batches, record headers, classic consumer groups with offset
// commits, admin requests and transactions. Topics named in Config.Topics are
// created at start with their partition count; a topic that already exists is
// left as it is. Producing to or asking metadata for an unknown topic creates
// it with one partition, as Kafka's defaults (auto.create.topics.enable=true,
// num.partitions=1) do.
//
// # Persistence
//
// kfake has built-in disk persistence (its DataDir option) and this package
// uses it rather than a snapshot of its own. With Config.DataDir set:
//
//   - every produced record batch is appended, as it is acknowledged, to a
//     segment file (raw Kafka RecordBatch bytes: keys, values, headers,
//     timestamps and offsets as produced) with an index file beside it, under
//     DataDir/<topic>/<partition>/;
//   - topics (with partition counts and configs) are rewritten atomically
//     (temporary file, fsync, rename) whenever they change;
//   - consumer-group metadata and committed offsets are appended to
//     DataDir/groups.log on every commit;
//   - Close drains in-flight offset commits, writes a full snapshot (topics,
//     partition state, compacted group log, producer-id state, session state)
//     and fsyncs and closes every file.
//
// Start with the same DataDir reloads all of it: records keep their offsets,
// topics their partition counts, groups their committed offsets. Because the
// logs are written as requests are served, a crash (kill -9, panic) also
// keeps every acknowledged record and commit; a partially written trailing
// batch or log entry is detected by its checksum and dropped on the next
// start.
//
// Limits: writes are not fsynced per request (like Kafka's default flush
// policy), so a power loss or kernel crash can lose what was still in the
// page cache. A DataDir is used by one broker at a time: Start takes an
// exclusive lock (a lock file in DataDir, flock where the OS has it) and
// fails if another broker holds it. The on-disk format is kfake's own, not
// Apache Kafka's log format: a real broker cannot read a DataDir, and
// upgrading kfake may migrate it (kfake reads its current and previous
// format version). Without a DataDir everything is kept in memory and lost
// on Close. This is a development broker: one node, no replication, no
// security; use a real Kafka cluster in production.
package devkafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultListen is the address the broker listens on when Config.Listen is
// empty: Kafka's usual port on the loopback interface.
const DefaultListen = "127.0.0.1:9092"

// clusterID is the cluster id reported to clients of a new DataDir; a
// reloaded DataDir keeps the id it was created with.
const clusterID = "sluice-dev"

// lockFileName is the file in DataDir that marks it as in use.
const lockFileName = "sluice-devkafka.lock"

// Config is the `dev_kafka` block of the gateway configuration.
type Config struct {
	// Listen is the host:port to listen on, e.g. 127.0.0.1:9092. Port 0
	// picks a free port (see Broker.Addr). Empty means DefaultListen.
	Listen string
	// DataDir is the directory where topics, records and committed offsets
	// are kept across restarts. It is created if missing. Empty keeps
	// everything in memory only.
	DataDir string
	// Topics maps topic names to partition counts. Missing topics are
	// created at start; existing ones are left unchanged.
	Topics map[string]int
}

// Broker is a running embedded dev broker. Create it with Start and stop it
// with Close.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	dataDir string
	log     *slog.Logger
	klog    *kfakeLogger
	unlock  func() error

	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, takes the DataDir lock, listens on cfg.Listen,
// reloads whatever DataDir holds and creates the configured topics that do
// not exist yet. ctx bounds the start-up only; the broker runs until Close.
// log may be nil.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dev_kafka")
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dev_kafka: start cancelled: %w", err)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}

	var (
		dataDir  string
		unlock   = func() error { return nil }
		restored bool
	)
	if cfg.DataDir != "" {
		var err error
		if dataDir, err = filepath.Abs(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("dev_kafka: data_dir %q: %w", cfg.DataDir, err)
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("dev_kafka: cannot create data_dir %s: %w; set dev_kafka.data_dir to a writable directory", dataDir, err)
		}
		if unlock, err = lockDir(dataDir); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dataDir, "meta.json")); err == nil {
			restored = true
		}
	}
	fail := func(err error) (*Broker, error) {
		_ = unlock()
		return nil, err
	}

	ln, advertised, err := listen(ctx, cfg.Listen)
	if err != nil {
		return fail(err)
	}
	handedOut := false
	listenFn := func(string, string) (net.Listener, error) {
		if handedOut {
			return nil, errors.New("dev_kafka runs a single broker node")
		}
		handedOut = true
		return ln, nil
	}

	klog := &kfakeLogger{log: log}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.WithLogger(klog),
		kfake.ClusterID(clusterID),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(1),
		kfake.BrokerConfigs(map[string]string{"default.replication.factor": "1"}),
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		_ = ln.Close()
		if dataDir != "" {
			return fail(fmt.Errorf("dev_kafka: cannot load data_dir %s: %w; fix or move the directory away to start empty", dataDir, err))
		}
		return fail(fmt.Errorf("dev_kafka: start broker: %w", err))
	}

	b := &Broker{
		cluster: cluster,
		addr:    advertised,
		dataDir: dataDir,
		log:     log,
		klog:    klog,
		unlock:  unlock,
	}
	if err := b.ensureTopics(ctx, cfg.Topics); err != nil {
		_ = b.Close()
		return nil, err
	}

	attrs := []any{"addr", b.addr}
	if dataDir == "" {
		attrs = append(attrs, "data_dir", "", "persistence", "none (in memory)")
	} else {
		attrs = append(attrs, "data_dir", dataDir, "restored", restored)
	}
	log.Info("dev kafka broker started", attrs...)
	return b, nil
}

// Addr returns the host:port clients should bootstrap with. With port 0 in
// Config.Listen it carries the port actually chosen; with a wildcard host
// (0.0.0.0, ::) it names the loopback address, which is also what the
// broker advertises in metadata.
func (b *Broker) Addr() string { return b.addr }

// DataDir returns the absolute data directory in use, or "" when the broker
// keeps everything in memory.
func (b *Broker) DataDir() string { return b.dataDir }

// Close stops accepting connections, writes all state to DataDir, closes
// its files and releases the DataDir lock. It is safe to call more than
// once; later calls return the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.klog.capture(true)
		b.cluster.Close()
		errs := b.klog.capture(false)
		if err := b.unlock(); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			b.closeErr = fmt.Errorf("dev_kafka: flushing data_dir %s: %w; check free disk space and permissions", b.dataDir, errors.Join(errs...))
			b.log.Error("dev kafka broker stopped with errors", "error", b.closeErr)
			return
		}
		b.log.Info("dev kafka broker stopped", "addr", b.addr)
	})
	return b.closeErr
}

// ensureTopics creates the configured topics that do not exist yet.
func (b *Broker) ensureTopics(ctx context.Context, topics map[string]int) error {
	names := make([]string, 0, len(topics))
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dev_kafka: start cancelled: %w", err)
		}
		want := topics[name]
		if b.cluster.TopicInfo(name) != nil {
			if have := len(b.cluster.PartitionInfos(name)); have != want {
				b.log.Warn("topic exists with a different partition count; leaving it unchanged",
					"topic", name, "partitions", have, "configured", want)
			}
			continue
		}
		err := b.cluster.CreateTopic(name, int32(want), nil)
		switch {
		case err == nil:
			b.log.Debug("created topic", "topic", name, "partitions", want)
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Created concurrently by a client's auto-creation.
		default:
			return fmt.Errorf("dev_kafka: cannot create topic %q with %d partitions: %w; fix its entry in dev_kafka.topics", name, want, err)
		}
	}
	return nil
}

// validate checks cfg and says what to fix.
func validate(cfg Config) error {
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("dev_kafka: listen %q is not host:port (e.g. 127.0.0.1:9092): %w", cfg.Listen, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("dev_kafka: listen %q: port must be a number from 0 to 65535", cfg.Listen)
	}
	names := make([]string, 0, len(cfg.Topics))
	for name := range cfg.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if err := validTopicName(name); err != nil {
			errs = append(errs, fmt.Errorf("dev_kafka: topics: %w", err))
		}
		if n := cfg.Topics[name]; n < 1 || n > 1<<20 {
			errs = append(errs, fmt.Errorf("dev_kafka: topics: topic %q has %d partitions; use a count from 1 to %d", name, n, 1<<20))
		}
	}
	return errors.Join(errs...)
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("topic name %q is %d characters long; the limit is 249", name, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q contains %q; use only letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// listen opens the TCP listener on addr and returns it with the address to
// advertise to clients.
func listen(ctx context.Context, addr string) (net.Listener, string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", fmt.Errorf("dev_kafka: cannot listen on %s: address already in use (another Kafka broker or gateway is running there); stop it or set dev_kafka.listen to a free port: %w", addr, err)
		}
		return nil, "", fmt.Errorf("dev_kafka: cannot listen on %s: %w; set dev_kafka.listen to a local host:port", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	advertised := net.JoinHostPort(host, port)
	return advertisedListener{Listener: ln, addr: tcpAddr(advertised)}, advertised, nil
}

// advertisedListener reports the advertised address from Addr, which kfake
// uses for the broker's host and port in metadata responses.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// tcpAddr is a host:port that may name a host rather than an IP.
type tcpAddr string

func (tcpAddr) Network() string  { return "tcp" }
func (a tcpAddr) String() string { return string(a) }

// kfakeLogger forwards kfake's logs to slog and, while capturing, keeps its
// error-level messages (failed writes to DataDir during Close).
type kfakeLogger struct {
	log *slog.Logger

	mu        sync.Mutex
	capturing bool
	errs      []error
}

// capture turns error capture on or off and returns what was captured.
func (l *kfakeLogger) capture(on bool) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.capturing = on
	errs := l.errs
	l.errs = nil
	return errs
}

// Logf implements kfake.Logger.
func (l *kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	if level == kfake.LogLevelError {
		l.mu.Lock()
		if l.capturing {
			l.errs = append(l.errs, fmt.Errorf(msg, args...))
		}
		l.mu.Unlock()
	}
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelDebug
	default:
		sl = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, sl) {
		return
	}
	l.log.Log(ctx, sl, fmt.Sprintf(msg, args...))
}
