package httpfailure

import (
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

func TestFailureBody(t *testing.T) {
	tests := map[string]struct {
		accept   []string
		failure  *gateway.Failure
		wantType string
		wantBody string
	}{
		"no accept is text": {
			failure:  &gateway.Failure{Status: 412, Message: "An error occurred"},
			wantType: "text/plain", wantBody: "An error occurred",
		},
		"json accept": {
			accept:   []string{"application/json"},
			failure:  &gateway.Failure{Status: 504, Message: "Request timeout"},
			wantType: "application/json", wantBody: `{"message":"Request timeout","http_status_code":504}`,
		},
		"wildcard accept": {
			accept:   []string{"*/*"},
			failure:  &gateway.Failure{Status: 404, Message: "No entrypoint matches the incoming request"},
			wantType: "application/json", wantBody: `{"message":"No entrypoint matches the incoming request","http_status_code":404}`,
		},
		"json among several values with parameters": {
			accept:   []string{"text/html", "application/xhtml+xml,application/json;q=0.9"},
			failure:  &gateway.Failure{Status: 500, Message: "Invalid configuration"},
			wantType: "application/json", wantBody: `{"message":"Invalid configuration","http_status_code":500}`,
		},
		"json accept ignores case": {
			accept:   []string{"Application/JSON"},
			failure:  &gateway.Failure{Status: 400, Message: "x"},
			wantType: "application/json", wantBody: `{"message":"x","http_status_code":400}`,
		},
		"other accept is text": {
			accept:   []string{"text/html", "application/xml"},
			failure:  &gateway.Failure{Status: 503, Message: "down"},
			wantType: "text/plain", wantBody: "down",
		},
		"escapes what JSON requires and nothing else": {
			accept:   []string{"application/json"},
			failure:  &gateway.Failure{Status: 400, Message: "a \"b\" \\ <c>&\n\t\x01 é"},
			wantType: "application/json", wantBody: `{"message":"a \"b\" \\ <c>&\n\t\u0001 é","http_status_code":400}`,
		},
		"invalid utf-8 is replaced": {
			accept:   []string{"application/json"},
			failure:  &gateway.Failure{Status: 400, Message: "a\xffb"},
			wantType: "application/json", wantBody: `{"message":"a` + "\uFFFD" + `b","http_status_code":400}`,
		},
		"missing status uses the default": {
			accept:   []string{"application/json"},
			failure:  &gateway.Failure{Message: "boom"},
			wantType: "application/json", wantBody: `{"message":"boom","http_status_code":500}`,
		},
		"nil failure": {
			accept:   []string{"application/json"},
			wantType: "application/json", wantBody: `{"message":"","http_status_code":500}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ct, body := FailureBody(tc.accept, tc.failure)
			if ct != tc.wantType || string(body) != tc.wantBody {
				t.Fatalf("got %q %q, want %q %q", ct, body, tc.wantType, tc.wantBody)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := map[string]struct {
		f    *gateway.Failure
		def  int
		want int
	}{
		"nil":     {nil, 503, 503},
		"zero":    {&gateway.Failure{}, 503, 503},
		"set":     {&gateway.Failure{Status: 412}, 503, 412},
		"invalid": {&gateway.Failure{Status: -1}, 500, 500},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Status(tc.f, tc.def); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	tests := map[string]struct {
		accept   []string
		failure  *gateway.Failure
		status   int
		ctype    string
		body     string
		closeHdr bool
	}{
		"policy interrupt 412 as text": {
			failure: &gateway.Failure{Status: 412, Message: "An error occurred"},
			status:  412, ctype: "text/plain", body: "An error occurred",
		},
		"json when accepted": {
			accept:  []string{"application/json"},
			failure: &gateway.Failure{Status: 412, Message: "An error occurred"},
			status:  412, ctype: "application/json", body: `{"message":"An error occurred","http_status_code":412}`,
		},
		"no status takes the default and closes": {
			failure: &gateway.Failure{Message: "Broker unavailable"},
			status:  503, ctype: "text/plain", body: "Broker unavailable", closeHdr: true,
		},
		"nil failure": {
			accept: []string{"*/*"},
			status: 503, ctype: "application/json", body: `{"message":"","http_status_code":503}`, closeHdr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, h, body := Response(tc.accept, tc.failure, 503)
			if status != tc.status || h.Get("Content-Type") != tc.ctype || string(body) != tc.body ||
				(h.Get("Connection") == "close") != tc.closeHdr {
				t.Fatalf("got %d %v %q", status, h, body)
			}
		})
	}
}

// The string and byte forms give the same bytes for every kind of text.
func TestAppendJSONBytesMatchesString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "ctl\x01\n\r\t\b\f", "héllo", "bad \xff utf8", "\u2028 and <>&"} {
		if a, b := AppendJSONString(nil, s), AppendJSONBytes(nil, []byte(s)); string(a) != string(b) {
			t.Errorf("%q: string form %s, bytes form %s", s, a, b)
		}
	}
}

func BenchmarkAppendJSONBytes(b *testing.B) {
	content := []byte(strings.Repeat(`{"field":"value","n":12345}`, 10))
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSONBytes(buf[:0], content)
	}
}
