package instances

import (
	"context"
	"sync"
)

// Drain counts a plugin's open exchanges (streams, requests) and tells them
// when the gateway is stopping, so a plugin's lifecycle.Drainer can end them
// cleanly and wait for them. The zero value is ready to use.
//
// The contract, in order:
//
//  1. Each exchange calls Open when it starts and the returned done when it
//     ends, whatever the reason.
//  2. Exchanges watch Draining and end early when it closes (an SSE goaway
//     event, a GET answering with what it has).
//  3. The plugin's Drain method calls Drain.Wait, which closes Draining and
//     returns once no exchange is open or ctx ends.
type Drain struct {
	mu       sync.Mutex
	open     int
	idle     chan struct{} // closed when open drops to 0; nil while 0
	draining chan struct{}
	closed   bool
}

// Open counts one exchange as open; call done exactly once when it ends.
func (d *Drain) Open() (done func()) {
	d.mu.Lock()
	if d.open == 0 {
		d.idle = make(chan struct{})
	}
	d.open++
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			d.open--
			if d.open == 0 {
				close(d.idle)
				d.idle = nil
			}
			d.mu.Unlock()
		})
	}
}

// Draining is closed once Wait was called: exchanges end early then.
func (d *Drain) Draining() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining == nil {
		d.draining = make(chan struct{})
	}
	return d.draining
}

// Idle is closed when no exchange is open (at once when none is).
func (d *Drain) Idle() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idle == nil {
		return closedChan
	}
	return d.idle
}

// Wait closes Draining and waits until no exchange is open, or returns
// ctx's error when its deadline comes first. It may be called more than
// once.
func (d *Drain) Wait(ctx context.Context) error {
	d.mu.Lock()
	if d.draining == nil {
		d.draining = make(chan struct{})
	}
	if !d.closed {
		close(d.draining)
		d.closed = true
	}
	d.mu.Unlock()
	select {
	case <-d.Idle():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Len returns the number of open exchanges.
func (d *Drain) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Quiet drops an error an exchange got because it already ended (the
// client left, the core cancelled it): the core knows, and reporting it
// would only add noise to the logs.
func Quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
