package relay

import (
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/core/internal/reply"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// WebSocket close codes the core uses (RFC 6455 7.4.1).
const (
	closeNormal         = websocket.CloseNormalClosure           // 1000
	closePolicy         = websocket.ClosePolicyViolation         // 1008
	closeInvalidPayload = websocket.CloseInvalidFramePayloadData // 1007
	closeServerError    = websocket.CloseInternalServerErr       // 1011
	closeTryAgainLater  = websocket.CloseTryAgainLater           // 1013
)

// ServeWebSocket answers a WebSocket upgrade request with the exchange,
// from the fasthttp handler. It upgrades the connection as soon as the
// entrypoint is connected: a WebSocket entrypoint talks through frames, so
// there is no HTTP answer to wait for. An entrypoint that refuses the exchange answers
// with a Respond of status >= 400, which closes the socket with 1008 (4xx)
// or 1011 (5xx) and the body as reason.
func (x *Exchange) ServeWebSocket(ctx *fasthttp.RequestCtx) {
	r := x.r
	if !x.upgradeResponsePhase(ctx) {
		return
	}
	up := websocket.FastHTTPUpgrader{
		CheckOrigin: r.opts.WebSocket.CheckOrigin,
		Error: func(ctx *fasthttp.RequestCtx, status int, reason error) {
			reply.Failure(ctx, x.accept, status, reason.Error())
		},
	}
	if err := up.Upgrade(ctx, x.runWebSocket); err != nil {
		r.metrics.Request(x.api, x.ep.Type, ctx.Response.StatusCode())
		x.clientGone()
		x.detach()
		return
	}
	x.responded.Store(true)
	r.metrics.Request(x.api, x.ep.Type, http.StatusSwitchingProtocols)
}

// runWebSocket owns the upgraded connection: it is the only writer (frames,
// pings, the close frame), while a reader goroutine feeds Inbound events.
func (x *Exchange) runWebSocket(c *websocket.Conn) {
	o := x.r.opts.WebSocket
	writeWait := x.r.opts.StreamWriteTimeout
	c.SetReadLimit(o.ReadLimit)
	_ = c.SetReadDeadline(time.Now().Add(o.PongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(o.PongWait)) })

	readerDone := make(chan struct{})
	go x.readFrames(c, o.PongWait, readerDone)

	ticker := time.NewTicker(o.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case a, ok := <-x.out:
			if !ok {
				code, reason := closeNormal, "Bye"
				switch {
				case x.r.stopping.Load():
					code, reason = closeTryAgainLater, "Try Again Later"
				case x.endFailure.Load() != nil:
					code, reason = closeServerError, "Server error"
				}
				x.closeWebSocket(c, code, reason, readerDone)
				x.detach()
				return
			}
			switch k := a.GetKind().(type) {
			case *pluginv1.Connect_Response_Write:
				typ := websocket.BinaryMessage
				if k.Write.GetText() {
					typ = websocket.TextMessage
				}
				for _, chunk := range k.Write.GetChunks() {
					_ = c.SetWriteDeadline(time.Now().Add(writeWait))
					if err := c.WriteMessage(typ, chunk); err != nil {
						x.clientGone()
						x.detach()
						return
					}
				}
				if t := k.Write.GetAckThrough(); t > 0 {
					x.ack(t)
				}
			case *pluginv1.Connect_Response_Finish:
				code := int(k.Finish.GetCloseCode())
				if code == 0 {
					code = closeNormal
				}
				x.closeWebSocket(c, code, k.Finish.GetReason(), readerDone)
				x.finished()
				x.detach()
				return
			case *pluginv1.Connect_Response_Respond:
				if st := int(k.Respond.GetStatus()); st >= 400 {
					code := closePolicy
					if st >= 500 {
						code = closeServerError
					}
					reason := string(k.Respond.GetBody())
					if reason == "" {
						reason = http.StatusText(st)
					}
					x.closeWebSocket(c, code, reason, readerDone)
					x.finished()
					x.detach()
					return
				}
			}
		case <-ticker.C:
			if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				x.clientGone()
				x.detach()
				return
			}
		case <-readerDone:
			x.clientGone()
			x.detach()
			return
		}
	}
}

// closeWebSocket sends a close frame and waits (StopGrace at most) for the
// client's close, so the client reads the code and reason before the TCP
// connection goes away.
func (x *Exchange) closeWebSocket(c *websocket.Conn, code int, reason string, readerDone <-chan struct{}) {
	deadline := time.Now().Add(x.r.opts.StreamWriteTimeout)
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncateReason(reason)), deadline); err != nil {
		return
	}
	t := time.NewTimer(x.r.opts.StopGrace)
	defer t.Stop()
	select {
	case <-readerDone:
	case <-t.C:
	}
}

// truncateReason fits a close reason in a control frame (123 bytes), on a
// UTF-8 boundary.
func truncateReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// readFrames reads client messages and forwards them as Inbound events:
// whatever has arrived while the previous event was being sent goes in one
// event, up to maxInboundBatch frames or maxInboundBytes. The reader stops
// reading the socket while that much is waiting, so a client cannot make the
// core buffer more than that. done is closed after the last event was sent,
// so End never overtakes the client's last frames.
func (x *Exchange) readFrames(c *websocket.Conn, pongWait time.Duration, done chan<- struct{}) {
	in := &inbox{}
	in.cond = sync.NewCond(&in.mu)
	go func() {
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				in.close()
				return
			}
			if typ == websocket.TextMessage && !utf8.Valid(data) {
				// RFC 6455 8.1: a text message that is not UTF-8 fails
				// the connection with 1007; it is not forwarded, so no
				// plugin or consumer gets text that is not text.
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeInvalidPayload, "Invalid UTF-8 in text message"), time.Now().Add(x.r.opts.StreamWriteTimeout))
				in.close()
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(pongWait))
			in.put(&pluginv1.Connect_Frame{Data: data, Text: typ == websocket.TextMessage})
		}
	}()
	defer close(done)
	for {
		batch := in.take()
		if batch == nil {
			return
		}
		var cost int64
		for _, f := range batch {
			cost += int64(len(f.GetData())) + 1
		}
		// While the entrypoint has granted no credit, the inbox fills and
		// the socket reader stops: TCP slows the client down.
		if !x.spendInbound(cost) {
			return
		}
		x.send(&pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Inbound{Inbound: &pluginv1.Connect_Inbound{Frames: batch}}})
	}
}

// Bounds of the frames waiting to be sent to the entrypoint.
const (
	maxInboundBatch = 512
	maxInboundBytes = 4 << 20
)

// inbox holds client frames between the socket reader and the sender.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	frames []*pluginv1.Connect_Frame
	bytes  int
	closed bool
}

// put adds a frame, waiting while the inbox is full.
func (in *inbox) put(f *pluginv1.Connect_Frame) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.frames) >= maxInboundBatch || in.bytes >= maxInboundBytes {
		in.cond.Wait()
	}
	in.frames = append(in.frames, f)
	in.bytes += len(f.GetData())
	in.cond.Broadcast()
}

// close marks the end of the client's frames.
func (in *inbox) close() {
	in.mu.Lock()
	in.closed = true
	in.cond.Broadcast()
	in.mu.Unlock()
}

// take waits for frames and returns all of them (nil once closed and empty).
func (in *inbox) take() []*pluginv1.Connect_Frame {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.frames) == 0 && !in.closed {
		in.cond.Wait()
	}
	if len(in.frames) == 0 {
		return nil
	}
	out := in.frames
	in.frames = nil
	in.bytes = 0
	in.cond.Broadcast()
	return out
}
