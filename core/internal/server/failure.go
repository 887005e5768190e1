package server

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Failure messages of the gateway itself, as the reference spells them.
const (
	msgNoContextPath = "No context-path matches the request URI."
	msgNoEntrypoint  = "No entrypoint matches the incoming request"
)

// failureBody renders a failure the way the reference gateway does
// (ExecutionFailureMessageHelper): JSON when any Accept value contains
// application/json or */*, the bare message as text/plain otherwise.
func failureBody(accept []string, status int, message string) (contentType string, body []byte) {
	if acceptsJSON(accept) {
		b := make([]byte, 0, len(message)+48)
		b = append(b, `{"message":`...)
		b = appendJSONString(b, message)
		b = append(b, `,"http_status_code":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, '}')
		return "application/json", b
	}
	return "text/plain", []byte(message)
}

func acceptsJSON(accept []string) bool {
	for _, v := range accept {
		if strings.Contains(v, "application/json") || strings.Contains(v, "*/*") {
			return true
		}
	}
	return false
}

// writeFailure answers ctx with a gateway failure. Anything but a client
// error also closes the connection, as the reference does.
func writeFailure(ctx *fasthttp.RequestCtx, accept []string, status int, message string) {
	if status < 100 || status > 599 {
		status = fasthttp.StatusInternalServerError
	}
	ct, body := failureBody(accept, status, message)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType(ct)
	ctx.SetBody(body)
	if status < 400 || status >= 500 {
		ctx.SetConnectionClose()
	}
}

// acceptValues copies every Accept header value of the request.
func acceptValues(ctx *fasthttp.RequestCtx) []string {
	var out []string
	for _, v := range ctx.Request.Header.PeekAll("Accept") {
		out = append(out, string(v))
	}
	return out
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. It escapes only what JSON
// requires (quotes, backslashes, control characters) and replaces invalid
// UTF-8, so messages read the same as the reference's Jackson output (no
// \u003c for '<').
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
