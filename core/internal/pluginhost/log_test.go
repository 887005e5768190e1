package pluginhost

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// textLogger writes records without time, so output can be compared byte for byte.
func textLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("plugin", "endpoint-x")
}

func TestHCLogAdapter(t *testing.T) {
	tests := map[string]struct {
		level slog.Level
		log   func(l hclog.Logger)
		want  string
	}{
		"plugin line keeps its level, drops timestamp, sorts keys, strips @": {
			level: slog.LevelDebug,
			log: func(l hclog.Logger) {
				l.Named("sluice-plugin-endpoint-x").Warn("slow broker", "topic", "t", "@module", "kafka", "timestamp", "2026-01-01")
			},
			want: `level=WARN msg="slow broker" plugin=endpoint-x module=kafka topic=t` + "\n",
		},
		"plugin trace maps below debug": {
			level: slog.LevelDebug - 4,
			log:   func(l hclog.Logger) { l.Named("sluice-plugin-endpoint-x").Trace("deep") },
			want:  `level=DEBUG-4 msg=deep plugin=endpoint-x` + "\n",
		},
		"plugin error": {
			level: slog.LevelInfo,
			log:   func(l hclog.Logger) { l.Named("sluice-plugin-endpoint-x").Error("boom", "error", "x") },
			want:  `level=ERROR msg=boom plugin=endpoint-x error=x` + "\n",
		},
		"go-plugin's own lines drop to debug": {
			level: slog.LevelDebug,
			log:   func(l hclog.Logger) { l.Error("plugin process exited", "id", 42) },
			want:  `level=DEBUG msg="plugin process exited" plugin=endpoint-x id=42 source=go-plugin` + "\n",
		},
		"go-plugin's own lines hidden at info": {
			level: slog.LevelInfo,
			log:   func(l hclog.Logger) { l.Error("plugin process exited") },
			want:  "",
		},
		"named internal logger and implied args": {
			level: slog.LevelDebug,
			log:   func(l hclog.Logger) { l.Named("stdio").With("a", 1).Info("x", "b", 2, "odd") },
			want:  `level=DEBUG msg=x plugin=endpoint-x a=1 b=2 !BADKEY=odd source=go-plugin logger=stdio` + "\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(newHCLogAdapter(textLogger(&buf, tc.level), "sluice-plugin-endpoint-x"))
			if got := buf.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestHCLogAdapterLevel(t *testing.T) {
	tests := map[string]struct {
		level slog.Level
		want  hclog.Level
	}{
		"trace": {slog.LevelDebug - 4, hclog.Trace},
		"debug": {slog.LevelDebug, hclog.Debug},
		"info":  {slog.LevelInfo, hclog.Info},
		"error": {slog.LevelError, hclog.Error},
		"off":   {slog.LevelError + 1, hclog.Off},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newHCLogAdapter(textLogger(&buf, tc.level), "bin").Named("bin")
			if got := l.GetLevel(); got != tc.want {
				t.Errorf("GetLevel: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStdioWriter(t *testing.T) {
	tests := map[string]struct {
		writes []string
		want   string
	}{
		"plain lines split across writes": {
			writes: []string{"hel", "lo\nwor", "ld\r\n\n"},
			want: `level=INFO msg=hello plugin=endpoint-x stream=stdout` + "\n" +
				`level=INFO msg=world plugin=endpoint-x stream=stdout` + "\n",
		},
		"hclog json keeps level and attributes": {
			writes: []string{`{"@level":"error","@message":"bad","@timestamp":"2026-01-01T00:00:00.000000Z","@module":"m","k":1}` + "\n"},
			want:   `level=ERROR msg=bad plugin=endpoint-x k=1 module=m stream=stdout` + "\n",
		},
		"json without message is plain": {
			writes: []string{`{"a":1}` + "\n"},
			want:   `level=INFO msg="{\"a\":1}" plugin=endpoint-x stream=stdout` + "\n",
		},
		"unterminated line is held": {
			writes: []string{"partial"},
			want:   "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			w := stdioWriter(textLogger(&buf, slog.LevelDebug), "stdout")
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write: %d %v", n, err)
				}
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestLineWriterBoundsLongLines(t *testing.T) {
	var lines []int
	w := &lineWriter{emit: func(line []byte) { lines = append(lines, len(line)) }}
	chunk := strings.Repeat("x", 64<<10)
	for i := 0; i < 5; i++ {
		w.Write([]byte(chunk))
	}
	if len(lines) != 1 || lines[0] != 5*len(chunk) {
		t.Fatalf("lines: %v", lines)
	}
	if len(w.buf) != 0 {
		t.Fatalf("buffer kept %d bytes", len(w.buf))
	}
}

func TestSanitizeLogLine(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"valid hclog line unchanged": {
			in:   `{"@level":"info","@message":"m","@timestamp":"2026-01-01T00:00:00.000000Z","k":1}` + "\n",
			want: `{"@level":"info","@message":"m","@timestamp":"2026-01-01T00:00:00.000000Z","k":1}` + "\n",
		},
		"plain text unchanged": {
			in:   "panic: boom\n",
			want: "panic: boom\n",
		},
		"invalid json unchanged": {
			in:   `{"@message":` + "\n",
			want: `{"@message":` + "\n",
		},
		"json array unchanged": {
			in:   `[1,2]` + "\n",
			want: `[1,2]` + "\n",
		},
		"number message becomes a string": {
			in:   `{"@message":1,"@level":"warn"}` + "\n",
			want: `{"@level":"warn","@message":"1"}` + "\n",
		},
		"object message, null level, numeric timestamp": {
			in:   `{"@message":{"a":"<b>"},"@level":null,"@timestamp":5,"k":"v"}` + "\n",
			want: `{"@level":"null","@message":"{\"a\":\"<b>\"}","k":"v"}` + "\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(sanitizeLogLine([]byte(tc.in))); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestLogSanitizerStream(t *testing.T) {
	long := `{"@message":` + strings.Repeat("1", logBufferSize+10) + "}\n"
	in := `{"@message":1}` + "\n" + long + "tail without newline"
	s := newLogSanitizer(io.NopCloser(strings.NewReader(in)))
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	// The long line passes through untouched: go-plugin splits it and parses
	// none of it.
	want := `{"@message":"1"}` + "\n" + long + "tail without newline"
	if string(got) != want {
		t.Errorf("stream differs: got %d bytes, want %d; head %q", len(got), len(want), string(got[:40]))
	}
}
