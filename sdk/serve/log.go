package serve

import (
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hclogTimeFormat is the timestamp layout go-plugin's host parses; a line
// with any other layout is not recognised as a log entry.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

var (
	// stderr is captured at start-up: go-plugin later points os.Stderr at a
	// pipe of its own, and log lines must reach the real stderr, which the
	// core reads.
	stderr io.Writer = os.Stderr

	logLevel   = new(slog.LevelVar)
	loggerOnce sync.Once
	logger     *slog.Logger
)

// Logger returns the logger plugin code should use. It writes one JSON object
// per line to stderr with hclog's keys (@level, @message, @timestamp), which
// the core parses and re-emits under the plugin's name at the right level.
// Its level is Info unless WithLogLevel says otherwise.
func Logger() *slog.Logger {
	loggerOnce.Do(func() {
		logger = slog.New(newLogHandler(stderr, logLevel))
	})
	return logger
}

// newLogHandler returns a JSON handler writing hclog-shaped lines to w.
func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return reservedKeys{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: hclogAttr})}
}

// hclogAttr renames slog's built-in keys to hclog's. reservedKeys guarantees
// that only the built-in attributes reach it under these names.
func hclogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if t, ok := a.Value.Any().(time.Time); ok {
			return slog.String("@timestamp", t.Format(hclogTimeFormat))
		}
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String("@level", hclogLevelName(l))
		}
	case slog.MessageKey:
		return slog.String("@message", a.Value.String())
	}
	return a
}

// hclogLevelName maps a slog level to hclog's name for it.
func hclogLevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// hclogLevel maps a slog level to an hclog level.
func hclogLevel(l slog.Level) hclog.Level {
	return hclog.LevelFromString(hclogLevelName(l))
}

// reservedKeys renames top-level attributes that would collide with the
// built-in keys (time, level, msg) or with hclog's (@timestamp, @level,
// @message) by prefixing them with "_". Without it, logging an attribute
// named "msg" would produce a second @message that the host might read as a
// non-string and choke on.
type reservedKeys struct{ slog.Handler }

func isReserved(k string) bool {
	switch k {
	case slog.TimeKey, slog.LevelKey, slog.MessageKey, "@timestamp", "@level", "@message":
		return true
	}
	return false
}

func renameReserved(a slog.Attr) slog.Attr {
	if isReserved(a.Key) {
		a.Key = "_" + a.Key
	}
	return a
}

func (h reservedKeys) Handle(ctx context.Context, r slog.Record) error {
	clash := false
	r.Attrs(func(a slog.Attr) bool {
		clash = isReserved(a.Key)
		return !clash
	})
	if clash {
		nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			nr.AddAttrs(renameReserved(a))
			return true
		})
		r = nr
	}
	return h.Handler.Handle(ctx, r)
}

func (h reservedKeys) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = renameReserved(a)
	}
	return reservedKeys{h.Handler.WithAttrs(out)}
}

func (h reservedKeys) WithGroup(name string) slog.Handler {
	// Attributes inside a group are nested and cannot collide.
	return h.Handler.WithGroup(name)
}

// newHCLogger returns the hclog logger go-plugin and the standard log
// package write through, in the same format as Logger.
func newHCLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "",
		Level:      hclogLevel(logLevel.Level()),
		Output:     stderr,
		JSONFormat: true,
	})
}

// redirectLogs points slog's default logger and the standard log package at
// stderr in hclog JSON, so nothing a plugin logs reaches stdout, where the
// handshake goes, or arrives at the core as an unparsed line.
func redirectLogs(hc hclog.Logger) {
	// slog.SetDefault also redirects the log package; the explicit
	// SetOutput after it takes precedence and keeps hclog's level inference
	// for lines such as "[WARN] ...".
	slog.SetDefault(Logger())
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(hc.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
}
