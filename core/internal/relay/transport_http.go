package relay

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/ascii"
	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/reply"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// ServeHTTP answers a plain HTTP request with the exchange, from the
// fasthttp handler. It waits for the entrypoint's first decisive action:
//
//   - Respond with a body, or Finish: the whole response, sent by fasthttp;
//   - Respond without a body, then Write: a streaming response, whose body is
//     read from the exchange chunk by chunk (streamBody);
//   - Respond without a body, then Finish: a whole response with no body (so
//     HTTP POST's 202 carries Content-Length: 0, not a chunked empty body);
//   - the entrypoint ending or failing first: a failure response.
func (x *Exchange) ServeHTTP(ctx *fasthttp.RequestCtx) {
	var pending *pluginv1.Connect_Respond
	for {
		select {
		case a, ok := <-x.out:
			if !ok {
				if pending != nil {
					x.writeWhole(ctx, pending)
				} else {
					f := x.endFailure.Load()
					if f == nil {
						f = flow.NoResponse(x.plugin)
					}
					x.writeFailure(ctx, f)
				}
				x.detach()
				return
			}
			switch k := a.GetKind().(type) {
			case *pluginv1.Connect_Response_Respond:
				if len(k.Respond.GetBody()) > 0 {
					x.writeWhole(ctx, k.Respond)
					x.detach()
					return
				}
				pending = k.Respond
			case *pluginv1.Connect_Response_Finish:
				x.writeWhole(ctx, mergeRespond(pending, k.Finish.GetRespond()))
				x.finished()
				x.detach()
				return
			case *pluginv1.Connect_Response_Write:
				x.startStream(ctx, pending, k.Write)
				return
			}
		case f := <-x.direct:
			x.writeFailure(ctx, f)
			x.clientGone()
			x.detach()
			return
		}
	}
}

// mergeRespond is the response of a Finish: its own Respond when it has
// one, completed by the pending streaming Respond's status and headers.
func mergeRespond(pending, final *pluginv1.Connect_Respond) *pluginv1.Connect_Respond {
	if final == nil {
		return pending
	}
	if pending == nil {
		return final
	}
	out := &pluginv1.Connect_Respond{Status: final.GetStatus(), Headers: final.GetHeaders(), Body: final.GetBody()}
	if out.Status == 0 {
		out.Status = pending.GetStatus()
	}
	if len(out.Headers) == 0 {
		out.Headers = pending.GetHeaders()
	}
	return out
}

func (x *Exchange) writeFailure(ctx *fasthttp.RequestCtx, f *pluginv1.Failure) {
	f = flow.Normalize(f)
	reply.Failure(ctx, x.accept, int(f.GetStatus()), f.GetMessage())
	x.r.metrics.Request(x.api, x.ep.Type, int(f.GetStatus()))
}

// respondHead runs the response phase on the entrypoint's answer and sets
// its status and headers. It returns the answer as the phase left it and
// its status, or nil and 0 when the phase answered the client itself.
func (x *Exchange) respondHead(ctx *fasthttp.RequestCtx, r *pluginv1.Connect_Respond) (*pluginv1.Connect_Respond, int) {
	if r = x.responsePhase(ctx, r); r == nil {
		return nil, 0
	}
	status := int(r.GetStatus())
	if status == 0 {
		status = http.StatusOK
	}
	ctx.SetStatusCode(status)
	applyHeaders(ctx, r.GetHeaders())
	return r, status
}

// writeWhole sends a complete response.
func (x *Exchange) writeWhole(ctx *fasthttp.RequestCtx, r *pluginv1.Connect_Respond) {
	r, status := x.respondHead(ctx, r)
	if r == nil {
		return
	}
	ctx.SetBody(r.GetBody())
	x.r.metrics.Request(x.api, x.ep.Type, status)
}

// applyHeaders sets an entrypoint's response headers. Framing headers
// (Content-Length, Transfer-Encoding, Connection) belong to the core's HTTP
// stack: fasthttp computes them, and only "Connection: close" is honoured.
// Other headers replace the core's of the same name (e.g. the X-Gravitee
// headers); several entries of one name add up, in order.
func applyHeaders(ctx *fasthttp.RequestCtx, hs []*pluginv1.Header) {
	h := &ctx.Response.Header
	// Delete first: fasthttp's Del may move other headers around, which
	// would reorder values added before it.
	for _, x := range hs {
		if isPlainHeader(x.GetName()) {
			h.Del(x.GetName())
		}
	}
	for _, x := range hs {
		name := x.GetName()
		switch {
		case isPlainHeader(name):
			for _, v := range x.GetValues() {
				h.Add(name, v)
			}
		case ascii.EqualFold(name, "Connection"):
			if ascii.HasToken(x.GetValues(), "close") {
				ctx.SetConnectionClose()
			}
		case ascii.EqualFold(name, "Content-Type"):
			if len(x.GetValues()) > 0 {
				ctx.SetContentType(x.GetValues()[0])
			}
		}
	}
}

// isPlainHeader reports whether a response header is copied as it is.
func isPlainHeader(name string) bool {
	return name != "" && !ascii.EqualFold(name, "Content-Length") && !ascii.EqualFold(name, "Transfer-Encoding") &&
		!ascii.EqualFold(name, "Connection") && !ascii.EqualFold(name, "Content-Type")
}

// startStream turns the response into a stream whose first chunks are w.
func (x *Exchange) startStream(ctx *fasthttp.RequestCtx, r *pluginv1.Connect_Respond, w *pluginv1.Connect_Write) {
	r, status := x.respondHead(ctx, r)
	if r == nil {
		return
	}
	// No proxy or client cache may hold a stream back.
	if len(ctx.Response.Header.Peek("Cache-Control")) == 0 {
		ctx.Response.Header.Set("Cache-Control", "no-cache")
	}
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	// Claim the write deadline, so the server's WriteTimeout (meant for a
	// whole response) does not cut a long-lived stream; streamBody bounds
	// each write with StreamWriteTimeout instead.
	_ = ctx.SetWriteDeadline(time.Time{})
	body := &streamBody{x: x, conn: ctx.Conn(), timeout: x.r.opts.StreamWriteTimeout}
	body.load(w)
	x.r.metrics.Request(x.api, x.ep.Type, status)
	if !ctx.Request.Header.IsHTTP11() || ctx.IsHead() {
		// HTTP/1.0 has no chunks and HEAD no body: fasthttp frames those.
		ctx.Response.ImmediateHeaderFlush = true
		ctx.SetBodyStream(body, -1)
		return
	}
	// A stream lives for minutes or hours, mostly idle: it is served from a
	// goroutine of its own on the hijacked connection, so neither fasthttp's
	// connection goroutine (a deep stack) nor its write buffer is held for
	// its whole life. The connection closes with the stream.
	ctx.Response.Header.SetContentLength(-1)
	ctx.SetConnectionClose()
	head := ctx.Response.Header.AppendBytes(nil)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { body.serveHijacked(c, head) })
}

// errStreamBroken ends a stream whose entrypoint failed: the response is cut
// without its final chunk, so the client sees an incomplete body rather than
// a clean end.
var errStreamBroken = errors.New("the entrypoint ended the stream with an error")

// streamBody is the body of a streaming response, read by fasthttp.
//
// It is a reader rather than a SetBodyStreamWriter because fasthttp's stream
// writer goes through an in-memory pipe with buffered slots: a flush there
// does not mean the bytes reached the socket, and an acknowledgement sent
// then could commit messages the client never got. fasthttp reads this body
// and writes each read as one chunk, flushed to the socket, before it reads
// again; so when Read is called, everything returned before is on the wire,
// and that is when the pending acknowledgement is sent. A failed socket write
// stops the reads and closes the body with the error (CloseWithError), which
// is how a client disconnect is noticed.
//
// fasthttp prefers WriteTo (SupportsBodyWriteTo), which writes every Write
// action as one chunk, together with the Write actions already waiting
// behind it: while a client write is in progress, the entrypoint's next
// batches queue up and then go out in one chunk, one flush and one
// acknowledgement.
type streamBody struct {
	x       *Exchange
	conn    net.Conn
	timeout time.Duration

	chunks [][]byte
	ack    uint64
	done   bool
	err    error
}

// joinBuffers holds WriteTo's buffers for coalesced chunks, shared by every
// stream: an idle stream holds none (10,000 idle SSE streams kept one each
// otherwise), a busy one gets a grown buffer back for its next write.
var joinBuffers = sync.Pool{New: func() any { return new([]byte) }}

// Coalescing bounds of WriteTo: it stops gathering Write actions at
// maxCoalesce bytes, and returns buffers of at most maxKeptJoin to
// joinBuffers.
const (
	maxCoalesce = 1 << 20
	maxKeptJoin = 1 << 20
)

func (b *streamBody) load(w *pluginv1.Connect_Write) {
	for _, c := range w.GetChunks() {
		if len(c) > 0 {
			b.chunks = append(b.chunks, c)
		}
	}
	b.ack = w.GetAckThrough()
}

// SupportsBodyWriteTo tells fasthttp that WriteTo may replace Read: both
// acknowledge only what fasthttp has flushed to the socket.
func (b *streamBody) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the stream to w, which fasthttp frames as one HTTP chunk
// flushed to the socket per Write call: when a call returns, its bytes are
// on the wire, and that is when the pending acknowledgement is sent. It
// returns nil at the clean end of the stream, or the error that ended it.
func (b *streamBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(b.chunks) > 0 {
			b.gather()
			p, pooled := b.join()
			if b.timeout > 0 && b.conn != nil {
				_ = b.conn.SetWriteDeadline(time.Now().Add(b.timeout))
			}
			n, err := w.Write(p)
			if pooled != nil && cap(p) <= maxKeptJoin { // a huge burst must not stay pooled
				*pooled = p
				joinBuffers.Put(pooled)
			}
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if b.ack > 0 {
			b.x.ack(b.ack)
			b.ack = 0
		}
		if b.done {
			if b.err == io.EOF {
				return total, nil
			}
			return total, b.err
		}
		a, ok := <-b.x.out
		b.take(a, ok)
	}
}

// serveHijacked writes the response on a hijacked connection: head (the
// status line and headers, framed with Transfer-Encoding: chunked), then the
// stream, each write gathering the Write actions waiting then into one HTTP
// chunk in one socket write, as WriteTo does through fasthttp. A stream that
// breaks is cut without its final chunk.
func (b *streamBody) serveHijacked(c net.Conn, head []byte) {
	b.conn = c
	b.CloseWithError(b.writeChunked(c, head))
}

// writeChunked is serveHijacked's loop; it returns nil once the final chunk
// is written, or the error that ended the stream.
func (b *streamBody) writeChunked(c net.Conn, head []byte) error {
	for {
		pooled := joinBuffers.Get().(*[]byte)
		p := append((*pooled)[:0], head...)
		head = nil
		if len(b.chunks) > 0 {
			b.gather()
			size := 0
			for _, c := range b.chunks {
				size += len(c)
			}
			p = strconv.AppendInt(p, int64(size), 16)
			p = append(p, "\r\n"...)
			for _, c := range b.chunks {
				p = append(p, c...)
			}
			p = append(p, "\r\n"...)
			clear(b.chunks)
			b.chunks = b.chunks[:0]
		}
		last := b.done && b.err == io.EOF // every pending chunk is in p
		if last {
			p = append(p, "0\r\n\r\n"...)
		}
		var err error
		if len(p) > 0 {
			if b.timeout > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(b.timeout))
			}
			_, err = c.Write(p)
		}
		if cap(p) <= maxKeptJoin {
			*pooled = p
			joinBuffers.Put(pooled)
		}
		if err != nil {
			return err
		}
		// Everything taken so far is on the wire.
		if b.ack > 0 {
			b.x.ack(b.ack)
			b.ack = 0
		}
		if b.done {
			if last {
				return nil
			}
			return b.err
		}
		for len(b.chunks) == 0 && !b.done {
			a, ok := <-b.x.out
			b.take(a, ok)
		}
	}
}

// gather adds the Write actions already waiting in out to the pending
// chunks, up to maxCoalesce bytes, without waiting for more.
func (b *streamBody) gather() {
	size := 0
	for _, c := range b.chunks {
		size += len(c)
	}
	for !b.done && size < maxCoalesce {
		select {
		case a, ok := <-b.x.out:
			n := len(b.chunks)
			b.take(a, ok)
			for _, c := range b.chunks[n:] {
				size += len(c)
			}
		default:
			return
		}
	}
}

// join empties the pending chunks into one slice, copying only when there
// are several; then the copy is in a buffer of joinBuffers, returned as
// pooled for the caller to put back once the slice is written.
func (b *streamBody) join() (p []byte, pooled *[]byte) {
	if len(b.chunks) == 1 {
		p = b.chunks[0]
		b.chunks = b.chunks[:0]
		return p, nil
	}
	pooled = joinBuffers.Get().(*[]byte)
	p = (*pooled)[:0]
	for _, c := range b.chunks {
		p = append(p, c...)
	}
	clear(b.chunks)
	b.chunks = b.chunks[:0]
	return p, pooled
}

// take applies one action read from out (ok false: out is closed).
func (b *streamBody) take(a *pluginv1.Connect_Response, ok bool) {
	if !ok {
		b.done = true
		b.err = io.EOF
		if b.x.endFailure.Load() != nil {
			b.err = errStreamBroken
		}
		return
	}
	switch k := a.GetKind().(type) {
	case *pluginv1.Connect_Response_Write:
		b.load(k.Write)
	case *pluginv1.Connect_Response_Finish:
		b.done = true
		b.err = io.EOF
	}
}

// Read fills p with the pending chunks, or waits for the next Write. It is
// the fallback for a fasthttp that does not use WriteTo.
func (b *streamBody) Read(p []byte) (int, error) {
	for {
		if len(b.chunks) > 0 {
			n := 0
			for n < len(p) && len(b.chunks) > 0 {
				c := copy(p[n:], b.chunks[0])
				n += c
				if c == len(b.chunks[0]) {
					b.chunks = b.chunks[1:]
				} else {
					b.chunks[0] = b.chunks[0][c:]
				}
			}
			if b.timeout > 0 && b.conn != nil {
				_ = b.conn.SetWriteDeadline(time.Now().Add(b.timeout))
			}
			return n, nil
		}
		// Everything returned so far is flushed to the socket.
		if b.ack > 0 {
			b.x.ack(b.ack)
			b.ack = 0
		}
		if b.done {
			return 0, b.err
		}
		a, ok := <-b.x.out
		b.take(a, ok)
	}
}

// CloseWithError is called by fasthttp when the response ends; err is the
// socket error that ended it early, if any.
func (b *streamBody) CloseWithError(err error) error {
	if err != nil || !b.done {
		b.x.clientGone()
	} else {
		b.x.finished()
	}
	b.x.detach()
	return nil
}
