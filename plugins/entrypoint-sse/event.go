package main

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/gateway"
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
		for _, name := range sortedKeys(m.Headers) {
			b = appendComment(b, name, strings.Join(m.Headers[name], ","))
		}
	}
	if f.metadataAsComment && len(m.Metadata) > 0 {
		for _, k := range metadataKeys(m.Metadata) {
			b = appendComment(b, k, formatValue(m.Metadata[k]))
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

// metadataKeys orders metadata keys for output: sourceTimestamp first, as the
// reference's fixtures show it, then the rest by name so output is stable.
func metadataKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "sourceTimestamp") != (keys[j] == "sourceTimestamp") {
			return keys[i] == "sourceTimestamp"
		}
		return keys[i] < keys[j]
	})
	return keys
}

// formatValue renders a metadata value the way Java's toString would, which
// is what the reference writes: whole numbers without exponent or fraction
// (metadata crosses the wire as JSON numbers, so offsets arrive as float64),
// maps as {k=v, ...} and lists as [a, b].
func formatValue(v any) string {
	var b strings.Builder
	writeJavaValue(&b, v, 0)
	return b.String()
}

func writeJavaValue(b *strings.Builder, v any, depth int) {
	if depth > 32 {
		b.WriteString("...")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.WriteString(x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		b.WriteString(formatNumber(x))
	case float32:
		b.WriteString(formatNumber(float64(x)))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case []byte:
		b.Write(x)
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			writeJavaValue(b, x[k], depth+1)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJavaValue(b, e, depth+1)
		}
		b.WriteByte(']')
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			b.WriteString(strconv.FormatInt(rv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		case reflect.Slice, reflect.Array:
			b.WriteByte('[')
			for i := 0; i < rv.Len(); i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				writeJavaValue(b, rv.Index(i).Interface(), depth+1)
			}
			b.WriteByte(']')
		default:
			fmt.Fprint(b, v)
		}
	}
}

// formatNumber writes whole numbers as integers and others in the shortest
// form that round-trips.
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
