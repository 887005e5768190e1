package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// eventBuffer is how many events wait for an entrypoint that is busy. Past
// it the stream stops reading and gRPC flow control pushes back on the core.
const eventBuffer = 8

type entrypointServer struct {
	pluginv1.UnimplementedEntrypointServer
	ep  entrypoint.Entrypoint
	log *slog.Logger
}

// Connect serves one exchange. The first request must be Open. Events are
// read by a separate goroutine and closed when the core half-closes the
// stream; the exchange runs until the entrypoint's Connect returns or the
// core cancels the call.
//
// An error from Connect ends the call with status Unknown; a *gateway.Failure
// also travels as a pluginv1.Failure in the status details.
func (es *entrypointServer) Connect(stream pluginv1.Entrypoint_ConnectServer) error {
	var first rawFrame
	if err := stream.RecvMsg(&first); err != nil {
		return err
	}
	open, ok, err := wire.DecodeOpen(first)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "decode Open: %v", err)
	}
	if !ok {
		return status.Error(codes.InvalidArgument, "the first Connect request must be Open")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	c := &conn{stream: stream, events: make(chan entrypoint.Event, eventBuffer)}
	go c.readEvents(ctx)

	err = es.ep.Connect(ctx, open, c)

	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if err == nil {
		return nil
	}
	if stream.Context().Err() != nil {
		return status.FromContextError(stream.Context().Err()).Err()
	}
	var f *gateway.Failure
	if errors.As(err, &f) {
		if f == nil {
			return nil
		}
		st, derr := status.New(codes.Unknown, f.Error()).WithDetails(wire.FailureToWire(f))
		if derr != nil {
			return status.Error(codes.Unknown, f.Error())
		}
		return st.Err()
	}
	es.log.Error("connect failed", "error", err.Error())
	return status.Error(codes.Unknown, err.Error())
}

// conn implements entrypoint.Conn over a Connect stream.
type conn struct {
	stream  pluginv1.Entrypoint_ConnectServer
	events  chan entrypoint.Event
	batchID atomic.Uint64

	mu     sync.Mutex // serializes sends; guards closed
	closed bool
}

// readEvents converts requests to events until the receive side ends.
// Requests that are not events (a second Open, kinds from a newer core) are
// skipped.
func (c *conn) readEvents(ctx context.Context) {
	defer close(c.events)
	for {
		var frame rawFrame
		if err := c.stream.RecvMsg(&frame); err != nil {
			return
		}
		ev, ok, err := eventOf(frame)
		if err != nil {
			// What the standard codec would have refused: the stream is
			// unusable, as after a failed Recv.
			return
		}
		if !ok {
			continue
		}
		select {
		case c.events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// eventOf decodes a Connect request into an event. A Deliver is decoded
// straight into gateway messages (wire.DecodeMessages); the other kinds go
// through the generated types and wire.EventFromWire, which reports false
// for requests that are not events.
func eventOf(frame rawFrame) (entrypoint.Event, bool, error) {
	if num, body, ok := onlyField(frame); ok && num == fieldConnectRequestDeliver {
		msgs, err := wire.DecodeMessages(body, fieldBatchMessages)
		if err != nil {
			return entrypoint.Event{}, false, err
		}
		return entrypoint.Event{Kind: entrypoint.Deliver, Messages: msgs}, true, nil
	}
	req := &pluginv1.Connect_Request{}
	if err := proto.Unmarshal(frame, req); err != nil {
		return entrypoint.Event{}, false, err
	}
	ev, ok := wire.EventFromWire(req)
	return ev, ok, nil
}

// send sends a *pluginv1.Connect_Response, or one already encoded
// (*rawMessage).
func (c *conn) send(r any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errStreamClosed
	}
	return c.stream.SendMsg(r)
}

func (c *conn) Events() <-chan entrypoint.Event { return c.events }

func (c *conn) Respond(status int, headers gateway.Headers, body []byte) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Respond{
		Respond: wire.RespondToWire(status, headers, body),
	}})
}

// Write encodes the Connect.Response directly (encodeWrite).
func (c *conn) Write(chunks [][]byte, text bool, ackThrough uint64) error {
	return c.send(encodeWrite(chunks, text, ackThrough))
}

// encodeWrite encodes a Connect.Response holding a Write, copying the chunks
// once into a buffer of the exact size: callers reuse their chunk buffers as
// soon as Write returns, and the generated code's marshalling went through
// a zeroed 1 MiB pool buffer for every SSE batch.
func encodeWrite(chunks [][]byte, text bool, ackThrough uint64) *rawMessage {
	n := 0
	for _, ch := range chunks {
		n += protowire.SizeTag(fieldWriteChunks) + protowire.SizeBytes(len(ch))
	}
	n += 2 + protowire.SizeTag(fieldWriteAckThrough) + protowire.SizeVarint(ackThrough)
	b := make([]byte, maxPrefix, maxPrefix+n)
	for _, ch := range chunks {
		b = protowire.AppendTag(b, fieldWriteChunks, protowire.BytesType)
		b = protowire.AppendBytes(b, ch)
	}
	if text {
		b = protowire.AppendTag(b, fieldWriteText, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if ackThrough > 0 {
		b = protowire.AppendTag(b, fieldWriteAckThrough, protowire.VarintType)
		b = protowire.AppendVarint(b, ackThrough)
	}
	return wrap(b, fieldConnectResponseWrite)
}

// Publish encodes the batch straight from the messages
// (wire.AppendMessages): the bytes are those of a Connect.Response holding a
// PublishBatch.
func (c *conn) Publish(messages []*gateway.Message) (uint64, error) {
	b, err := encodeBody(fieldPublishBatchMessages, messages)
	if err != nil {
		return 0, err
	}
	id := c.batchID.Add(1)
	b = protowire.AppendTag(b, fieldPublishBatchID, protowire.VarintType)
	b = protowire.AppendVarint(b, id)
	return id, c.send(wrap(b, fieldConnectResponsePublish))
}

// PublishThenFinish is Publish with the success response appended as the
// batch's then_respond field.
func (c *conn) PublishThenFinish(messages []*gateway.Message, success entrypoint.Finish) error {
	b, err := encodeBody(fieldPublishBatchMessages, messages)
	if err != nil {
		return err
	}
	b = protowire.AppendTag(b, fieldPublishBatchID, protowire.VarintType)
	b = protowire.AppendVarint(b, c.batchID.Add(1))
	respond, err := proto.Marshal(wire.RespondToWire(success.Status, success.Headers, success.Body))
	if err != nil {
		return err
	}
	b = protowire.AppendTag(b, fieldPublishBatchThenRespond, protowire.BytesType)
	b = protowire.AppendBytes(b, respond)
	return c.send(wrap(b, fieldConnectResponsePublish))
}

// PublishTo is Publish to a named API endpoint (entrypoint.TargetPublisher).
func (c *conn) PublishTo(endpoint string, messages []*gateway.Message) (uint64, error) {
	if endpoint == "" {
		return c.Publish(messages)
	}
	// The endpoint field goes first: a core that relays plain batches
	// without decoding them sees at once that this one is not plain, before
	// it has rewritten any message field in place.
	// The buffer starts with wrap's room, as encodeBody's does.
	b := make([]byte, maxPrefix, maxPrefix+16+len(endpoint)+wire.MessagesSize(messages))
	b = protowire.AppendTag(b, fieldPublishBatchEndpoint, protowire.BytesType)
	b = protowire.AppendString(b, endpoint)
	b, err := wire.AppendMessages(b, fieldPublishBatchMessages, messages)
	if err != nil {
		return 0, err
	}
	id := c.batchID.Add(1)
	b = protowire.AppendTag(b, fieldPublishBatchID, protowire.VarintType)
	b = protowire.AppendVarint(b, id)
	return id, c.send(wrap(b, fieldConnectResponsePublish))
}

func (c *conn) GrantInbound(bytes int) error {
	if bytes <= 0 {
		return nil
	}
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Credit{
		Credit: &pluginv1.Connect_InboundCredit{Bytes: int64(bytes)},
	}})
}

func (c *conn) Subscribe(qos, lastID string, limit int64) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Subscribe{
		Subscribe: &pluginv1.Connect_SubscribeStart{Qos: qos, LastId: lastID, Limit: limit},
	}})
}

func (c *conn) Finish(f entrypoint.Finish) error {
	return c.send(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Finish{
		Finish: wire.FinishToWire(f),
	}})
}
