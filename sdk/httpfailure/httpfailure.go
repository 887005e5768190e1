// Package httpfailure renders an execution failure as the HTTP body a client
// receives, in the reference gateway's format, so every entrypoint and the
// core answer failures the same way.
//
// The rule (docs/behaviour.md section 5): when any Accept value mentions
// application/json or */*, the body is the JSON object
// {"message":"...","http_status_code":N}; otherwise it is the message as
// text/plain.
package httpfailure

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Content types FailureBody chooses between.
const (
	ContentTypeJSON = "application/json"
	ContentTypeText = "text/plain"
)

// DefaultStatus is the status rendered for a failure that carries none: a
// failure without a status is a gateway bug, which is a server error.
const DefaultStatus = 500

// WantsJSON reports whether the Accept values ask for the JSON failure body.
// Media types are compared without regard to case, as RFC 9110 says; the
// reference compares case-sensitively, which only differs for clients that
// spell media types in capitals.
func WantsJSON(accept []string) bool {
	for _, a := range accept {
		if containsFold(a, "application/json") || strings.Contains(a, "*/*") {
			return true
		}
	}
	return false
}

// FailureBody returns the content type and body for f as a client with the
// given Accept header values should receive it. A nil failure renders as an
// empty message with DefaultStatus, so callers never have to special-case it.
func FailureBody(accept []string, f *gateway.Failure) (contentType string, body []byte) {
	msg, status := "", DefaultStatus
	if f != nil {
		msg = f.Message
		if f.Status > 0 {
			status = f.Status
		}
	}
	if !WantsJSON(accept) {
		return ContentTypeText, []byte(msg)
	}
	b := make([]byte, 0, len(msg)+48)
	b = append(b, `{"message":`...)
	b = AppendJSONString(b, msg)
	b = append(b, `,"http_status_code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, '}')
	return ContentTypeJSON, b
}

// Response is the whole HTTP response for f: its status (def when f has
// none), the content type, and the body FailureBody renders. Anything but a
// client error also closes the connection, as the reference gateway does.
// Entrypoints answer failed exchanges with it, and so does the core when it
// finishes an exchange for an entrypoint.
func Response(accept []string, f *gateway.Failure, def int) (status int, headers gateway.Headers, body []byte) {
	status = Status(f, def)
	g := gateway.Failure{Status: status}
	if f != nil {
		g = *f
		g.Status = status
	}
	ct, body := FailureBody(accept, &g)
	headers = gateway.Headers{"Content-Type": {ct}}
	if status < 400 || status >= 500 {
		headers["Connection"] = []string{"close"}
	}
	return status, headers, body
}

// Status returns f's status, or def when f is nil or carries none.
func Status(f *gateway.Failure, def int) int {
	if f == nil || f.Status <= 0 {
		return def
	}
	return f.Status
}

const hexDigits = "0123456789ABCDEF"

// AppendJSONString appends s as a quoted JSON string. It escapes only what
// JSON requires (quote, backslash and control characters), as the reference's
// Jackson encoder does: unlike encoding/json it leaves <, > and & alone, so
// bodies match the reference byte for byte. Invalid UTF-8 becomes U+FFFD, as
// Java's decoding of the bytes would.
func AppendJSONString(dst []byte, s string) []byte { return appendJSON(dst, s) }

// AppendJSONBytes is AppendJSONString for bytes, without converting them
// to a string first (a message's content, once per message of a page).
func AppendJSONBytes(dst []byte, b []byte) []byte { return appendJSON(dst, b) }

// plainJSON marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendJSON[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Runs of plain bytes, the common case, cost one table lookup each.
		for i < len(s) && plainJSON[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune is utf8.DecodeRune for either kind of text.
func decodeRune[T string | []byte](s T) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.RuneError, 1
}

// containsFold is strings.Contains ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}
