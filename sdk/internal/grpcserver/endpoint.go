package grpcserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// errStreamClosed is returned by a Subscription or Conn used after its
// handler returned.
var errStreamClosed = errors.New("stream closed: the call it belongs to has returned")

type endpointServer struct {
	pluginv1.UnimplementedEndpointServer
	ep  endpoint.Endpoint
	log *slog.Logger
}

// Publish serves the multiplexed publish stream: every batch runs in its own
// goroutine (at most MaxConcurrentBatches at once) and is answered by exactly
// one response with its batch id. When the core half-closes the stream, the
// batches in flight are still answered before the call ends. Batches are
// decoded straight into gateway messages (wire.DecodePublishRequest).
func (es *endpointServer) Publish(stream pluginv1.Endpoint_PublishServer) error {
	type batch struct {
		id  uint64
		req *endpoint.PublishRequest
	}
	// last is the context of the call's previous request, which a request
	// flagged same_context shares. Requests are decoded in order, here.
	var last *gateway.Context
	recv := func() (*batch, error) {
		var frame rawFrame
		if err := stream.RecvMsg(&frame); err != nil {
			return nil, err
		}
		id, req, same, err := wire.DecodePublishRequest(frame)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "cannot decode a publish batch: %v", err)
		}
		if same && last != nil {
			req.Context = last
		}
		last = req.Context
		return &batch{id: id, req: req}, nil
	}
	return serveBatches(stream.Context(), recv, stream.Send, func(ctx context.Context, b *batch) *pluginv1.Publish_Response {
		err := es.ep.Publish(ctx, b.req)
		return &pluginv1.Publish_Response{
			BatchId: b.id,
			Failure: failureOf(err, &endpointUnknown, es.log, "publish"),
		}
	})
}

// serveBatches runs handle for every request recv returns, concurrently,
// and sends the responses one at a time, as gRPC requires. It ends when recv
// fails: cleanly at io.EOF (the core half-closed the stream), with the
// error otherwise.
func serveBatches[Req, Resp any](ctx context.Context, recv func() (Req, error), send func(Resp) error, handle func(context.Context, Req) Resp) error {
	var (
		sendMu sync.Mutex
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, MaxConcurrentBatches)
	// Sends must not outlive the handler: wait for every batch first.
	defer wg.Wait()
	for {
		req, err := recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
		wg.Add(1)
		go func() {
			defer func() {
				<-sem
				wg.Done()
			}()
			resp := handle(ctx, req)
			sendMu.Lock()
			defer sendMu.Unlock()
			// A failed send means the stream is gone; recv reports it.
			_ = send(resp)
		}()
	}
}

// Subscribe serves one subscription stream. The first request must be Start.
// Acks are read by a separate goroutine, so an endpoint blocked in Send still
// sees them. The subscription ends (its context is cancelled) when the core
// cancels the call or half-closes the stream.
func (es *endpointServer) Subscribe(stream pluginv1.Endpoint_SubscribeServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first Subscribe request must be Start")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sub := &subscription{stream: stream, acks: make(chan uint64, 1)}
	go sub.readAcks(cancel)

	err = es.ep.Subscribe(ctx, wire.SubscribeStartFromWire(start), sub)

	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.closed = true
	if err == nil || ctx.Err() != nil {
		// Either a clean end or the core went away: nothing to report.
		return nil
	}
	f := failureOf(err, &endpointUnknown, es.log, "subscribe")
	if f == nil {
		return nil
	}
	return stream.Send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Failure{Failure: f}})
}

// subscription implements endpoint.Subscription over a Subscribe stream.
type subscription struct {
	stream pluginv1.Endpoint_SubscribeServer
	acks   chan uint64

	mu     sync.Mutex // serializes sends; guards closed
	closed bool
}

// readAcks feeds Acks until the receive side ends, keeping only the highest
// unread tag so a slow reader never blocks the stream.
func (s *subscription) readAcks(cancel context.CancelFunc) {
	defer close(s.acks)
	defer cancel()
	for {
		req, err := s.stream.Recv()
		if err != nil {
			return
		}
		if a := req.GetAck(); a != nil {
			offerLatest(s.acks, a.GetThroughTag())
		}
	}
}

// offerLatest puts tag in ch (capacity 1), replacing an unread older tag. It
// must have a single caller per channel.
func offerLatest(ch chan uint64, tag uint64) {
	for {
		select {
		case ch <- tag:
			return
		default:
		}
		select {
		case old := <-ch:
			tag = max(tag, old)
		default:
		}
	}
}

// send sends a *pluginv1.Subscribe_Response, or one already encoded
// (*rawMessage).
func (s *subscription) send(r any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStreamClosed
	}
	return s.stream.SendMsg(r)
}

func (s *subscription) Ready(cursor string) error {
	return s.send(&pluginv1.Subscribe_Response{Kind: &pluginv1.Subscribe_Response_Ready{
		Ready: &pluginv1.Subscribe_Ready{Cursor: cursor},
	}})
}

// Send encodes the batch straight from the messages (wire.AppendMessages):
// the bytes are those of a Subscribe.Response holding a Batch.
func (s *subscription) Send(messages []*gateway.Message) error {
	b, err := encodeBody(fieldBatchMessages, messages)
	if err != nil {
		return err
	}
	return s.send(wrap(b, fieldSubscribeResponseBatch))
}

func (s *subscription) Acks() <-chan uint64 { return s.acks }
