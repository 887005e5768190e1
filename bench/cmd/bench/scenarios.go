package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// scenario is one line of the report: a gateway half and a sarama half that
// move the same number of records of the same payload.
type scenario struct {
	name string
	unit string
	// per is what count counts, and what CPU time is divided by: req, msg
	// or stream.
	per  string
	what string
	// count is how many records (or requests) each half moves; nil in a
	// sweep whose point is the count.
	count func(*options) int
	// seed is how many records the scenario reads from the seeded topic;
	// zero for publishing scenarios.
	seed func(*options) int
	// points, when set, makes the scenario a sweep: one result per value,
	// which the halves read as env.clients.
	points func(*options) []int
	// once runs each half once, whatever -min-time says: a memory reading
	// is not made more precise by repeating the set-up it measures.
	once    bool
	gateway func(context.Context, *env) (Measure, error)
	// sarama is nil where there is nothing to compare with.
	sarama func(context.Context, *env) (Measure, error)
}

func fullN(o *options) int  { return o.n }
func tenthN(o *options) int { return max(o.n/10, 1) }
func noSeed(*options) int   { return 0 }

// allScenarios are the scenarios of docs/architecture.md ("Benchmarks") in their default order.
var allScenarios = []*scenario{
	{
		name: "ws-publish", unit: "msg/s", per: "msg",
		what:    "one WebSocket client sends n binary frames; records landed in Kafka per second (baseline: sarama AsyncProducer)",
		count:   fullN,
		seed:    noSeed,
		gateway: wsPublishGateway,
		sarama:  wsPublishSarama,
	},
	{
		name: "http-post", unit: "req/s", per: "req",
		what:    "for each -c concurrency, as many keep-alive clients POST n/10 single messages, each answered 202 after the ack; p50/p99 latency (baseline: sarama SyncProducer, as many senders)",
		count:   tenthN,
		seed:    noSeed,
		points:  func(o *options) []int { return o.concurrency },
		gateway: httpPostGateway,
		sarama:  httpPostSarama,
	},
	{
		name: "sse", unit: "msg/s", per: "msg",
		what:    "one SSE client reads n seeded records; msg/s from the first record to the last, start-up shown apart (baseline: one sarama consumer group)",
		count:   fullN,
		seed:    fullN,
		gateway: sseGateway,
		sarama:  consumeSarama(fullN, true),
	},
	{
		name: "sse-fanout", unit: "msg/s", per: "msg",
		what:    "-fanout-clients SSE clients, each with its own client identifier, each read n/10 records; aggregate msg/s from the first record to the last (baseline: as many consumer groups)",
		count:   func(o *options) int { return tenthN(o) * o.fanoutClients },
		seed:    tenthN,
		gateway: sseFanoutGateway,
		sarama:  fanoutSarama,
	},
	{
		name: "http-get", unit: "msg/s", per: "msg",
		what:    "repeated GETs (messages_limit_count = 500) by one client drain n seeded records; msg/s including every request's start-up (baseline: one sarama consumer group, including its start-up)",
		count:   fullN,
		seed:    fullN,
		gateway: httpGetGateway,
		sarama:  consumeSarama(fullN, false),
	},
	{
		name: "fanout-rss", unit: "streams/s", per: "stream",
		what:    "for each -rss-streams count, as many SSE streams (QoS none, each its own client identifier) read the same few records and stay open; RSS of the gateway and its plugins (no sarama half; skipped with -baseline-only)",
		seed:    noSeed,
		points:  func(o *options) []int { return o.rssStreams },
		once:    true,
		gateway: fanoutRSSGateway,
	},
}

func scenarioNames() []string {
	var out []string
	for _, s := range allScenarios {
		out = append(out, s.name)
	}
	return out
}

func findScenario(name string) *scenario {
	for _, s := range allScenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

// topics are the topic names of one run.
type topics struct {
	// pub receives what ws-publish and http-post publish.
	pub string
	// sub holds the seeded records the consuming scenarios read.
	sub string
	// rss holds the few records every fanout-rss stream reads.
	rss string
}

func (t topics) all() []string { return []string{t.pub, t.sub, t.rss} }

// partitions is the partition count of every bench topic.
const partitions = 3

// topicNames are the fixed names on the fresh embedded broker; an external
// broker may hold earlier runs' records, so there each run gets its own.
func topicNames(external bool, runID string) topics {
	t := topics{pub: "bench-pub", sub: "bench-sub", rss: "bench-rss"}
	if external {
		t.pub += "-" + runID
		t.sub += "-" + runID
		t.rss += "-" + runID
	}
	return t
}

// env is what the scenarios share.
type env struct {
	opts      *options
	logf      func(string, ...any)
	runID     string
	dir       string
	payload   []byte
	topics    topics
	bootstrap string
	// gw is nil with -baseline-only.
	gw *gateway
	// client reads high watermarks for ws-publish.
	client sarama.Client
	// seq numbers the client identifiers and consumer groups of this run.
	seq int
	// clients is the sweep point being measured (see scenario.points).
	clients int
	// timedFrom and timedTo are CPU samples a half takes around its timed
	// part (markTimed); nil when it takes none, and the whole run counts.
	timedFrom, timedTo cpuSample
}

// markTimed samples CPU at the start (begin) or end of a run's timed part,
// so that warm-up requests and set-up stay out of CPU per request.
func (e *env) markTimed(begin bool) {
	if begin {
		e.timedFrom = e.sampleCPU()
	} else {
		e.timedTo = e.sampleCPU()
	}
}

func (e *env) connect(ctx context.Context) error {
	c, err := sarama.NewClient([]string{e.bootstrap}, baseConfig())
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", e.bootstrap, err)
	}
	e.client = c
	return nil
}

func (e *env) close() {
	if e.client != nil {
		_ = e.client.Close()
	}
}

// recordsToSeed is the number of records the selected consuming scenarios
// need in the seeded topic.
func (e *env) recordsToSeed() int {
	n := 0
	for _, name := range e.opts.scenarios {
		n = max(n, findScenario(name).seed(e.opts))
	}
	return n
}

// uniqueID returns a client identifier or group id never used before in any
// run, so that every reader starts from the earliest offset.
func (e *env) uniqueID(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s-%s-%d", prefix, e.runID, e.seq)
}

// highWatermark sums the high watermarks of topic's partitions.
func (e *env) highWatermark(topic string) (int64, error) {
	parts, err := e.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	var sum int64
	for _, p := range parts {
		off, err := e.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("offset of %s/%d: %w", topic, p, err)
		}
		sum += off
	}
	return sum, nil
}

// apiHCL renders one API block per scenario: each scenario has its own
// context path, and only the direction it measures is enabled.
func apiHCL(e *env) string {
	var b strings.Builder
	pub := func(name, entrypoint string) {
		fmt.Fprintf(&b, `
api %q {
  context_path = "/%s"
  plan "keyless" {}
  %s
  endpoint "kafka" "default" {
    bootstrap_servers = %q
    producer {
      enabled = true
      topics  = [%q]
    }
  }
}
`, name, name, entrypoint, e.bootstrap, e.topics.pub)
	}
	sub := func(name, entrypoint string) {
		fmt.Fprintf(&b, `
api %q {
  context_path = "/%s"
  plan "keyless" {}
  %s
  endpoint "kafka" "default" {
    bootstrap_servers = %q
    consumer {
      enabled           = true
      topics            = [%q]
      auto_offset_reset = "earliest"
    }
  }
}
`, name, name, entrypoint, e.bootstrap, e.topics.sub)
	}
	pub("bench-ws", `entrypoint "websocket" {
    publisher { enabled = true }
    subscriber { enabled = false }
  }`)
	pub("bench-post", `entrypoint "http-post" {}`)
	sseEntry := fmt.Sprintf(`entrypoint "sse" {
    qos                      = %q
    heartbeat_interval_in_ms = 5000
  }`, e.opts.qos)
	sub("bench-sse", sseEntry)
	sub("bench-fanout", sseEntry)
	sub("bench-get", fmt.Sprintf(`entrypoint "http-get" {
    qos                        = %q
    messages_limit_count       = %d
    messages_limit_duration_ms = 5000
  }`, e.opts.qos, getPageSize))
	// fanout-rss: QoS none, the level at which streams reading the same
	// records from the same position need no state of their own.
	fmt.Fprintf(&b, `
api "bench-rss" {
  context_path = "/bench-rss"
  plan "keyless" {}
  entrypoint "sse" {
    qos                      = "none"
    heartbeat_interval_in_ms = 5000
  }
  endpoint "kafka" "default" {
    bootstrap_servers = %q
    consumer {
      enabled           = true
      topics            = [%q]
      auto_offset_reset = "earliest"
    }
  }
}
`, e.bootstrap, e.topics.rss)
	return b.String()
}

// getPageSize is the http-get entrypoint's messages_limit_count.
const getPageSize = 500
