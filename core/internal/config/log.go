package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// Log formats the gateway { log { format } } attribute accepts.
const (
	// LogFormatText is slog's key=value text, one record a line: the
	// default, easy to read in a terminal.
	LogFormatText = "text"
	// LogFormatJSON is one JSON object a line, for log collectors.
	LogFormatJSON = "json"
)

// Log levels the gateway { log { level } } attribute accepts, lowest first.
const (
	LogLevelDebug = "debug"
	LogLevelInfo  = "info"
	LogLevelWarn  = "warn"
	LogLevelError = "error"
)

// Log is the gateway { log } block: how the gateway writes its logs (to
// stderr). It is read at start-up only.
type Log struct {
	// Format is LogFormatText or LogFormatJSON. Optional. Default: "text".
	Format string
	// Level is the lowest level written: "debug", "info", "warn" or
	// "error". Plugin lines are filtered by the same level. Optional.
	// Default: "info".
	Level string
	// AccessLog writes one record per client request (request id, API,
	// entrypoint, plan, client identifier, status, duration, bytes in and
	// out, messages) at info level. Optional. Default: false.
	AccessLog bool
}

// DefaultLog is the logging of a file without a log block.
func DefaultLog() Log {
	return Log{Format: LogFormatText, Level: LogLevelInfo}
}

// loadLog decodes gateway { log } into f.Gateway.Log.
func loadLog(f *File, where string, body hcl.Body) hcl.Diagnostics {
	content, diags := body.Content(schemaOf([]string{"format", "level", "access_log"}))
	diags = prefixed(where, diags)
	if content == nil {
		return diags
	}
	enum := func(name string, allowed []string, set *string) {
		a := content.Attributes[name]
		if a == nil {
			return
		}
		s, ok, d := evalString(where, a.Expr, f.eval)
		diags = append(diags, d...)
		if !ok {
			return
		}
		if !contains(allowed, s) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid %s %q", where, name, s),
				Detail:   fmt.Sprintf("%s is one of %s.", name, quoteList(allowed)),
				Subject:  a.Expr.Range().Ptr(),
			})
			return
		}
		*set = s
	}
	enum("format", []string{LogFormatText, LogFormatJSON}, &f.Gateway.Log.Format)
	enum("level", []string{LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError}, &f.Gateway.Log.Level)
	if a := content.Attributes["access_log"]; a != nil {
		b, ok, d := evalBool(where, a.Expr, f.eval)
		diags = append(diags, d...)
		if ok {
			f.Gateway.Log.AccessLog = b
		}
	}
	return diags
}
