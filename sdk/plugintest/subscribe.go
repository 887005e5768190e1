package plugintest

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Subscribe opens one Subscribe stream and sends Start from req. The
// subscription is closed at t.Cleanup if the test does not close it.
//
// The harness holds at most one undelivered response: a test that stops
// calling Next stops the plugin's Subscription.Send, through gRPC flow
// control, as a slow client does.
func (h *Harness) Subscribe(t testing.TB, req endpoint.SubscribeRequest) *Subscription {
	t.Helper()
	start, err := wire.SubscribeStartToWire(&req)
	if err != nil {
		t.Fatalf("plugintest: Subscribe: %v", err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	stream, err := h.Clients.Endpoint.Subscribe(ctx)
	if err != nil {
		cancel()
		t.Fatalf("plugintest: Subscribe: %v", err)
	}
	if err := stream.Send(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Start{Start: start}}); err != nil {
		cancel()
		t.Fatalf("plugintest: Subscribe: send Start: %v", err)
	}
	s := &Subscription{stream: stream, ctx: ctx, cancel: cancel, items: make(chan *pluginv1.Subscribe_Response)}
	go s.receive()
	t.Cleanup(s.Close)
	return s
}

// Subscription is the client side of one Subscribe stream.
type Subscription struct {
	stream pluginv1.Endpoint_SubscribeClient
	ctx    context.Context
	cancel context.CancelFunc
	items  chan *pluginv1.Subscribe_Response // closed when the stream ends

	sendMu sync.Mutex

	mu      sync.Mutex
	failure *gateway.Failure
	endErr  error
}

func (s *Subscription) receive() {
	defer close(s.items)
	for {
		r, err := s.stream.Recv()
		if err != nil {
			if err != io.EOF && s.ctx.Err() == nil {
				s.mu.Lock()
				s.endErr = err
				s.mu.Unlock()
			}
			return
		}
		if f := r.GetFailure(); f != nil {
			s.mu.Lock()
			s.failure = wire.FailureFromWire(f)
			s.mu.Unlock()
		}
		select {
		case s.items <- r:
		case <-s.ctx.Done():
			return
		}
	}
}

// ended describes how the stream ended, for failure messages.
func (s *Subscription) ended() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.failure != nil:
		return "with failure " + s.failure.Error()
	case s.endErr != nil:
		return "with error " + s.endErr.Error()
	case s.ctx.Err() != nil:
		return "because it was closed"
	}
	return "cleanly"
}

// Ready waits for the Ready response and returns its cursor. It fails the test
// if a batch arrives first, or the stream ends, or timeout passes.
func (s *Subscription) Ready(t testing.TB, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-s.items:
			if !ok {
				t.Fatalf("plugintest: subscription ended %s before Ready", s.ended())
			}
			switch k := r.GetKind().(type) {
			case *pluginv1.Subscribe_Response_Ready:
				return k.Ready.GetCursor()
			case *pluginv1.Subscribe_Response_Batch:
				t.Fatalf("plugintest: got a batch of %d messages before Ready", len(k.Batch.GetMessages()))
			}
		case <-timer.C:
			t.Fatalf("plugintest: no Ready within %v", timeout)
		}
	}
}

// Next returns the next batch, or nil when timeout passes or the stream has
// ended (see Failure and Wait). A Ready not consumed by Ready is skipped. An
// empty batch is returned as an empty, non-nil slice.
func (s *Subscription) Next(t testing.TB, timeout time.Duration) []*gateway.Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-s.items:
			if !ok {
				return nil
			}
			if b := r.GetBatch(); b != nil {
				msgs := wire.MessagesFromWire(b.GetMessages())
				if msgs == nil {
					msgs = []*gateway.Message{}
				}
				return msgs
			}
		case <-timer.C:
			return nil
		}
	}
}

// Failure returns the failure the plugin ended the subscription with, once
// received, or nil.
func (s *Subscription) Failure() *gateway.Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

// Wait discards responses until the stream ends and returns the failure it
// ended with (nil for a clean end). It fails the test when timeout passes, or
// when the stream ends with a gRPC error rather than a Failure response.
func (s *Subscription) Wait(t testing.TB, timeout time.Duration) *gateway.Failure {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-s.items:
			if !ok {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.endErr != nil {
					t.Fatalf("plugintest: subscription ended with error: %v", s.endErr)
				}
				return s.failure
			}
		case <-timer.C:
			t.Fatalf("plugintest: subscription still running after %v", timeout)
		}
	}
}

// Ack acknowledges every message with tag <= throughTag; the plugin sees it
// on endpoint.Subscription.Acks. An ack sent after the subscription ended is
// dropped, as it would be by the core.
func (s *Subscription) Ack(t testing.TB, throughTag uint64) {
	t.Helper()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	err := s.stream.Send(&pluginv1.Subscribe_Request{Kind: &pluginv1.Subscribe_Request_Ack{
		Ack: &pluginv1.Subscribe_Ack{ThroughTag: throughTag},
	}})
	if err != nil && !streamGone(err) {
		t.Fatalf("plugintest: Ack: %v", err)
	}
}

// Close ends the stream from the client side, which cancels the plugin's
// Subscribe context. It is idempotent.
func (s *Subscription) Close() { s.cancel() }

// streamGone reports whether a send failed only because the stream ended.
func streamGone(err error) bool {
	return errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled
}
