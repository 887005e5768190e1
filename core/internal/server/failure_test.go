package server

import (
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestFailureBody(t *testing.T) {
	tests := map[string]struct {
		accept      []string
		status      int
		message     string
		contentType string
		body        string
	}{
		"no accept is text": {
			nil, 404, msgNoEntrypoint,
			"text/plain", "No entrypoint matches the incoming request",
		},
		"json accept": {
			[]string{"application/json"}, 404, msgNoContextPath,
			"application/json", `{"message":"No context-path matches the request URI.","http_status_code":404}`,
		},
		"wildcard accept": {
			[]string{"*/*"}, 503, "plugin endpoint-kafka is unavailable",
			"application/json", `{"message":"plugin endpoint-kafka is unavailable","http_status_code":503}`,
		},
		"json among several values": {
			[]string{"text/html", "application/xml;q=0.9, application/json;q=0.8"}, 412, "An error occurred",
			"application/json", `{"message":"An error occurred","http_status_code":412}`,
		},
		"text/event-stream only is text": {
			[]string{"text/event-stream"}, 412, "An error occurred",
			"text/plain", "An error occurred",
		},
		"json escapes quotes, backslashes and controls, not html": {
			[]string{"application/json"}, 400, "bad \"x\" \\ <a>&\n\x01",
			"application/json", `{"message":"bad \"x\" \\ <a>&\n\u0001","http_status_code":400}`,
		},
		"json keeps unicode and replaces invalid utf-8": {
			[]string{"application/json"}, 400, "héllo \xff",
			"application/json", `{"message":"héllo \ufffd","http_status_code":400}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ct, body := failureBody(tc.accept, tc.status, tc.message)
			if ct != tc.contentType || string(body) != tc.body {
				t.Fatalf("failureBody = (%q, %q), want (%q, %q)", ct, body, tc.contentType, tc.body)
			}
		})
	}
}

func TestWriteFailureResponse(t *testing.T) {
	const body = `{"message":"No context-path matches the request URI.","http_status_code":`
	tests := map[string]struct {
		status     int
		wantStatus int
		close      bool
	}{
		"client error keeps the connection": {404, 404, false},
		"server error closes":               {503, 503, true},
		"redirect-range status closes":      {302, 302, true},
		"invalid status becomes 500":        {42, 500, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			writeFailure(&ctx, []string{"application/json"}, tc.status, msgNoContextPath)
			r := &ctx.Response
			if r.StatusCode() != tc.wantStatus {
				t.Fatalf("status = %d, want %d", r.StatusCode(), tc.wantStatus)
			}
			if got := string(r.Header.ContentType()); got != "application/json" {
				t.Fatalf("Content-Type = %q", got)
			}
			if got := r.ConnectionClose(); got != tc.close {
				t.Fatalf("Connection: close = %v, want %v", got, tc.close)
			}
			want := body + strconv.Itoa(tc.wantStatus) + "}"
			if got := string(r.Body()); got != want {
				t.Fatalf("body = %q, want %q", got, want)
			}
		})
	}
}
