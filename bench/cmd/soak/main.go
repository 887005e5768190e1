// Command soak runs the gateway under steady mixed traffic for a long time
// and fails when a resource trends upward after warm-up.
//
// It starts a broker (a sluice with only dev_kafka, in a process of its own
// so the gateway's figures leave it out), a webhook receiver (an HTTP server
// in this process, on loopback) and `sluice run` with a generated
// configuration (one API with the POST, GET, SSE and WebSocket entrypoints,
// and one with two webhook push subscriptions of the same topic, calling the
// receiver), drives bounded traffic on loopback (HTTP POST, WebSocket
// publish and subscribe, at-least-once SSE readers, HTTP GET pages, with
// connection churn; the receiver answers 503 now and then), and samples
// every interval: RSS, open file descriptors and threads of the core and of
// each plugin process (/proc), the core's goroutines (admin /metrics
// go_goroutines) and the consumer lag of the readers' groups and of the push
// subscriptions. Samples go to a CSV and a PNG chart.
//
// After the traffic, the push subscriptions drain; then every record of the
// topic must have reached the receiver at least once (or, for the
// subscription with a dlq, the dead-letter topic). Duplicates are counted
// and reported. A subscription the gateway reports interrupted fails the
// run.
//
// The verdict compares, for each series, the median of the second quarter
// of the run with the median of the last quarter: a leak shows as the last
// quarter standing above the second by more than the tolerance. Medians
// ignore single spikes (a GC cycle, a rebalance); the first quarter is
// warm-up (pools, caches, the embedded broker's segments).
//
//	go run ./bench/cmd/soak -duration 10m -out docs/soak
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to drive traffic")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "sampling interval")
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding sluice and plugins/")
	flag.StringVar(&o.out, "out", "docs/soak", "directory for soak.csv and soak.png")
	flag.IntVar(&o.postRate, "post-rate", 100, "HTTP POST requests per second")
	flag.IntVar(&o.wsRate, "ws-rate", 50, "WebSocket messages published per second")
	flag.IntVar(&o.sseClients, "sse-clients", 3, "at-least-once SSE readers")
	flag.DurationVar(&o.drain, "drain", 2*time.Minute, "how long the push subscriptions may take to deliver the rest after the traffic")
	flag.Parse()
	if o.interval <= 0 || o.duration < 8*o.interval {
		log.Fatalf("soak: -duration must hold at least 8 samples of -interval")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Printf("soak: %v", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	duration, interval, drain    time.Duration
	binDir, out                  string
	postRate, wsRate, sseClients int
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "sluice-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Stopped after the gateway (defers run last first).
	hooks, err := startReceiver()
	if err != nil {
		return err
	}
	defer hooks.stop()
	g, err := startGateway(ctx, o.binDir, dir, hooks.url)
	if err != nil {
		return err
	}
	defer g.stop()
	log.Printf("soak: gateway on %s (admin %s, broker %s, webhook receiver %s), log %s", g.listen, g.admin, g.kafka, hooks.url, g.logPath)

	tctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	tr := newTraffic(g, o, hooks)
	trafficDone := tr.start(tctx)

	var samples []sample
	start := time.Now()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for loop := true; loop; {
		select {
		case <-tctx.Done():
			loop = false
			continue
		case <-tick.C:
		}
		s, err := takeSample(g, tr, time.Since(start))
		if err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		samples = append(samples, s)
		log.Printf("soak: %s", s.summary())
	}
	<-trafficDone
	if ctx.Err() != nil {
		return ctx.Err()
	}
	drainPush(ctx, g, tr, o.drain)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reports, hookErr := checkDeliveries(g, hooks)

	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(o.out, "soak.csv"), samples); err != nil {
		return err
	}
	verdicts := judge(samples)
	if err := writeChart(filepath.Join(o.out, "soak.png"), samples, o.duration); err != nil {
		return err
	}
	failed := false
	for _, v := range verdicts {
		log.Printf("soak: %s", v)
		failed = failed || !v.ok
	}
	log.Printf("soak: traffic %s", tr.totals())
	for _, r := range reports {
		log.Printf("soak: webhook %s", r)
		failed = failed || !r.ok()
	}
	if hookErr != nil {
		log.Printf("soak: webhook check: %v", hookErr)
		failed = true
	}
	if errs := tr.failures(); errs != "" {
		log.Printf("soak: client failures: %s", errs)
		failed = true
	}
	if failed {
		// The log goes with the temporary directory: show its end.
		log.Printf("soak: end of the gateway log:\n%s", tail(g.logPath))
		return fmt.Errorf("a resource trends upward, clients failed or webhooks missed records; see %s", o.out)
	}
	log.Printf("soak: flat after warm-up, every record delivered by the webhooks; %d samples in %s", len(samples), o.out)
	return nil
}

// drainPush waits, after the traffic, until the push subscriptions have
// committed the whole topic, for at most d; an interrupted subscription
// ends the wait (and is a client failure).
func drainPush(ctx context.Context, g *gateway, tr *traffic, d time.Duration) {
	start := time.Now()
	for {
		_, lag, err := consumerLag(g.kafka)
		if err == nil && lag == 0 {
			log.Printf("soak: push subscriptions drained in %s", time.Since(start).Round(time.Second))
			return
		}
		if subs, err := pushStatus(g.admin); err == nil {
			if stopped := interrupted(subs); len(stopped) > 0 {
				for _, e := range stopped {
					tr.fail("push subscription interrupted", fmt.Errorf("%s", e))
				}
				return
			}
		}
		if time.Since(start) > d || ctx.Err() != nil {
			log.Printf("soak: push subscriptions not drained after %s: lag %d (%v)", d, lag, err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
