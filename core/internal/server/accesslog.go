package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/relay"
)

// AccessMessage is the message of every access-log record.
const AccessMessage = "access"

// access is what handle learns about one request, for its access-log record
// and its duration histogram. handle fills it as it goes; finishAccess reads
// it when handle returns.
type access struct {
	start time.Time
	api   *API
	ep    *EntrypointInstance
	id    plan.Identity
	// x is the request's exchange, once opened: it counts the messages the
	// request published or received, and says when a stream has ended.
	x *relay.Exchange
}

// accessLine is one access-log record's fields, in the order they are
// written.
type accessLine struct {
	RequestID  string
	API        string
	Entrypoint string
	Plan       string
	Client     string
	Method     string
	Path       string
	Status     int
	Duration   time.Duration
	BytesIn    int64
	BytesOut   int64
	Messages   int64
}

// attrs are the record's attributes: names are snake_case and stable, as
// log collectors and dashboards key on them. duration_ms has microsecond
// precision.
func (l *accessLine) attrs() []slog.Attr {
	return []slog.Attr{
		slog.String("request_id", l.RequestID),
		slog.String("api", l.API),
		slog.String("entrypoint", l.Entrypoint),
		slog.String("plan", l.Plan),
		slog.String("client", l.Client),
		slog.String("method", l.Method),
		slog.String("path", l.Path),
		slog.Int("status", l.Status),
		slog.Float64("duration_ms", math.Round(float64(l.Duration.Microseconds()))/1000),
		slog.Int64("bytes_in", l.BytesIn),
		slog.Int64("bytes_out", l.BytesOut),
		slog.Int64("messages", l.Messages),
	}
}

// writeAccess writes one access record to log at info level.
func writeAccess(log *slog.Logger, l *accessLine) {
	log.LogAttrs(context.Background(), slog.LevelInfo, AccessMessage, l.attrs()...)
}

// startAccess begins the record of a request.
func (s *Server) startAccess() *access {
	return &access{start: time.Now()}
}

// finishAccess ends the record of a request when handle returns: it
// observes the duration histogram and writes the access line. A whole
// response is complete at this point (fasthttp only writes it out). A
// stream or a WebSocket has only begun, so its record is finished when its
// exchange ends, with the bytes its connection moved meanwhile.
func (s *Server) finishAccess(ctx *fasthttp.RequestCtx, a *access) {
	line := &accessLine{
		RequestID: a.id.RequestID,
		Client:    a.id.ClientID,
		Plan:      a.id.Plan,
		Method:    string(ctx.Method()),
		Path:      string(ctx.Path()),
		Status:    ctx.Response.StatusCode(),
		BytesIn:   int64(len(ctx.Request.Body())),
	}
	if a.api != nil {
		line.API = a.api.Name
	}
	if a.ep != nil {
		line.Entrypoint = a.ep.Type
	}
	streaming := a.x != nil && (ctx.Response.IsBodyStream() || ctx.Hijacked())
	if !streaming {
		line.BytesOut = int64(len(ctx.Response.Body()))
		if a.x != nil {
			line.Messages = a.x.Messages()
		}
		s.endAccess(a, line)
		return
	}
	// The ctx is recycled once handle returns: everything the end needs is
	// copied now; the connection's counters are safe to read later.
	conn := countingConn(ctx.Conn())
	var read0, written0 int64
	if conn != nil {
		read0, written0 = conn.read.Load(), conn.written.Load()
	}
	hijacked := ctx.Hijacked()
	a.x.AfterEnd(func() {
		if conn != nil {
			if hijacked {
				// A WebSocket's requests are its frames.
				line.BytesIn = conn.read.Load() - read0
			}
			line.BytesOut = conn.written.Load() - written0
		}
		line.Messages = a.x.Messages()
		s.endAccess(a, line)
	})
}

// endAccess observes the request's duration and writes its access line.
func (s *Server) endAccess(a *access, line *accessLine) {
	line.Duration = time.Since(a.start)
	s.metrics.ObserveDuration(line.API, line.Entrypoint, line.Duration.Seconds())
	if s.opts.AccessLog != nil {
		writeAccess(s.opts.AccessLog, line)
	}
}

// countingConn finds the counting connection under c (the limit listener
// wraps every accepted connection; TLS wraps it in turn).
func countingConn(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}
