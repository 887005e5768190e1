package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

func TestLogHandlerFormat(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newLogHandler(&buf, slog.LevelDebug))
	l.With("msg", 5, "component", "kafka").WithGroup("g").Warn("hello", "level", "x", "n", 1)
	l.Info("clash", "msg", 7, "@level", true, "time", "t")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	ts, _ := first["@timestamp"].(string)
	if _, err := time.Parse(hclogTimeFormat, ts); err != nil {
		t.Fatalf("@timestamp %q does not parse with hclog's layout: %v", ts, err)
	}
	delete(first, "@timestamp")
	want := map[string]any{
		"@level": "warn", "@message": "hello",
		"_msg": 5.0, "component": "kafka",
		"g": map[string]any{"level": "x", "n": 1.0},
	}
	if !equalJSON(first, want) {
		t.Fatalf("line 1 = %v, want %v", first, want)
	}
	var second map[string]any
	if err := json.Unmarshal(lines[1], &second); err != nil {
		t.Fatal(err)
	}
	delete(second, "@timestamp")
	want = map[string]any{"@level": "info", "@message": "clash", "_msg": 7.0, "_@level": true, "_time": "t"}
	if !equalJSON(second, want) {
		t.Fatalf("line 2 = %v, want %v", second, want)
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestLogHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newLogHandler(&buf, slog.LevelWarn))
	l.Info("hidden")
	if buf.Len() != 0 {
		t.Fatalf("info logged at warn level: %s", buf.String())
	}
}

func TestLevelNames(t *testing.T) {
	tests := map[string]struct {
		level slog.Level
		name  string
		hc    hclog.Level
	}{
		"trace":  {slog.LevelDebug - 4, "trace", hclog.Trace},
		"debug":  {slog.LevelDebug, "debug", hclog.Debug},
		"info":   {slog.LevelInfo, "info", hclog.Info},
		"info+2": {slog.LevelInfo + 2, "info", hclog.Info},
		"warn":   {slog.LevelWarn, "warn", hclog.Warn},
		"error":  {slog.LevelError, "error", hclog.Error},
		"beyond": {slog.LevelError + 4, "error", hclog.Error},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := hclogLevelName(tc.level); got != tc.name {
				t.Fatalf("name = %q, want %q", got, tc.name)
			}
			if got := hclogLevel(tc.level); got != tc.hc {
				t.Fatalf("hclog level = %v, want %v", got, tc.hc)
			}
		})
	}
}

func TestWatchParent(t *testing.T) {
	var calls atomic.Int32
	getppid := func() int {
		if calls.Add(1) < 3 {
			return 100
		}
		return 1 // re-parented to init
	}
	gone := make(chan struct{})
	watchParent(100, time.Millisecond, getppid, func() { close(gone) })
	select {
	case <-gone:
	default:
		t.Fatal("gone not called")
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("getppid called %d times, want 3", n)
	}
}

type drainer struct {
	lifecycle.Plugin
	deadline chan time.Time
}

func (d drainer) Drain(ctx context.Context) error {
	dl, _ := ctx.Deadline()
	d.deadline <- dl
	return errors.New("logged, not fatal")
}

func TestDrainOrphan(t *testing.T) {
	d := drainer{deadline: make(chan time.Time, 1)}
	before := time.Now()
	drainOrphan(d)
	dl := <-d.deadline
	if dl.Before(before) || dl.After(time.Now().Add(orphanDrainTimeout)) {
		t.Fatalf("deadline %v not within the orphan drain bound", dl)
	}
	drainOrphan(drainer{}.Plugin) // not a Drainer: nothing to do
}
