package reply

import (
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"
)

const msgNoContextPath = "No context-path matches the request URI."

func TestFailure(t *testing.T) {
	tests := map[string]struct {
		accept     []string
		status     int
		wantStatus int
		close      bool
		ctype      string
		body       string
	}{
		"client error keeps the connection": {[]string{"application/json"}, 404, 404, false, "application/json", ""},
		"server error closes":               {[]string{"application/json"}, 503, 503, true, "application/json", ""},
		"redirect-range status closes":      {[]string{"application/json"}, 302, 302, true, "application/json", ""},
		"invalid status becomes 500":        {[]string{"application/json"}, 42, 500, true, "application/json", ""},
		"text without accept":               {nil, 404, 404, false, "text/plain", msgNoContextPath},
		"text/event-stream only is text":    {[]string{"text/event-stream"}, 412, 412, false, "text/plain", msgNoContextPath},
		"wildcard accept is json":           {[]string{"*/*"}, 404, 404, false, "application/json", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			Failure(&ctx, tc.accept, tc.status, msgNoContextPath)
			r := &ctx.Response
			if r.StatusCode() != tc.wantStatus {
				t.Fatalf("status = %d, want %d", r.StatusCode(), tc.wantStatus)
			}
			if got := string(r.Header.ContentType()); got != tc.ctype {
				t.Fatalf("Content-Type = %q, want %q", got, tc.ctype)
			}
			if got := r.ConnectionClose(); got != tc.close {
				t.Fatalf("Connection: close = %v, want %v", got, tc.close)
			}
			want := tc.body
			if want == "" {
				want = `{"message":"` + msgNoContextPath + `","http_status_code":` + strconv.Itoa(tc.wantStatus) + "}"
			}
			if got := string(r.Body()); got != want {
				t.Fatalf("body = %q, want %q", got, want)
			}
		})
	}
}
