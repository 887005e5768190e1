package tunnel

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Window is how many bytes of messages of one call a side may send before
// the other side grants more (a message costs its length plus one, so empty
// messages are bounded too). It bounds what a call buffers on the receiving
// side, so a slow client's call holds about this much, never its backlog,
// and it never blocks the other calls of the tunnel. A message larger than
// what is left still goes once any credit is left. 256 KiB measured as fast
// as larger windows for batches of hundreds of records.
const Window = 256 << 10

// MaxBatchBytes is the size past which the writer starts a new batch. A
// single larger frame still goes out alone; the gRPC message limit (64 MiB
// on both sides) is the hard bound.
const MaxBatchBytes = 1 << 20

// link is one side of a tunnel stream: the frame queue, its writer and the
// table of calls.
type link struct {
	sendBatch func(*RawParts) error

	mu      sync.Mutex
	pending []encoded
	calls   map[uint64]*call
	err     error // set once the stream is broken

	wake chan struct{}
	done chan struct{}
}

func newLink(send func(*RawParts) error) *link {
	l := &link{
		sendBatch: send,
		calls:     map[uint64]*call{},
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	go l.writeLoop()
	return l
}

// enqueue queues one frame. Frames go out in the order they were queued.
func (l *link) enqueue(f *frame) error {
	e := f.encode()
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	l.pending = append(l.pending, e)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeLoop sends whatever is queued whenever it is woken. While one batch
// is being sent, the frames queued meanwhile gather into the next: batches
// grow with concurrency, and a lone frame waits for no timer.
func (l *link) writeLoop() {
	var spare []encoded
	for {
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
		for {
			l.mu.Lock()
			queued := l.pending
			if len(queued) == 0 {
				l.mu.Unlock()
				break
			}
			l.pending = spare[:0]
			l.mu.Unlock()
			all := queued
			for len(queued) > 0 {
				n, size := 0, 0
				for n < len(queued) && (n == 0 || size+queued[n].size <= MaxBatchBytes) {
					size += queued[n].size
					n++
				}
				count := 0
				for _, e := range queued[:n] {
					count += len(e.parts)
				}
				parts := make(RawParts, 0, count)
				for _, e := range queued[:n] {
					parts = append(parts, e.parts...)
				}
				if err := l.sendBatch(&parts); err != nil {
					l.fail(status.Errorf(codes.Unavailable, "plugin connection lost: %v", err))
					return
				}
				queued = queued[n:]
			}
			clear(all)
			spare = all[:0]
		}
	}
}

// fail ends the link and every call on it with err.
func (l *link) fail(err error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	calls := l.calls
	l.calls = map[uint64]*call{}
	l.pending = nil
	close(l.done)
	l.mu.Unlock()
	for _, c := range calls {
		c.finish(err)
	}
}

func (l *link) lookup(id uint64) *call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[id]
}

func (l *link) remove(id uint64) {
	l.mu.Lock()
	delete(l.calls, id)
	l.mu.Unlock()
}

// call is the state both sides keep for one call: received messages not yet
// read, and the credit left for sending.
type call struct {
	id   uint64
	link *link
	ctx  context.Context
	// stop cancels ctx on the plugin's side, where the core may cancel.
	stop context.CancelFunc

	mu       sync.Mutex
	recvQ    [][]byte
	recvErr  error // after the queue: io.EOF or the call's status
	consumed int   // bytes read since the last window grant
	credit   int   // bytes the peer still accepts
	sendDone bool  // no more messages may be sent
	ended    bool

	recvReady  chan struct{}
	creditMore chan struct{}
}

func newCall(id uint64, l *link, ctx context.Context) *call {
	return &call{
		id: id, link: l, ctx: ctx, credit: Window,
		recvReady:  make(chan struct{}, 1),
		creditMore: make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deliver handles an incoming frame's message, window and end-of-sending.
func (c *call) deliver(f *frame, recvEnd error) {
	c.mu.Lock()
	if f.hasMsg && c.recvErr == nil {
		var p []byte
		if len(f.msg) > 0 {
			p = f.msg[0]
		}
		c.recvQ = append(c.recvQ, p)
	}
	if f.window > 0 {
		c.credit += int(f.window)
		signal(c.creditMore)
	}
	if recvEnd != nil && c.recvErr == nil {
		c.recvErr = recvEnd
	}
	c.mu.Unlock()
	signal(c.recvReady)
}

// finish ends the call on this side with err (io.EOF for a clean end):
// reads return what was queued, then err; sends fail.
func (c *call) finish(err error) {
	c.mu.Lock()
	if c.recvErr == nil {
		c.recvErr = err
	}
	c.sendDone = true
	c.ended = true
	c.mu.Unlock()
	signal(c.recvReady)
	signal(c.creditMore)
}

// recv returns the next message's payload. Reading frees the sender's
// window: every half window read is granted back in one frame.
func (c *call) recv(ctxErr func(error) error) ([]byte, error) {
	for {
		c.mu.Lock()
		if len(c.recvQ) > 0 {
			p := c.recvQ[0]
			c.recvQ[0] = nil
			c.recvQ = c.recvQ[1:]
			if len(c.recvQ) == 0 {
				c.recvQ = nil
			}
			var grant int
			if c.recvErr == nil {
				c.consumed += len(p) + 1
				if c.consumed >= Window/2 {
					grant, c.consumed = c.consumed, 0
				}
			}
			c.mu.Unlock()
			if grant > 0 {
				_ = c.link.enqueue(&frame{call: c.id, window: uint32(grant)})
			}
			return p, nil
		}
		if err := c.recvErr; err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.mu.Unlock()
		select {
		case <-c.recvReady:
		case <-c.ctx.Done():
			return nil, ctxErr(c.ctx.Err())
		}
	}
}

// send queues one message once the peer has granted room for it. first,
// when set, is applied to the frame under the call's lock (the client
// names the method on the call's first frame).
func (c *call) send(v any, afterEnd error, ctxErr func(error) error, first func(*frame)) error {
	parts, n, err := marshalParts(v)
	if err != nil {
		return status.Errorf(codes.Internal, "tunnel: encode message: %v", err)
	}
	for {
		c.mu.Lock()
		if c.sendDone {
			c.mu.Unlock()
			return afterEnd
		}
		if c.credit > 0 {
			c.credit -= n + 1
			f := &frame{call: c.id, msg: parts, msgLen: n, hasMsg: true}
			if first != nil {
				first(f)
			}
			err := c.link.enqueue(f)
			c.mu.Unlock()
			if err != nil {
				return afterEnd
			}
			return nil
		}
		c.mu.Unlock()
		select {
		case <-c.creditMore:
		case <-c.ctx.Done():
			return ctxErr(c.ctx.Err())
		}
	}
}

// statusOf converts an end frame to the error a reader returns.
func statusOf(st *endStatus) error {
	if st.code == 0 {
		return io.EOF
	}
	return status.Error(codes.Code(st.code), st.message)
}
