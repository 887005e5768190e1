package main

import (
	"crypto/rand"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/javafmt"
)

// Fixed SSE frames.
var (
	// heartbeat is an empty comment: it keeps proxies from timing the stream
	// out and makes a vanished client show up as a write error.
	heartbeat = []byte(":\n\n")
	// goawayEvent tells clients the gateway is stopping; it carries no id so
	// the browser's Last-Event-ID keeps pointing at the last real message.
	goawayEvent = []byte("event: goaway\ndata: Stopping, please reconnect\n\n")
)

// Bounds of the random retry hint (docs/behaviour.md 5.1): spreading reconnects
// over half a minute keeps a restarting gateway from being stampeded.
const (
	retryMin = 1000
	retryMax = 30000
)

// appendRetry appends the first frame of a stream: `retry: N` with N random
// in [retryMin, retryMax).
func appendRetry(b []byte) []byte {
	n := retryMin
	if r, err := rand.Int(rand.Reader, big.NewInt(retryMax-retryMin)); err == nil {
		n += int(r.Int64())
	}
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\n', '\n')
}

// eventFormat says which optional comment lines events carry.
type eventFormat struct {
	headersAsComment  bool
	metadataAsComment bool
}

// appendMessage appends one message as an SSE event: a data message as
// `event: message`, an error message as `event: error` whose data is the
// failure text.
func (f eventFormat) appendMessage(b []byte, m *gateway.Message) []byte {
	if m.Error != nil {
		return appendEvent(b, m.ID, "error", []byte(errorText(m)))
	}
	b = appendEvent(b, m.ID, "message", m.Content)
	b = b[:len(b)-1] // reopen the event to add comments before its blank line
	if f.headersAsComment && len(m.Headers) > 0 {
		for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
			b = appendComment(b, name, strings.Join(m.Headers[name], ","))
		}
	}
	if f.metadataAsComment && len(m.Metadata) > 0 {
		for _, k := range javafmt.Keys(m.Metadata) {
			b = appendComment(b, k, javafmt.String(m.Metadata[k]))
		}
	}
	return append(b, '\n')
}

// appendEvent appends `id:` (only for a non-empty id), `event:` and the data
// split into one `data:` line per line of content, as the SSE specification
// requires (docs/differences.md #1): a browser joins them back with "\n". The
// reference writes multi-line content on one data line, which corrupts the
// stream.
func appendEvent(b []byte, id, event string, data []byte) []byte {
	if id != "" {
		b = append(b, "id: "...)
		b = appendSingleLine(b, id)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, '\n')
	b = appendDataLines(b, data)
	return append(b, '\n')
}

// appendDataLines writes data as `data: ` lines, splitting on CRLF, LF and
// lone CR, the three line endings an SSE parser recognises.
func appendDataLines(b []byte, data []byte) []byte {
	for {
		i := indexLineEnd(data)
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			return append(b, '\n')
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

func indexLineEnd(data []byte) int {
	for i, c := range data {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// appendComment appends `:<key>: <value>`. A value spanning several lines
// becomes several comment lines with the same key, so it cannot end the
// event early or inject fields.
func appendComment(b []byte, key, value string) []byte {
	for {
		i := strings.IndexAny(value, "\r\n")
		b = append(b, ':')
		b = appendSingleLine(b, key)
		b = append(b, ':', ' ')
		if i < 0 {
			b = append(b, value...)
			return append(b, '\n')
		}
		b = append(b, value[:i]...)
		b = append(b, '\n')
		if value[i] == '\r' && i+1 < len(value) && value[i+1] == '\n' {
			i++
		}
		value = value[i+1:]
	}
}

// appendSingleLine appends s without its line breaks, for fields that must
// stay on one line (ids, comment keys).
func appendSingleLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && c != '\r' {
			b = append(b, c)
		}
	}
	return b
}

// appendFailure appends the event that ends a stream on an endpoint failure.
// It has no id line, unlike the reference's random UUID: a browser would
// send that UUID back as Last-Event-ID and lose its position on reconnect.
func appendFailure(b []byte, f *gateway.Failure) []byte {
	msg := "Stream failure"
	if f != nil && f.Message != "" {
		msg = f.Message
	}
	return appendEvent(b, "", "error", []byte(msg))
}

// errorText is what an error message tells the client: the failure's text,
// or the content when the failure has none.
func errorText(m *gateway.Message) string {
	if m.Error != nil && m.Error.Message != "" {
		return m.Error.Message
	}
	return string(m.Content)
}
