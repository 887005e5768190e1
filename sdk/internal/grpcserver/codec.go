package grpcserver

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/internal/wire"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// The plugin server's gRPC codec is tunnel.Codec: the standard proto codec
// plus raw types that skip the generated messages. A received *rawFrame
// keeps the wire bytes, which the hot paths decode straight into gateway
// types (wire.DecodeMessages); a sent *rawMessage is wire bytes already,
// encoded straight from gateway types (wire.AppendMessages). The core
// relays subscribed batches without decoding them either, so a message's
// metadata is never turned into structpb values on the way from the
// endpoint to the entrypoint.
type (
	rawFrame   = tunnel.RawFrame
	rawMessage = tunnel.RawBytes
)

var codec = tunnel.Codec

// Field numbers of sdk/proto/v1 the direct paths read or write.
const (
	fieldSubscribeResponseBatch  = 2 // Subscribe.Response.batch
	fieldBatchMessages           = 1 // Subscribe.Batch.messages, Connect.Deliver.messages
	fieldConnectRequestDeliver   = 3 // Connect.Request.deliver
	fieldConnectResponsePublish  = 3 // Connect.Response.publish
	fieldPublishBatchID          = 1 // Connect.PublishBatch.batch_id
	fieldPublishBatchMessages    = 2 // Connect.PublishBatch.messages
	fieldPublishBatchThenRespond = 3 // Connect.PublishBatch.then_respond
	fieldConnectResponseWrite    = 2 // Connect.Response.write
	fieldWriteChunks             = 1 // Connect.Write.chunks
	fieldWriteText               = 2 // Connect.Write.text
	fieldWriteAckThrough         = 3 // Connect.Write.ack_through
	fieldPublishBatchEndpoint    = 4 // Connect.PublishBatch.endpoint
)

// maxPrefix is room for a tag of a small field number and the longest
// length a message may have.
const maxPrefix = 1 + 5

// encodeBody encodes msgs as field inner of a message body, leaving room
// in front for wrap. Fields may be appended to the body before wrap.
func encodeBody(inner protowire.Number, msgs []*gateway.Message) ([]byte, error) {
	b := make([]byte, maxPrefix, maxPrefix+16+wire.MessagesSize(msgs))
	return wire.AppendMessages(b, inner, msgs)
}

// wrap turns a body made by encodeBody into a message whose only field,
// outer, holds that body.
func wrap(b []byte, outer protowire.Number) *rawMessage {
	n := len(b) - maxPrefix
	start := maxPrefix - protowire.SizeTag(outer) - protowire.SizeVarint(uint64(n))
	protowire.AppendVarint(protowire.AppendTag(b[:start], outer, protowire.BytesType), uint64(n))
	m := rawMessage(b[start:])
	return &m
}

// onlyField returns the number and value of a message that holds exactly
// one length-delimited field; ok is false for anything else, which the
// caller then decodes the ordinary way.
func onlyField(b []byte) (num protowire.Number, val []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType {
		return 0, nil, false
	}
	val, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return 0, nil, false
	}
	return num, val, true
}
