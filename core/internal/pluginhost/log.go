package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is slog's level for hclog's TRACE, below DEBUG as slog suggests
// for finer levels.
const levelTrace = slog.LevelDebug - 4

// maxLogLine bounds how much of one unterminated line the stdio writers keep
// before emitting it anyway, so a plugin writing without newlines cannot grow
// the core's memory.
const maxLogLine = 256 << 10

// hclogAdapter is the hclog.Logger go-plugin is given. It re-emits through
// slog, with the attribute plugin=<name> already on the slog logger.
//
// go-plugin uses one logger for two things: its own bookkeeping (starting,
// dialing, "plugin process exited") and the plugin's stderr lines, which it
// parses as hclog JSON and logs through a sub-logger named after the binary.
// The plugin's lines keep their level; go-plugin's own lines drop to DEBUG
// because the supervisor reports what matters (crashes, restarts, kills) in
// its own words, and go-plugin would otherwise log every deliberate kill at
// ERROR.
type hclogAdapter struct {
	log     *slog.Logger
	name    string
	binary  string
	output  bool
	implied []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger, binary string) *hclogAdapter {
	return &hclogAdapter{log: l, binary: binary}
}

func (a *hclogAdapter) slogLevel(level hclog.Level) slog.Level {
	if !a.output {
		return slog.LevelDebug
	}
	return fromHCLogLevel(level)
}

func fromHCLogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Log implements hclog.Logger.
func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	sl := a.slogLevel(level)
	ctx := context.Background()
	if !a.log.Enabled(ctx, sl) {
		return
	}
	attrs := make([]slog.Attr, 0, (len(a.implied)+len(args))/2+1)
	attrs = appendPairs(attrs, a.implied, a.output)
	attrs = appendPairs(attrs, args, a.output)
	if a.output {
		// go-plugin builds the pairs of a plugin line from a map, so their
		// order changes from line to line; sorting keeps output diffable.
		sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
	} else {
		attrs = append(attrs, slog.String("source", "go-plugin"))
		if a.name != "" {
			attrs = append(attrs, slog.String("logger", a.name))
		}
	}
	a.log.LogAttrs(ctx, sl, msg, attrs...)
}

// appendPairs turns hclog's alternating key/value arguments into attributes.
// For plugin lines it drops go-plugin's "timestamp" (slog stamps the record)
// and strips hclog's "@" from keys such as "@module".
func appendPairs(attrs []slog.Attr, args []any, output bool) []slog.Attr {
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			attrs = append(attrs, slog.Any("!BADKEY", args[i]))
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		if output {
			if key == "timestamp" {
				continue
			}
			key = strings.TrimPrefix(key, "@")
		}
		attrs = append(attrs, slog.Any(key, args[i+1]))
	}
	return attrs
}

// Trace implements hclog.Logger.
func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (a *hclogAdapter) Info(msg string, args ...any) { a.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (a *hclogAdapter) Warn(msg string, args ...any) { a.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(level hclog.Level) bool {
	return a.log.Enabled(context.Background(), a.slogLevel(level))
}

// IsTrace implements hclog.Logger.
func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (a *hclogAdapter) IsInfo() bool { return a.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (a *hclogAdapter) IsWarn() bool { return a.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

// With implements hclog.Logger.
func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

// Name implements hclog.Logger.
func (a *hclogAdapter) Name() string { return a.name }

// Named implements hclog.Logger. go-plugin names the logger of the plugin's
// stderr after the binary's base name; that is how plugin lines are told
// apart from go-plugin's own.
func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name == "" {
		c.name = name
	} else {
		c.name = c.name + "." + name
	}
	c.output = a.output || name == a.binary
	return &c
}

// ResetNamed implements hclog.Logger.
func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	c.output = name == a.binary
	return &c
}

// SetLevel implements hclog.Logger. The slog handler owns the level, so this
// does nothing.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger: the lowest level the slog handler accepts.
// go-plugin skips parsing plugin lines below it.
func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger.
func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger: every line written is one record.
func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &lineWriter{emit: func(line []byte) { a.Log(level, string(line)) }}
}

// lineWriter splits what is written into lines and hands each to emit.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line []byte)
}

// Write implements io.Writer. It never fails, so a plugin's output can never
// block or break go-plugin's stdio copying.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(w.buf[:i], "\r")
		if len(line) > 0 {
			w.emit(line)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLogLine {
		w.emit(w.buf)
		w.buf = nil
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

// stdioWriter re-emits what a plugin writes to os.Stdout or os.Stderr after it
// started serving (go-plugin forwards those over gRPC as "sync stdio"; left
// unset, it would discard them). hclog JSON lines keep their level and
// attributes; anything else is logged at INFO with the stream's name.
func stdioWriter(l *slog.Logger, stream string) io.Writer {
	return &lineWriter{emit: func(line []byte) { emitStdioLine(l, stream, line) }}
}

func emitStdioLine(l *slog.Logger, stream string, line []byte) {
	ctx := context.Background()
	var entry map[string]any
	if line[0] == '{' && json.Unmarshal(line, &entry) == nil {
		if msg, ok := entry["@message"].(string); ok {
			lvl, _ := entry["@level"].(string)
			sl := fromHCLogLevel(hclog.LevelFromString(lvl))
			if !l.Enabled(ctx, sl) {
				return
			}
			delete(entry, "@message")
			delete(entry, "@level")
			delete(entry, "@timestamp")
			attrs := make([]slog.Attr, 0, len(entry)+1)
			for k, v := range entry {
				attrs = append(attrs, slog.Any(strings.TrimPrefix(k, "@"), v))
			}
			sort.Slice(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
			attrs = append(attrs, slog.String("stream", stream))
			l.LogAttrs(ctx, sl, msg, attrs...)
			return
		}
	}
	l.LogAttrs(ctx, slog.LevelInfo, string(line), slog.String("stream", stream))
}

// logSanitizer passes a plugin's stderr through to go-plugin line by line,
// repairing JSON lines that would crash it: go-plugin asserts that
// "@message", "@level" and "@timestamp" are strings, and a line such as
// {"@message":1} from a buggy plugin would panic the core. Such values are
// turned into strings ("@timestamp" is dropped); every other line passes
// unchanged. Lines longer than the buffer pass through in pieces, which
// go-plugin does not parse either.
type logSanitizer struct {
	src     io.ReadCloser
	r       *bufio.Reader
	pending []byte
	midLine bool
	err     error
}

func newLogSanitizer(src io.ReadCloser) *logSanitizer {
	return &logSanitizer{src: src, r: bufio.NewReaderSize(src, logBufferSize)}
}

// Read implements io.Reader.
func (s *logSanitizer) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		line, err := s.r.ReadSlice('\n')
		switch {
		case err == nil:
			if s.midLine {
				s.pending = line
			} else {
				s.pending = sanitizeLogLine(line)
			}
			s.midLine = false
		case errors.Is(err, bufio.ErrBufferFull):
			s.pending = line
			s.midLine = true
		default:
			s.pending = line
			s.err = err
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// Close implements io.Closer.
func (s *logSanitizer) Close() error { return s.src.Close() }

// hclogStringKeys are the keys go-plugin type-asserts to string.
var hclogStringKeys = []string{"@message", "@level", "@timestamp"}

// sanitizeLogLine returns line, or a repaired copy when go-plugin would
// panic on it.
func sanitizeLogLine(line []byte) []byte {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return line
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(trimmed, &m) != nil {
		return line
	}
	bad := false
	for _, k := range hclogStringKeys {
		if v, ok := m[k]; ok && (len(v) == 0 || v[0] != '"') {
			bad = true
		}
	}
	if !bad {
		return line
	}
	for _, k := range hclogStringKeys {
		v, ok := m[k]
		if !ok || (len(v) > 0 && v[0] == '"') {
			continue
		}
		if k == "@timestamp" {
			delete(m, k)
			continue
		}
		m[k] = bytes.TrimSuffix(encodeJSON(string(v)), []byte("\n"))
	}
	out := encodeJSON(m)
	if out == nil {
		return []byte("malformed log line\n")
	}
	return out
}

// encodeJSON encodes v without escaping <, > and &, as the plugin wrote them;
// the result ends with a newline, or is nil if v cannot be encoded.
func encodeJSON(v any) []byte {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return nil
	}
	return out.Bytes()
}
