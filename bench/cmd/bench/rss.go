package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rssRecords is how many records the fanout-rss topic holds: every stream
// reads them all before it counts as open, which proves it delivers end to
// end, and then idles on heartbeats.
const rssRecords = 10

// rssOpening bounds the streams being opened at once (sent but not yet
// holding all their records): each opening costs the gateway a consumer
// start, and unbounded, 10,000 of them would only measure a stampede.
const rssOpening = 100

// rssSettle is the pause between the last stream opening and the first RSS
// reading, so that buffers filled while opening are in their steady state.
const rssSettle = time.Second

// rssOpenBudget is the time fanout-rss allows per stream to open, when
// that is more than -timeout: 15 ms, where the gateway took about 10 ms
// per stream on two cores when the scenario was written.
const rssOpenBudget = 15 * time.Millisecond

// rssSampleTime leaves room after the streams opened for the settle pause
// and the readings, within the half's time limit.
const rssSampleTime = 5 * time.Second

// parseVmRSS returns the VmRSS line of a /proc/<pid>/status text, in KiB.
func parseVmRSS(status string) (int64, bool) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// gatewayRSS returns the resident memory of each gateway process by name,
// in KiB; processes of one name are summed.
func (e *env) gatewayRSS() map[string]int64 {
	out := map[string]int64{}
	if e.gw == nil {
		return out
	}
	for _, p := range gatewayTree(e.gw.cmd.Process.Pid) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "status"))
		if err != nil {
			continue
		}
		if kib, ok := parseVmRSS(string(b)); ok {
			out[p.name] += kib
		}
	}
	return out
}

// sumKiB adds the values of m.
func sumKiB(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

// rssMeasure fills the RSS fields of m from the readings before the first
// stream and with open streams open (KiB per process).
func rssMeasure(m *Measure, before, with map[string]int64, open int) {
	m.Streams = open
	m.RSSBeforeMiB = float64(sumKiB(before)) / 1024
	m.RSSMiB = float64(sumKiB(with)) / 1024
	if open > 0 {
		m.RSSKiBPerStream = float64(sumKiB(with)-sumKiB(before)) / float64(open)
	}
	names := make([]string, 0, len(with))
	for name := range with {
		names = append(names, name)
	}
	slices.SortFunc(names, processOrder)
	m.RSS = nil
	for _, name := range names {
		m.RSS = append(m.RSS, ProcRSS{Process: name, MiB: float64(with[name]) / 1024})
	}
}

// raiseNoFile raises the open-file limit of the bench, and so of the
// gateway and its plugins, which inherit it, to at least want descriptors:
// 10,000 streams need as many sockets in the bench, in the gateway, and
// between the gateway and the broker. The hard limit moves only for root;
// otherwise the soft limit goes as high as the hard one allows, and the
// caller is told to raise it with `ulimit -n`.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	// The kernel refuses any limit above fs.nr_open.
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && want > n {
			want = n
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}); err == nil {
		return want, nil
	}
	if lim.Cur < lim.Max {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: lim.Max, Max: lim.Max}); err != nil {
			return lim.Cur, err
		}
		lim.Cur = lim.Max
	}
	return lim.Cur, fmt.Errorf("open-file limit %d is below the %d wanted (raise it with `ulimit -n %d`)", lim.Cur, want, want)
}

// fanoutRSSGateway is the fanout-rss scenario: e.clients SSE streams, each
// with its own client identifier (so each its own consumer group, all
// reading the same records from the earliest offset, QoS none), opened at
// most rssOpening at a time. Once every stream holds the topic's records,
// the gateway's and its plugins' RSS is read; then all streams close.
// Count is the streams asked for; Rate is streams opened per second.
func fanoutRSSGateway(ctx context.Context, e *env) (Measure, error) {
	n := e.clients
	url := "/bench-rss"
	before := e.gatewayRSS()

	// Streams live until the readings are done; opening stops earlier, so
	// that a slow gateway still leaves time to read its memory.
	streams, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	openBy := time.Now().Add(e.opts.timeout)
	if dl, ok := ctx.Deadline(); ok {
		openBy = dl.Add(-rssSampleTime)
	}
	opening, stopOpening := context.WithDeadline(ctx, openBy)
	defer stopOpening()

	var (
		// cut counts streams still opening when the opening limit ran out;
		// failed, those that failed for any other reason.
		open, failed, cut atomic.Int64
		firstErr          atomic.Pointer[error]
		wg                sync.WaitGroup
		slots             = make(chan struct{}, rssOpening)
	)
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	start := time.Now()
	var allOpen time.Time
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.uniqueID("bench-rss")
	}
	launched := 0
launch:
	for ; launched < n; launched++ {
		select {
		case slots <- struct{}{}:
		case <-opening.Done():
			break launch
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			released, opened := false, false
			release := func() {
				if !released {
					released = true
					<-slots
				}
			}
			defer release()
			err := holdSSE(streams, opening, e.gw.listen, url, id, rssRecords, func() {
				opened = true
				open.Add(1)
				release()
			})
			if streams.Err() == nil {
				// Any end before the readings are done is a failure: a
				// stream that opened and then closed is one fewer held.
				if opened {
					open.Add(-1)
				}
				switch {
				case !opened && opening.Err() != nil:
					cut.Add(1)
				case err == nil:
					fail(fmt.Errorf("stream %s: closed by the gateway", id))
				default:
					fail(fmt.Errorf("stream %s: %w", id, err))
				}
			}
		}(ids[launched])
	}
	// Wait for every launched stream to open or fail.
	tick := time.NewTicker(20 * time.Millisecond)
	for int(open.Load()+failed.Load()+cut.Load()) < launched && opening.Err() == nil {
		<-tick.C
	}
	tick.Stop()
	allOpen = time.Now()
	m := rateOf(int(open.Load()), allOpen.Sub(start))
	m.Count = n

	time.Sleep(rssSettle)
	// The largest of three readings: memory that was in use at any of them.
	var with map[string]int64
	for i := range 3 {
		if i > 0 {
			time.Sleep(250 * time.Millisecond)
		}
		if r := e.gatewayRSS(); sumKiB(r) > sumKiB(with) {
			with = r
		}
	}
	held := int(open.Load())
	rssMeasure(&m, before, with, held)
	e.logf("fanout-rss: %d of %d streams open, RSS %.1f MiB (before %.1f MiB)", held, n, m.RSSMiB, m.RSSBeforeMiB)

	stopStreams()
	wg.Wait()
	if held < n || failed.Load() > 0 {
		return m, errors.New(rssShortfall(n, held, int(failed.Load()), int(cut.Load()), n-launched, openBy.Sub(start), firstErr.Load()))
	}
	return m, nil
}

// rssShortfall explains why fewer than n streams were held.
func rssShortfall(n, held, failed, cut, notStarted int, limit time.Duration, first *error) string {
	msg := fmt.Sprintf("%d of %d streams held their records when RSS was read", held, n)
	if failed > 0 {
		msg += fmt.Sprintf("; %d failed", failed)
		if first != nil {
			msg += fmt.Sprintf(" (first: %v)", *first)
		}
	}
	if cut+notStarted > 0 {
		msg += fmt.Sprintf("; %d still opening and %d not started when the opening limit (%s) ran out", cut, notStarted, limit.Round(time.Second))
	}
	return msg
}

// holdSSE opens one SSE stream on its own connection, calls onOpen once
// records events have arrived, then reads (heartbeats) until streams ends.
// opening bounds the time until onOpen. Each stream holds two 4 KiB
// buffers, so that 10,000 of them weigh little in the bench itself.
func holdSSE(streams, opening context.Context, addr, path, clientID string, records int, onOpen func()) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(opening, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Closing the connection is what ends a blocked read, at either limit.
	stopHold := context.AfterFunc(streams, func() { conn.Close() })
	defer stopHold()
	stopOpen := context.AfterFunc(opening, func() { conn.Close() })
	defer stopOpen()
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s: %s\r\n\r\n", path, addr, clientIDHeader, clientID)
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("SSE answered %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	br := bufio.NewReaderSize(resp.Body, 4<<10)
	got, err := countSSE(br, records, nil)
	// stopOpen fails when the opening limit already closed the connection.
	if !stopOpen() || err != nil {
		if opening.Err() != nil {
			// The limit closed the connection: that, not the read error
			// it caused, is the reason.
			err = opening.Err()
		}
		return fmt.Errorf("after %d of %d events: %w", got, records, err)
	}
	onOpen()
	_, err = io.Copy(io.Discard, br)
	if streams.Err() != nil {
		return nil
	}
	return err
}
