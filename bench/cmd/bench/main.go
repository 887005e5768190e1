// Command bench measures the sluice gateway against IBM/sarama talking
// straight to the same Kafka broker, in the same run (docs/architecture.md, "Benchmarks").
//
// It starts bin/sluice with a generated configuration (free loopback ports, a
// temporary data directory, the embedded dev_kafka broker and one API per
// scenario), waits for the admin /ready endpoint, then runs every scenario
// twice: once through the gateway and once with sarama alone. The ratio of
// the two figures is what counts; absolute numbers depend on the machine.
//
// Usage (from the repository root, after `make build`):
//
//	go run ./bench/cmd/bench [flags]
//
// or simply `make bench`. See bench/README.md for the scenarios and how to
// read the ratios.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	n             int
	scenarios     []string
	json          bool
	baselineOnly  bool
	binDir        string
	kafka         string
	timeout       time.Duration
	readyTimeout  time.Duration
	minTime       time.Duration
	concurrency   []int
	rssStreams    []int
	fanoutClients int
	payload       int
	qos           string
	keep          bool
	resultsDir    string
	label         string
}

// parseFlags reads the flags; errors are reported on stderr by the flag set.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defBin := os.Getenv("SLUICE_BIN_DIR")
	if defBin == "" {
		defBin = "bin"
	}
	var scen, conc, rss string
	fs.IntVar(&o.n, "n", 50000, "messages per scenario: ws-publish, sse and http-get move n records; http-post sends n/10 requests; each sse-fanout client reads n/10 records")
	fs.StringVar(&scen, "scenarios", strings.Join(scenarioNames(), ","), "comma-separated scenarios to run, in this order")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON on stdout instead of a table")
	fs.BoolVar(&o.baselineOnly, "baseline-only", false, "run only the sarama half (no gateway) against -kafka, or an in-process kfake broker when -kafka is empty: measures the machine")
	fs.StringVar(&o.binDir, "bin", defBin, "directory holding sluice and plugins/; $SLUICE_BIN_DIR sets the default")
	fs.StringVar(&o.kafka, "kafka", "", "bootstrap address of an existing Kafka broker to use instead of the embedded dev_kafka (topics get a unique suffix)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "limit for each half of each scenario")
	fs.DurationVar(&o.minTime, "min-time", time.Second, "repeat a half (up to 5 runs) until its timed spans add up to this; the figure is the median run")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for the gateway's /ready")
	fs.StringVar(&conc, "c", "1,8,64,256", "comma-separated concurrencies of the http-post sweep: keep-alive clients (and sarama SyncProducer senders in its baseline)")
	fs.StringVar(&rss, "rss-streams", "1000,10000", "comma-separated SSE stream counts of fanout-rss; each point may take max(-timeout, 15ms per stream) and needs several open files per stream, which the bench raises where it may")
	fs.IntVar(&o.fanoutClients, "fanout-clients", 20, "SSE clients in sse-fanout (and consumer groups in its baseline)")
	fs.IntVar(&o.payload, "payload", 256, "payload size in bytes")
	fs.StringVar(&o.qos, "qos", "at-least-once", "QoS of the sse and http-get entrypoints: auto, at-most-once or at-least-once")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, gateway.log, broker data) and print its path")
	fs.StringVar(&o.resultsDir, "results", "", "also write results.md, results.json and post-sweep.png into this directory (make bench: bench/results)")
	fs.StringVar(&o.label, "label", "", "names the code measured in results.md (make bench passes git describe)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: bench [flags]\n\nScenarios:\n")
		for _, s := range allScenarios {
			fmt.Fprintf(fs.Output(), "  %-12s %s\n", s.name, s.what)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if findScenario(s) == nil {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(scenarioNames(), ", "))
		}
		if !slices.Contains(o.scenarios, s) {
			o.scenarios = append(o.scenarios, s)
		}
	}
	var err error
	if o.concurrency, err = parseCounts(conc, 1, 4096); err != nil {
		return nil, fmt.Errorf("-c: %w", err)
	}
	if o.rssStreams, err = parseCounts(rss, 1, 100000); err != nil {
		return nil, fmt.Errorf("-rss-streams: %w", err)
	}
	switch {
	case len(o.scenarios) == 0:
		return nil, fmt.Errorf("-scenarios names no scenario")
	case o.n < 10:
		return nil, fmt.Errorf("-n %d is too small (minimum 10)", o.n)
	case o.fanoutClients < 1:
		return nil, fmt.Errorf("-fanout-clients must be at least 1")
	case o.payload < 1 || o.payload > 1<<20:
		return nil, fmt.Errorf("-payload must be between 1 and 1048576 bytes")
	case o.timeout <= 0 || o.readyTimeout <= 0:
		return nil, fmt.Errorf("timeouts must be positive")
	case o.minTime < 0:
		return nil, fmt.Errorf("-min-time must not be negative")
	}
	switch o.qos {
	case "auto", "at-most-once", "at-least-once":
	default:
		return nil, fmt.Errorf("-qos %q: want auto, at-most-once or at-least-once", o.qos)
	}
	return o, nil
}

// parseCounts parses a comma-separated list of whole numbers between lo
// and hi; duplicates are dropped, the order is kept.
func parseCounts(s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < lo || v > hi {
			return nil, fmt.Errorf("%q is not a whole number between %d and %d", f, lo, hi)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no value in %q", s)
	}
	return out, nil
}

// current is the running gateway, for the second-interrupt handler.
var current atomic.Pointer[gateway]

// run is main without os.Exit, so that deferred clean-up (stopping the
// gateway above all) runs on every return path.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	started := time.Now().UTC()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		logf("interrupted: stopping (interrupt again to kill the gateway at once)")
		cancel()
		if _, ok := <-sigs; !ok {
			return
		}
		if g := current.Load(); g != nil {
			g.kill()
		}
		fmt.Fprintln(stderr, "bench: killed")
		os.Exit(130)
	}()

	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer func() {
		if o.keep {
			logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	e := &env{opts: o, logf: logf, runID: randomHex(4), dir: dir, payload: makePayload(o.payload)}
	e.topics = topicNames(o.kafka != "", e.runID)

	switch {
	case o.kafka != "":
		e.bootstrap = o.kafka
		logf("creating topics on %s", o.kafka)
		if err := createTopics(ctx, o.kafka, e.topics.all()); err != nil {
			logf("%v", err)
			return 1
		}
	case o.baselineOnly:
		addr, stop, err := startKfake(filepath.Join(dir, "kafka"), e.topics.all())
		if err != nil {
			logf("in-process broker: %v", err)
			return 1
		}
		defer stop()
		e.bootstrap = addr
		logf("in-process kfake broker at %s", addr)
	}
	rss := !o.baselineOnly && slices.Contains(o.scenarios, "fanout-rss")
	if rss {
		// Before the gateway starts: it and its plugins inherit the limit.
		want := uint64(8*slices.Max(o.rssStreams) + 4096)
		if got, err := raiseNoFile(want); err != nil {
			logf("fanout-rss: %v", err)
		} else {
			logf("open-file limit %d", got)
		}
	}
	if !o.baselineOnly {
		g, err := startGateway(ctx, e)
		if g != nil {
			current.Store(g)
			defer func() {
				if err := g.stop(); err != nil {
					logf("%v", err)
				}
				current.Store(nil)
			}()
		}
		if err != nil {
			logf("%v", err)
			if g != nil {
				fmt.Fprintf(stderr, "--- gateway log tail (%s) ---\n%s\n--- end of gateway log ---\n", g.logPath, g.tail(60))
			}
			return 1
		}
		e.gw = g
		if e.bootstrap == "" {
			e.bootstrap = g.kafka
		}
		logf("gateway ready on %s (admin %s, kafka %s)", g.listen, g.admin, e.bootstrap)
	}

	if err := e.connect(ctx); err != nil {
		logf("%v", err)
		return 1
	}
	defer e.close()

	if need := e.recordsToSeed(); need > 0 {
		logf("seeding %d records of %d B into %s", need, o.payload, e.topics.sub)
		sctx, scancel := context.WithTimeout(ctx, o.timeout)
		_, err := produceAsync(sctx, e.bootstrap, e.topics.sub, e.payload, need, false)
		scancel()
		if err != nil {
			logf("seeding: %v", err)
			if ctx.Err() != nil {
				return 130
			}
			return 1
		}
	}

	if rss {
		sctx, scancel := context.WithTimeout(ctx, o.timeout)
		_, err := produceAsync(sctx, e.bootstrap, e.topics.rss, e.payload, rssRecords, false)
		scancel()
		if err != nil {
			logf("seeding %s: %v", e.topics.rss, err)
			if ctx.Err() != nil {
				return 130
			}
			return 1
		}
	}

	var results []Result
	for _, name := range o.scenarios {
		s := findScenario(name)
		if s.sarama == nil && o.baselineOnly {
			logf("%s: skipped, it has no sarama half", name)
			continue
		}
		points := []int{0}
		if s.points != nil {
			points = s.points(o)
		}
		for _, p := range points {
			if ctx.Err() != nil {
				break
			}
			results = append(results, e.runScenario(ctx, s, p))
		}
	}
	if ctx.Err() != nil {
		logf("interrupted; results so far:")
	}
	rep := Report{
		Label: o.label, Date: started.Format("2006-01-02 15:04 UTC"), Args: args,
		N: o.n, PayloadBytes: o.payload, QoS: o.qos, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Broker: brokerKind(o), BaselineOnly: o.baselineOnly, Results: results,
	}
	if o.json {
		err = writeJSON(stdout, rep)
	} else {
		err = writeTable(stdout, rep)
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	if o.resultsDir != "" {
		if err := writeResults(o.resultsDir, rep); err != nil {
			logf("writing results: %v", err)
			return 1
		}
		logf("wrote %s", filepath.Join(o.resultsDir, resultsMarkdown))
	}
	if e.gw != nil && e.gw.exitedErr() != nil {
		fmt.Fprintf(stderr, "bench: the gateway exited during the run: %v\n--- gateway log tail ---\n%s\n--- end of gateway log ---\n", e.gw.exitedErr(), e.gw.tail(60))
		return 1
	}
	if ctx.Err() != nil {
		return 130
	}
	for _, r := range results {
		if r.failed() {
			return 1
		}
	}
	return 0
}

func brokerKind(o *options) string {
	switch {
	case o.kafka != "":
		return "external " + o.kafka
	case o.baselineOnly:
		return "in-process kfake"
	default:
		return "gateway dev_kafka"
	}
}

// runScenario runs both halves of s at sweep point clients (zero outside
// a sweep), each bounded by the scenario timeout.
func (e *env) runScenario(ctx context.Context, s *scenario, clients int) Result {
	e.clients = clients
	r := Result{Scenario: s.name, Unit: s.unit, Per: s.per, Clients: clients}
	if s.count != nil {
		r.Count = s.count(e.opts)
	} else {
		r.Count = clients
	}
	label := r.Label()
	half := func(name string, fn func(context.Context, *env) (Measure, error)) *Measure {
		e.logf("%s: %s ...", label, name)
		limit := e.opts.timeout
		if s.per == "stream" {
			// Opening streams takes time in proportion to their number:
			// 10,000 would not fit in the limit made for the other scenarios.
			limit = max(limit, time.Duration(clients)*rssOpenBudget+rssSampleTime)
		}
		hctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		cpu := cpuSample{}
		var runs []Measure
		var timed time.Duration
		for {
			e.timedFrom, e.timedTo = nil, nil
			c0 := e.sampleCPU()
			m, err := fn(hctx, e)
			c1 := e.sampleCPU()
			if e.timedFrom != nil && e.timedTo != nil {
				c0, c1 = e.timedFrom, e.timedTo
			}
			cpu.add(c1.sub(c0))
			if err != nil {
				if hctx.Err() == context.DeadlineExceeded {
					err = fmt.Errorf("timed out after %s: %w", limit, err)
				}
				m.Error = err.Error()
				e.logf("%s: %s failed: %v", label, name, err)
				if m.RSSMiB > 0 {
					// A partial memory reading still says something.
					m.CPU = cpuPerUnit(cpu, 1, m.Count, 0)
				}
				return &m
			}
			runs = append(runs, m)
			timed += time.Duration(m.Seconds * float64(time.Second))
			if s.once || len(runs) >= maxRuns || timed >= e.opts.minTime {
				break
			}
		}
		m := medianRun(runs)
		m.Runs = len(runs)
		m.CPU = cpuPerUnit(cpu, len(runs), m.Count, m.Requests)
		for _, c := range m.CPU {
			if c.Process == benchName {
				m.CPUBenchS = c.Seconds
			} else {
				m.CPUGatewayS += c.Seconds
			}
		}
		e.logf("%s: %s %s", label, name, m.summary(s.unit))
		return &m
	}
	if !e.opts.baselineOnly {
		r.Gateway = half("gateway", s.gateway)
		if e.gw.exitedErr() != nil {
			r.Gateway.Error = fmt.Sprintf("gateway exited: %v", e.gw.exitedErr())
		}
	}
	if ctx.Err() == nil && s.sarama != nil {
		r.Sarama = half("sarama", s.sarama)
	}
	if r.Gateway.ok() && r.Sarama.ok() && r.Sarama.Rate > 0 {
		r.Ratio = r.Gateway.Rate / r.Sarama.Rate
	}
	if hasAddedP99(r) {
		r.AddedP99Ms = r.Gateway.P99Ms - r.Sarama.P99Ms
	}
	return r
}

// cpuPerUnit turns the CPU time each process used over runs runs into
// seconds per run and microseconds per unit (count per run), and per
// request where requests carry many units; the gateway first, the bench
// last.
func cpuPerUnit(total cpuSample, runs, count, requests int) []ProcCPU {
	if runs < 1 {
		return nil
	}
	names := make([]string, 0, len(total))
	for name := range total {
		names = append(names, name)
	}
	slices.SortFunc(names, processOrder)
	out := make([]ProcCPU, 0, len(names))
	for _, name := range names {
		perRun := total[name] / time.Duration(runs)
		c := ProcCPU{Process: name, Seconds: perRun.Seconds()}
		if count > 0 {
			c.PerUnitUS = float64(perRun.Microseconds()) / float64(count)
		}
		if requests > 0 {
			c.PerRequestUS = float64(perRun.Microseconds()) / float64(requests)
		}
		out = append(out, c)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}

// makePayload returns printable ASCII, so that the same bytes travel
// unchanged through binary WebSocket frames, SSE data lines and JSON strings.
func makePayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}
