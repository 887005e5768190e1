package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBaselineOnlyRunsEveryScenario runs the whole program in -baseline-only
// mode against its in-process kfake broker and checks that every scenario
// moved exactly the records it should. Figures are not checked: timings do
// not belong in tests.
func TestBaselineOnlyRunsEveryScenario(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-baseline-only", "-json", "-n", "200", "-c", "2", "-fanout-clients", "3", "-timeout", "60s", "-min-time", "1ns"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, stdout.String())
	}
	want := map[string]int{"ws-publish": 200, "http-post": 20, "sse": 200, "sse-fanout": 60, "http-get": 200}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), len(want), rep.Results)
	}
	for _, r := range rep.Results {
		if r.Gateway != nil {
			t.Errorf("%s: gateway half ran in -baseline-only", r.Scenario)
		}
		if r.Sarama == nil || r.Sarama.Error != "" {
			t.Errorf("%s: sarama half missing or failed: %+v", r.Scenario, r.Sarama)
			continue
		}
		if r.Sarama.Runs != 1 {
			t.Errorf("%s: %d runs with -min-time 1ns, want 1", r.Scenario, r.Sarama.Runs)
		}
		if r.Count != want[r.Scenario] || r.Sarama.Count != want[r.Scenario] {
			t.Errorf("%s: count %d, sarama moved %d, want %d", r.Scenario, r.Count, r.Sarama.Count, want[r.Scenario])
		}
	}
	post := rep.Results[1]
	if post.Sarama.P99Ms < post.Sarama.P50Ms {
		t.Errorf("http-post p99 %v below p50 %v", post.Sarama.P99Ms, post.Sarama.P50Ms)
	}
}

// TestShortHalvesAreRepeated checks that a half shorter than -min-time runs
// maxRuns times.
func TestShortHalvesAreRepeated(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-baseline-only", "-json", "-n", "50", "-scenarios", "ws-publish", "-min-time", "1h"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Sarama == nil || rep.Results[0].Sarama.Runs != maxRuns {
		t.Fatalf("results %+v, want one scenario with %d sarama runs", rep.Results, maxRuns)
	}
}

// TestBaselinesMoveExactRecords checks the baselines against the broker's
// own state: what ws-publish and http-post produce lands in Kafka exactly
// once, and a consumer group stops after n records.
func TestBaselinesMoveExactRecords(t *testing.T) {
	o, err := parseFlags([]string{"-baseline-only", "-n", "100", "-c", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{opts: o, logf: t.Logf, runID: "test", payload: makePayload(o.payload), topics: topicNames(false, ""), clients: 3}
	addr, stop, err := startKfake(t.TempDir(), e.topics.all())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	e.bootstrap = addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.close()

	if _, err := wsPublishSarama(ctx, e); err != nil {
		t.Fatalf("ws-publish baseline: %v", err)
	}
	hw, err := e.highWatermark(e.topics.pub)
	if err != nil {
		t.Fatal(err)
	}
	if hw != 101 { // one warm-up record plus n
		t.Fatalf("%s holds %d records after ws-publish, want 101", e.topics.pub, hw)
	}
	m, err := httpPostSarama(ctx, e)
	if err != nil {
		t.Fatalf("http-post baseline: %v", err)
	}
	if hw, _ = e.highWatermark(e.topics.pub); hw != 101+3+10 { // + one warm-up per sender + n/10
		t.Fatalf("%s holds %d records after http-post, want 114", e.topics.pub, hw)
	}
	if m.Count != 10 {
		t.Fatalf("http-post baseline counted %d requests, want 10", m.Count)
	}

	if _, err := produceAsync(ctx, addr, e.topics.sub, e.payload, 150, false); err != nil {
		t.Fatal(err)
	}
	sp, err := consumeGroup(ctx, addr, e.topics.sub, "g1", 150)
	if err != nil {
		t.Fatal(err)
	}
	if sp.first.Before(sp.start) || sp.last.Before(sp.first) {
		t.Fatalf("span out of order: %+v", sp)
	}
	// Asking for more than the topic holds must end with the context, not hang.
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := consumeGroup(short, addr, e.topics.sub, "g2", 151); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading 151 of 150 records: %v, want a deadline error", err)
	}
}

func TestCountSSE(t *testing.T) {
	cases := map[string]struct {
		stream  string
		n       int
		want    int
		wantErr string
	}{
		"retry chunk, ids and heartbeats": {
			stream: "retry: 2000\n\n:\n\nid: YQ==\nevent: message\ndata: one\n\n:\n\nid: Yg==\nevent: message\ndata: two\n\n",
			n:      2, want: 2,
		},
		"default event type is message": {stream: "data: a\n\ndata: b\n\n", n: 2, want: 2},
		"metadata comments inside an event": {
			stream: "id: x\nevent: message\ndata: a\n:sourceTimestamp: 1\n:topic: t\n\n", n: 1, want: 1,
		},
		"multi-line data is one event":    {stream: "data: a\ndata: b\n\n", n: 1, want: 1},
		"CRLF line ends":                  {stream: "event: message\r\ndata: a\r\n\r\n", n: 1, want: 1},
		"stops at n":                      {stream: "data: a\n\ndata: b\n\ndata: c\n\n", n: 2, want: 2},
		"event without data is not one":   {stream: "event: message\n\ndata: a\n\n", n: 1, want: 1},
		"goaway is not counted":           {stream: "data: a\n\nevent: goaway\ndata: bye\n\n", n: 2, want: 1, wantErr: "unexpected EOF"},
		"error event ends the read":       {stream: "data: a\n\nevent: error\ndata: Endpoint unknown error\n\n", n: 3, want: 1, wantErr: "error event: Endpoint unknown error"},
		"stream ending mid-event":         {stream: "data: a\n\ndata: b\n", n: 2, want: 1, wantErr: "unexpected EOF"},
		"empty stream":                    {stream: "", n: 1, want: 0, wantErr: "unexpected EOF"},
		"type resets after each event":    {stream: "event: other\ndata: x\n\ndata: a\n\n", n: 1, want: 1},
		"data field without space":        {stream: "data:a\n\n", n: 1, want: 1},
		"unknown fields ignored, counted": {stream: "foo: bar\ndata: a\n\n", n: 1, want: 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			calls := 0
			got, err := countSSE(bufio.NewReader(strings.NewReader(c.stream)), c.n, func() { calls++ })
			if got != c.want || calls != c.want {
				t.Errorf("counted %d (callback %d), want %d", got, calls, c.want)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case c.wantErr != "" && (err == nil || err.Error() != c.wantErr):
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestCountSSELongLine(t *testing.T) {
	long := "data: " + strings.Repeat("x", 100) + "\n\n"
	got, err := countSSE(bufio.NewReaderSize(strings.NewReader(long+long), 16), 2, nil)
	if err != nil || got != 2 {
		t.Fatalf("got %d, %v; want 2 events from lines longer than the buffer", got, err)
	}
}

func TestParseGetPage(t *testing.T) {
	cases := map[string]struct {
		body    string
		ids     []string
		wantErr string
	}{
		"items with ids": {
			body: `{"items":[{"id":"dGVzdC10b3BpY0AwIzA=","content":"message1"},{"id":"dGVzdC10b3BpY0AwIzE=","content":"message2"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzE="}}`,
			ids:  []string{"dGVzdC10b3BpY0AwIzA=", "dGVzdC10b3BpY0AwIzE="},
		},
		"items without ids": {body: `{"items":[{"content":"a"}]}`, ids: []string{""}},
		"empty page":        {body: `{"items":[],"pagination":{"nextCursor":"eA=="}}`},
		"null error":        {body: `{"items":[],"error":null}`},
		"error item": {
			body:    `{"items":[],"error":{"id":"u","content":"Endpoint configuration invalid"}}`,
			wantErr: `http-get error item: {"id":"u","content":"Endpoint configuration invalid"}`,
		},
		"not JSON": {body: `No context-path matches the request URI.`, wantErr: `http-get body "No context-path matches the request URI.": invalid character 'N' looking for beginning of value`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := parseGetPage([]byte(c.body))
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, it := range p.Items {
				ids = append(ids, it.ID)
			}
			if strings.Join(ids, ",") != strings.Join(c.ids, ",") || len(ids) != len(c.ids) {
				t.Fatalf("ids %q, want %q", ids, c.ids)
			}
		})
	}
}

func TestPercentileMs(t *testing.T) {
	d := func(msecs ...int) []time.Duration {
		var out []time.Duration
		for _, m := range msecs {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	cases := map[string]struct {
		lats []time.Duration
		p    float64
		want float64
	}{
		"empty":             {nil, 50, 0},
		"one":               {d(7), 99, 7},
		"median of four":    {d(4, 1, 3, 2), 50, 2},
		"p99 of a hundred":  {d(seq(100)...), 99, 99},
		"p50 of a hundred":  {d(seq(100)...), 50, 50},
		"p100 is the max":   {d(5, 9, 1), 100, 9},
		"tiny p is the min": {d(5, 9, 1), 0.1, 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := percentileMs(c.lats, c.p); got != c.want {
				t.Fatalf("p%v = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[n-1-i] = i + 1
	}
	return out
}

func TestThousands(t *testing.T) {
	cases := map[string]struct {
		v    float64
		want string
	}{
		"zero":       {0, "0"},
		"small":      {999.4, "999"},
		"rounds up":  {999.5, "1,000"},
		"millions":   {1234567, "1,234,567"},
		"negative":   {-12345, "-12,345"},
		"six digits": {100000, "100,000"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := thousands(c.v); got != c.want {
				t.Fatalf("thousands(%v) = %q, want %q", c.v, got, c.want)
			}
		})
	}
}

func TestTailLines(t *testing.T) {
	cases := map[string]struct {
		in   string
		n    int
		want string
	}{
		"fewer lines than asked": {"a\nb\n", 5, "a\nb"},
		"last two":               {"a\nb\nc\nd\n", 2, "c\nd"},
		"no trailing newline":    {"a\nb\nc", 1, "c"},
		"empty":                  {"", 3, "(empty)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tailLines(c.in, c.n); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cases := map[string]struct {
		args    []string
		want    []string
		wantErr string
	}{
		"defaults":             {nil, scenarioNames(), ""},
		"subset keeps order":   {[]string{"-scenarios", "sse, ws-publish,sse"}, []string{"sse", "ws-publish"}, ""},
		"unknown scenario":     {[]string{"-scenarios", "sse,bogus"}, nil, `unknown scenario "bogus"`},
		"empty scenario list":  {[]string{"-scenarios", ","}, nil, "-scenarios names no scenario"},
		"n too small":          {[]string{"-n", "3"}, nil, "-n 3 is too small"},
		"bad qos":              {[]string{"-qos", "none"}, nil, `-qos "none"`},
		"positional arguments": {[]string{"extra"}, nil, "unexpected arguments"},
		"bad sweep":            {[]string{"-c", "8,0"}, nil, `-c: "0" is not a whole number`},
		"bad stream count":     {[]string{"-rss-streams", "many"}, nil, `-rss-streams: "many" is not a whole number`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			o, err := parseFlags(c.args, io.Discard)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(o.scenarios, ",") != strings.Join(c.want, ",") {
				t.Fatalf("scenarios %q, want %q", o.scenarios, c.want)
			}
		})
	}
}

// TestGeneratedConfigValidates asks the real binary, when `make build` has
// made it, whether the configuration the bench writes is valid.
func TestGeneratedConfigValidates(t *testing.T) {
	bin := os.Getenv("SLUICE_BIN_DIR")
	if bin == "" {
		bin = "../../../bin"
	}
	// Absolute: the configuration lives in a temporary directory, and a
	// relative plugin_dir is read from there.
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(bin, "sluice")
	if _, err := os.Stat(exe); err != nil {
		t.Skipf("no %s: run `make build` to check the generated configuration", exe)
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{opts: o, topics: topicNames(false, ""), bootstrap: "127.0.0.1:1"}
	text := gatewayHCL("127.0.0.1:2", "127.0.0.1:3", filepath.Join(bin, "plugins"), e.bootstrap, filepath.Join(dir, "kafka"), true, e.topics.all(), apiHCL(e))
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exe, "validate", path).CombinedOutput(); err != nil {
		t.Fatalf("sluice validate: %v\n%s\n--- config ---\n%s", err, out, text)
	}
}

func TestParseProcStat(t *testing.T) {
	const tick = 10 * time.Millisecond
	cases := map[string]struct {
		in   string
		want procStat
		ok   bool
	}{
		"plain: utime + stime, not the children's": {
			in:   "1234 (sluice) S 1000 1234 1000 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 12 0 500 1000 200",
			want: procStat{ppid: 1000, cpu: 200 * tick}, ok: true,
		},
		"name with spaces and parentheses": {
			in:   "77 (a (b) c) R 1234 77 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5 6 7",
			want: procStat{ppid: 1234, cpu: 3 * tick}, ok: true,
		},
		"a real line of a plugin": {
			in:   "4242 (sluice-plugin-e) S 4200 4200 4100 0 -1 1077936192 2713 0 0 0 1234 567 0 0 20 0 9 0 123456 1300000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			want: procStat{ppid: 4200, cpu: 1801 * tick}, ok: true,
		},
		"stops at stime": {in: "77 (x) R 1234 77 1 0 -1 0 0 0 0 0 5 6", want: procStat{ppid: 1234, cpu: 11 * tick}, ok: true},
		"truncated":      {in: "77 (x) R 1234 77 1", ok: false},
		"no name":        {in: "77 x R 1234", ok: false},
		"bad number":     {in: "77 (x) R 1234 77 1 0 -1 0 0 0 0 0 a 2 3 4 20", ok: false},
		"negative ticks": {in: "77 (x) R 1234 77 1 0 -1 0 0 0 0 0 -1 2 3 4 20", ok: false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := parseProcStat(c.in, tick)
			if ok != c.ok || got != c.want {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestParseProcStatTick(t *testing.T) {
	got, ok := parseProcStat("1 (x) S 0 1 1 0 -1 0 0 0 0 0 3 1 0 0", time.Second/250)
	if !ok || got.cpu != 16*time.Millisecond {
		t.Fatalf("4 ticks at 250 Hz = %v %v, want 16ms", got.cpu, ok)
	}
}

func TestClockTickFromAuxv(t *testing.T) {
	cases := map[string]struct {
		v    [][2]uintptr
		want time.Duration
	}{
		"100 Hz":          {[][2]uintptr{{6, 4096}, {17, 100}, {0, 0}}, 10 * time.Millisecond},
		"250 Hz":          {[][2]uintptr{{17, 250}}, 4 * time.Millisecond},
		"1024 Hz (alpha)": {[][2]uintptr{{17, 1024}}, 976562 * time.Nanosecond},
		"absent":          {[][2]uintptr{{6, 4096}, {0, 0}}, 10 * time.Millisecond},
		"zero":            {[][2]uintptr{{17, 0}}, 10 * time.Millisecond},
		"no vector":       {nil, 10 * time.Millisecond},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := clockTickFromAuxv(c.v); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestProcessNames(t *testing.T) {
	cmdlines := map[string]struct {
		in, want string
	}{
		"plugin path":     {"/work/bin/plugins/sluice-plugin-endpoint-kafka\x00", "sluice-plugin-endpoint-kafka"},
		"with arguments":  {"/usr/bin/sluice\x00run\x00gateway.hcl\x00", "sluice"},
		"bare name":       {"sluice-plugin-entrypoint-sse\x00", "sluice-plugin-entrypoint-sse"},
		"kernel thread":   {"", ""},
		"no trailing NUL": {"./x", "x"},
	}
	for name, c := range cmdlines {
		t.Run("cmdline "+name, func(t *testing.T) {
			if got := nameFromCmdline([]byte(c.in)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	comms := map[string]struct {
		in, want string
	}{
		"plain":       {"1 (sluice) S 0", "sluice"},
		"parentheses": {"77 (a (b) c) R 1", "a (b) c"},
		"broken":      {"77 x R", ""},
	}
	for name, c := range comms {
		t.Run("comm "+name, func(t *testing.T) {
			if got := commOf(c.in); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestCPUSampleSub(t *testing.T) {
	before := cpuSample{"sluice": 100 * time.Millisecond, "gone": time.Second, "restarted": time.Second}
	after := cpuSample{"sluice": 350 * time.Millisecond, "new": 20 * time.Millisecond, "restarted": 10 * time.Millisecond}
	got := after.sub(before)
	want := cpuSample{"sluice": 250 * time.Millisecond, "new": 20 * time.Millisecond, "restarted": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got.add(cpuSample{"sluice": 50 * time.Millisecond, "bench": time.Millisecond})
	want = cpuSample{"sluice": 300 * time.Millisecond, "new": 20 * time.Millisecond, "restarted": 0, "bench": time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after add: got %v, want %v", got, want)
	}
}

func TestCPUPerUnit(t *testing.T) {
	total := cpuSample{
		"bench":                         900 * time.Millisecond,
		"sluice-plugin-entrypoint-http": 300 * time.Millisecond,
		"sluice":                        1200 * time.Millisecond,
		"sluice-plugin-endpoint-kafka":  600 * time.Millisecond,
	}
	got := cpuPerUnit(total, 3, 5000, 10)
	want := []ProcCPU{
		{Process: "sluice", Seconds: 0.4, PerUnitUS: 80, PerRequestUS: 40000},
		{Process: "sluice-plugin-endpoint-kafka", Seconds: 0.2, PerUnitUS: 40, PerRequestUS: 20000},
		{Process: "sluice-plugin-entrypoint-http", Seconds: 0.1, PerUnitUS: 20, PerRequestUS: 10000},
		{Process: "bench", Seconds: 0.3, PerUnitUS: 60, PerRequestUS: 30000},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	if cpuPerUnit(total, 0, 1, 0) != nil {
		t.Fatal("zero runs must give no figures")
	}
}

func TestParseVmRSS(t *testing.T) {
	cases := map[string]struct {
		in   string
		want int64
		ok   bool
	}{
		"status": {
			in:   "Name:\tsluice\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 2000000 kB\nVmHWM:\t  150000 kB\nVmRSS:\t  123456 kB\nRssAnon:\t   100000 kB\nThreads:\t12\n",
			want: 123456, ok: true,
		},
		"kernel thread has none": {in: "Name:\tkthreadd\nState:\tS (sleeping)\n", ok: false},
		"bad unit":               {in: "VmRSS:\t 12 MB\n", ok: false},
		"bad number":             {in: "VmRSS:\t 1x2 kB\n", ok: false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := parseVmRSS(c.in)
			if got != c.want || ok != c.ok {
				t.Fatalf("got %d %v, want %d %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestRSSMeasure(t *testing.T) {
	var m Measure
	before := map[string]int64{"sluice": 102400, "sluice-plugin-endpoint-kafka": 20480, "sluice-plugin-entrypoint-sse": 10240}
	with := map[string]int64{"sluice": 204800, "sluice-plugin-endpoint-kafka": 51200, "sluice-plugin-entrypoint-sse": 30720}
	rssMeasure(&m, before, with, 1000)
	if m.Streams != 1000 || m.RSSMiB != 280 || m.RSSBeforeMiB != 130 || m.RSSKiBPerStream != 153.6 {
		t.Fatalf("got %+v", m)
	}
	want := "[{sluice 200} {sluice-plugin-endpoint-kafka 50} {sluice-plugin-entrypoint-sse 30}]"
	if got := fmt.Sprint(m.RSS); got != want {
		t.Fatalf("per process %s, want %s", got, want)
	}
}

func TestParseCounts(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    string
		wantErr string
	}{
		"sweep":            {in: "1,8,64,256", want: "[1 8 64 256]"},
		"spaces and dups":  {in: " 8, 1 ,8,", want: "[8 1]"},
		"one":              {in: "4096", want: "[4096]"},
		"zero":             {in: "0,8", wantErr: `"0" is not a whole number between 1 and 4096`},
		"too many":         {in: "5000", wantErr: `"5000" is not a whole number between 1 and 4096`},
		"not a number":     {in: "8,x", wantErr: `"x" is not a whole number between 1 and 4096`},
		"empty":            {in: " , ", wantErr: `no value in " , "`},
		"not a whole one ": {in: "1.5", wantErr: `"1.5" is not a whole number between 1 and 4096`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseCounts(c.in, 1, 4096)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != c.want {
				t.Fatalf("got %v %v, want %s", got, err, c.want)
			}
		})
	}
}

func TestMedianRun(t *testing.T) {
	runs := func(rates ...float64) []Measure {
		var out []Measure
		for i, r := range rates {
			out = append(out, Measure{Count: i, Rate: r})
		}
		return out
	}
	cases := map[string]struct {
		runs      []Measure
		wantCount int
	}{
		"one run":                {runs(5), 0},
		"odd count":              {runs(9, 1, 5), 2},
		"even count takes upper": {runs(1, 4, 3, 2), 2},
		"ties":                   {runs(2, 2, 2), 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := medianRun(c.runs); got.Count != c.wantCount {
				t.Fatalf("picked run %d (rate %v), want run %d", got.Count, got.Rate, c.wantCount)
			}
		})
	}
}
