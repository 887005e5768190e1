package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"
)

// dropTime removes the record's time, the one field a test cannot fix.
func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// The access line is a contract with log collectors: its fields, their
// names, order and formats are fixed, byte for byte.
func TestAccessLineFormat(t *testing.T) {
	line := &accessLine{
		RequestID: "6f1c2a9e-0000-4000-8000-000000000001", API: "demo", Entrypoint: "http-post", Plan: "keyless",
		Client: "reader-1", Method: "POST", Path: "/demo", Status: 202, Duration: 1234567 * time.Nanosecond,
		BytesIn: 17, BytesOut: 0, Messages: 1,
	}
	for name, tc := range map[string]struct {
		handler func(*bytes.Buffer) slog.Handler
		want    string
	}{
		"json": {
			func(b *bytes.Buffer) slog.Handler {
				return slog.NewJSONHandler(b, &slog.HandlerOptions{ReplaceAttr: dropTime})
			},
			`{"level":"INFO","msg":"access","request_id":"6f1c2a9e-0000-4000-8000-000000000001","api":"demo",` +
				`"entrypoint":"http-post","plan":"keyless","client":"reader-1","method":"POST","path":"/demo",` +
				`"status":202,"duration_ms":1.234,"bytes_in":17,"bytes_out":0,"messages":1}` + "\n",
		},
		"text": {
			func(b *bytes.Buffer) slog.Handler {
				return slog.NewTextHandler(b, &slog.HandlerOptions{ReplaceAttr: dropTime})
			},
			`level=INFO msg=access request_id=6f1c2a9e-0000-4000-8000-000000000001 api=demo entrypoint=http-post ` +
				`plan=keyless client=reader-1 method=POST path=/demo status=202 duration_ms=1.234 bytes_in=17 ` +
				`bytes_out=0 messages=1` + "\n",
		},
		"json, request matching no API": {
			func(b *bytes.Buffer) slog.Handler {
				return slog.NewJSONHandler(b, &slog.HandlerOptions{ReplaceAttr: dropTime})
			},
			"",
		},
	} {
		t.Run(name, func(t *testing.T) {
			l := line
			if tc.want == "" {
				l = &accessLine{Method: "GET", Path: "/nowhere", Status: 404, BytesOut: 58}
				tc.want = `{"level":"INFO","msg":"access","request_id":"","api":"","entrypoint":"","plan":"","client":"",` +
					`"method":"GET","path":"/nowhere","status":404,"duration_ms":0,"bytes_in":0,"bytes_out":58,"messages":0}` + "\n"
			}
			var b bytes.Buffer
			writeAccess(slog.New(tc.handler(&b)), l)
			if b.String() != tc.want {
				t.Fatalf("got  %s\nwant %s", b.String(), tc.want)
			}
		})
	}
}

// Every request handle sees ends in one access line and one observation of
// the duration histogram, including one that matches no API.
func TestHandleWritesOneAccessLine(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	s := New(Options{Metrics: m, AccessLog: slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: dropTime}))})
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/nowhere?secret=1")
	ctx.Request.Header.SetMethod("GET")
	s.Handler()(&ctx)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"msg":"access"`) || !strings.Contains(lines[0], `"path":"/nowhere","status":404`) {
		t.Fatalf("access log %q, want one line for GET /nowhere with status 404 and no query", b.String())
	}
	if n, err := testutil.GatherAndCount(reg, "sluice_request_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("%d duration series (%v), want 1", n, err)
	}
}
