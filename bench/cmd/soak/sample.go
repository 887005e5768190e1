package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// sample is one row of the CSV.
type sample struct {
	at time.Duration
	// Core process (the gateway, with the embedded broker inside it).
	coreRSS, coreFDs, coreThreads int64
	coreGoroutines                int64
	// All plugin processes together.
	pluginRSS, pluginFDs, pluginThreads int64
	plugins                             int64
	// Consumer lag summed over the readers' groups, and over the push
	// subscriptions' groups, in records.
	lag, pushLag int64
	// The broker process, for reference only: it keeps every record in
	// memory, so it grows with the data by design.
	brokerRSS int64
	// Cumulative client counts.
	posted, wsSent, wsReceived, sseReceived, getReceived int64
	// Cumulative webhook counts of both push subscriptions: 2xx and 503
	// answers of the receiver, retried attempts and dead letters as the
	// gateway's /apis counts them.
	pushDelivered, pushRefused, pushRetried, pushDeadLettered int64
}

// columns of the CSV, in order; judged says which ones the verdict covers.
var columns = []struct {
	name   string
	get    func(s sample) int64
	judged bool
}{
	{"seconds", func(s sample) int64 { return int64(s.at / time.Second) }, false},
	{"core_rss_bytes", func(s sample) int64 { return s.coreRSS }, true},
	{"core_goroutines", func(s sample) int64 { return s.coreGoroutines }, true},
	{"core_fds", func(s sample) int64 { return s.coreFDs }, true},
	{"core_threads", func(s sample) int64 { return s.coreThreads }, true},
	{"plugin_rss_bytes", func(s sample) int64 { return s.pluginRSS }, true},
	{"plugin_fds", func(s sample) int64 { return s.pluginFDs }, true},
	{"plugin_threads", func(s sample) int64 { return s.pluginThreads }, true},
	{"plugin_processes", func(s sample) int64 { return s.plugins }, false},
	{"consumer_lag", func(s sample) int64 { return s.lag }, true},
	{"push_lag", func(s sample) int64 { return s.pushLag }, true},
	{"broker_rss_bytes", func(s sample) int64 { return s.brokerRSS }, false},
	{"posted", func(s sample) int64 { return s.posted }, false},
	{"ws_sent", func(s sample) int64 { return s.wsSent }, false},
	{"ws_received", func(s sample) int64 { return s.wsReceived }, false},
	{"sse_received", func(s sample) int64 { return s.sseReceived }, false},
	{"get_received", func(s sample) int64 { return s.getReceived }, false},
	{"push_delivered", func(s sample) int64 { return s.pushDelivered }, false},
	{"push_refused", func(s sample) int64 { return s.pushRefused }, false},
	{"push_retried", func(s sample) int64 { return s.pushRetried }, false},
	{"push_dead_lettered", func(s sample) int64 { return s.pushDeadLettered }, false},
}

func (s sample) summary() string {
	return fmt.Sprintf("t=%4ds core rss %d MiB goroutines %d fds %d | plugins rss %d MiB fds %d threads %d | lag %d push %d | broker rss %d MiB | posted %d sse %d ws %d/%d get %d hooks %d (503 %d, retried %d, dead %d)",
		int(s.at.Seconds()), s.coreRSS>>20, s.coreGoroutines, s.coreFDs, s.pluginRSS>>20, s.pluginFDs, s.pluginThreads,
		s.lag, s.pushLag, s.brokerRSS>>20, s.posted, s.sseReceived, s.wsSent, s.wsReceived, s.getReceived,
		s.pushDelivered, s.pushRefused, s.pushRetried, s.pushDeadLettered)
}

func takeSample(g *gateway, tr *traffic, at time.Duration) (sample, error) {
	s := sample{at: at}
	pid := g.cmd.Process.Pid
	var err error
	if s.coreRSS, s.coreThreads, err = procStatus(pid); err != nil {
		return s, err
	}
	s.coreFDs = countFDs(pid)
	if s.coreGoroutines, err = goroutines(g.admin); err != nil {
		return s, err
	}
	for _, child := range children(pid) {
		rss, threads, err := procStatus(child)
		if err != nil {
			continue // exited between listing and reading
		}
		s.plugins++
		s.pluginRSS += rss
		s.pluginThreads += threads
		s.pluginFDs += countFDs(child)
	}
	if g.broker != nil && g.broker.Process != nil {
		s.brokerRSS, _, _ = procStatus(g.broker.Process.Pid)
	}
	if s.lag, s.pushLag, err = consumerLag(g.kafka); err != nil {
		return s, fmt.Errorf("lag: %w", err)
	}
	subs, err := pushStatus(g.admin)
	if err != nil {
		return s, fmt.Errorf("push subscriptions: %w", err)
	}
	for _, p := range subs {
		s.pushRetried += p.Retried
		s.pushDeadLettered += p.DeadLettered
	}
	// An interrupted subscription stays stopped: a failure of the run.
	for _, e := range interrupted(subs) {
		tr.fail("push subscription interrupted", fmt.Errorf("%s", e))
	}
	s.posted, s.wsSent, s.wsReceived = tr.posted.Load(), tr.wsSent.Load(), tr.wsReceived.Load()
	s.sseReceived, s.getReceived = tr.sseReceived.Load(), tr.getReceived.Load()
	s.pushDelivered, s.pushRefused = tr.hooks.delivered(), tr.hooks.refused()
	return s, nil
}

// procStatus reads VmRSS (bytes) and Threads of a process.
func procStatus(pid int) (rss, threads int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		case "Threads:":
			threads, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, threads, nil
}

func countFDs(pid int) int64 {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return int64(len(entries))
}

// children lists the live direct children of pid (the plugin processes).
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// goroutines reads go_goroutines from the admin /metrics.
func goroutines(admin string) (int64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "go_goroutines" {
			v, err := strconv.ParseFloat(f[1], 64)
			return int64(v), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines on /metrics")
}

// consumerLag sums, over the soak's consumer groups with commits, the
// records between each committed offset and the partition's end: readers
// is the readers' groups (SSE, GET, WebSocket), push the push
// subscriptions'.
func consumerLag(bootstrap string) (readers, push int64, err error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient([]string{bootstrap}, cfg)
	if err != nil {
		return 0, 0, err
	}
	defer client.Close()
	adm, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return 0, 0, err
	}
	groups, err := adm.ListConsumerGroups()
	if err != nil {
		return 0, 0, err
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, 0, err
	}
	ends := map[int32]int64{}
	for _, p := range parts {
		if ends[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			return 0, 0, err
		}
	}
	// The push subscriptions read from the beginning: a partition they have
	// not committed yet lags by all its records, and they count before
	// their group exists.
	groups[hookID], groups[hookDLQID] = "", ""
	for group := range groups {
		if !strings.HasPrefix(group, "soak-") {
			continue
		}
		isPush := group == hookID || group == hookDLQID
		offs, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if err != nil {
			return 0, 0, err
		}
		for _, p := range parts {
			b := offs.GetBlock(topic, p)
			switch {
			case isPush && (b == nil || b.Offset < 0):
				push += ends[p]
			case isPush:
				push += ends[p] - b.Offset
			case b != nil && b.Offset >= 0:
				readers += ends[p] - b.Offset
			}
		}
	}
	return readers, push, nil
}
