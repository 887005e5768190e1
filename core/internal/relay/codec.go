package relay

import (
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
	"github.com/sluice-gw/sluice/sdk/tunnel"
)

// The exchange's streams use tunnel.Codec: the standard proto codec (same
// name, so the plugin sees ordinary "application/grpc+proto" calls) plus
// raw types that skip protobuf entirely: a received *rawFrame keeps the
// message's wire bytes, and a sent *rawMessage is wire bytes already. The
// subscribe path uses them to hand an endpoint's batch to the entrypoint
// without decoding and re-encoding every message: the core only relays what
// no policy looks at.
type (
	rawFrame   = tunnel.RawFrame
	rawMessage = tunnel.RawParts
)

// withCodec is the call option that selects the pass-through codec on
// plugins reached without a tunnel.
var withCodec = grpc.ForceCodecV2(codec)

// codec is the pass-through codec, shared with the plugins.
var codec = tunnel.Codec

// errMalformed reports a frame that is not valid protobuf.
var errMalformed = errors.New("malformed protobuf message")

// Field numbers of sdk/proto/v1 the pass-through path reads or writes.
const (
	fieldSubscribeResponseBatch = 2 // Subscribe.Response.batch
	fieldBatchMessages          = 1 // Subscribe.Batch.messages == Connect.Deliver.messages
	fieldMessageError           = 6 // Message.error
	fieldConnectRequestDeliver  = 3 // Connect.Request.deliver

	fieldConnectResponsePublish = 3 // Connect.Response.publish
	fieldPublishBatchID         = 1 // Connect.PublishBatch.batch_id
	fieldPublishBatchMessages   = 2 // Connect.PublishBatch.messages
	fieldPublishBatchThen       = 3 // Connect.PublishBatch.then_respond
	fieldPublishRequestID       = 1 // Publish.Request.batch_id
	fieldPublishRequestInstance = 2 // Publish.Request.instance_id
	fieldPublishRequestContext  = 3 // Publish.Request.context
	fieldPublishRequestMessages = 4 // Publish.Request.messages
	fieldPublishRequestSame     = 5 // Publish.Request.same_context

	fieldConnectRequestOpen = 1 // Connect.Request.open
	fieldOpenInstance       = 1 // Connect.Open.instance_id
	fieldOpenContext        = 2 // Connect.Open.context

	fieldSubscribeRequestStart = 1 // Subscribe.Request.start
	fieldStartInstance         = 1 // Subscribe.Start.instance_id
	fieldStartContext          = 2 // Subscribe.Start.context
	fieldStartQoS              = 3 // Subscribe.Start.qos
	fieldStartLastID           = 4 // Subscribe.Start.last_id
	fieldStartLimit            = 5 // Subscribe.Start.limit
)

// onlyField returns the number, type and value of a message that holds
// exactly one field; ok is false for anything else (several fields, none,
// malformed), which the caller then decodes the ordinary way.
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

// countMessages counts the messages of an encoded batch (Subscribe.Batch or
// Connect.Deliver) and, among them, those without an error.
func countMessages(batch []byte) (all, data int, err error) {
	for len(batch) > 0 {
		num, typ, n := protowire.ConsumeTag(batch)
		if n < 0 {
			return 0, 0, errMalformed
		}
		batch = batch[n:]
		if num != fieldBatchMessages || typ != protowire.BytesType {
			m := protowire.ConsumeFieldValue(num, typ, batch)
			if m < 0 {
				return 0, 0, errMalformed
			}
			batch = batch[m:]
			continue
		}
		msg, m := protowire.ConsumeBytes(batch)
		if m < 0 {
			return 0, 0, errMalformed
		}
		batch = batch[m:]
		hasErr, err := hasField(msg, fieldMessageError)
		if err != nil {
			return 0, 0, err
		}
		all++
		if !hasErr {
			data++
		}
	}
	return all, data, nil
}

// hasField reports whether an encoded message holds field num.
func hasField(msg []byte, want protowire.Number) (bool, error) {
	found := false
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return false, errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return false, errMalformed
		}
		if num == want {
			found = true
		}
		msg = msg[n+m:]
	}
	return found, nil
}

// deliverFrame wraps an encoded batch as a Connect.Request holding a
// Deliver: the batch's bytes are a Deliver's bytes, since both messages are
// `repeated Message messages = 1`.
func deliverFrame(batch []byte) *rawMessage {
	prefix := protowire.AppendTag(make([]byte, 0, 2*binaryVarintMax), fieldConnectRequestDeliver, protowire.BytesType)
	prefix = protowire.AppendVarint(prefix, uint64(len(batch)))
	return &rawMessage{prefix, batch}
}

// binaryVarintMax is the longest a varint gets.
const binaryVarintMax = 10

// rawBatch is a Connect.PublishBatch whose messages are already fields of a
// Publish.Request: parts of the received frame, with each message's tag
// rewritten from PublishBatch.messages (2) to Publish.Request.messages (4).
type rawBatch struct {
	id    uint64
	parts [][]byte
	count int
	// then is the encoded then_respond, nil when the batch has none.
	then []byte
}

// Single-byte tags of the message fields the rewrite swaps.
var (
	tagBatchMessages   = byte(protowire.EncodeTag(fieldPublishBatchMessages, protowire.BytesType))
	tagRequestMessages = byte(protowire.EncodeTag(fieldPublishRequestMessages, protowire.BytesType))
)

// rawPublishBatch turns the body of a Connect.PublishBatch into a rawBatch,
// rewriting body in place. ok is false when the body holds anything but
// its batch id and messages (fields of a newer protocol revision), which
// the caller then decodes the ordinary way. A malformed body is an error.
func rawPublishBatch(body []byte) (b rawBatch, ok bool, err error) {
	// Check every field before rewriting anything: a field this core does
	// not relay sends the batch down the decoding path, which must see the
	// bytes as they came.
	for i := 0; i < len(body); {
		num, typ, n := protowire.ConsumeTag(body[i:])
		if n < 0 {
			return rawBatch{}, false, errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, body[i+n:])
		if m < 0 {
			return rawBatch{}, false, errMalformed
		}
		switch {
		case num == fieldPublishBatchMessages && typ == protowire.BytesType && n == 1:
		case num == fieldPublishBatchID && typ == protowire.VarintType:
		case num == fieldPublishBatchThen && typ == protowire.BytesType:
		default:
			return rawBatch{}, false, nil
		}
		i += n + m
	}
	segStart := 0
	for i := 0; i < len(body); {
		num, typ, n := protowire.ConsumeTag(body[i:])
		if n < 0 {
			return rawBatch{}, false, errMalformed
		}
		m := protowire.ConsumeFieldValue(num, typ, body[i+n:])
		if m < 0 {
			return rawBatch{}, false, errMalformed
		}
		switch {
		case num == fieldPublishBatchMessages && typ == protowire.BytesType && n == 1:
			body[i] = tagRequestMessages
			b.count++
		case num == fieldPublishBatchID && typ == protowire.VarintType:
			b.id, _ = protowire.ConsumeVarint(body[i+n:])
			if i > segStart {
				b.parts = append(b.parts, body[segStart:i])
			}
			segStart = i + n + m
		case num == fieldPublishBatchThen && typ == protowire.BytesType:
			b.then, _ = protowire.ConsumeBytes(body[i+n:])
			if b.then == nil {
				b.then = []byte{}
			}
			if i > segStart {
				b.parts = append(b.parts, body[segStart:i])
			}
			segStart = i + n + m
		default:
			return rawBatch{}, false, nil
		}
		i += n + m
	}
	if segStart < len(body) {
		b.parts = append(b.parts, body[segStart:])
	}
	return b, true, nil
}

// publishRequest is what the shared Publish stream sends: a decoded
// Publish.Request (when policies had to see the messages), or one assembled
// from the exchange's encoded context and a rawBatch.
type publishRequest struct {
	typed *pluginv1.Publish_Request
	raw   rawMessage // raw[0] is the batch id field, set by setID
}

// dropContext turns the request into one flagged same_context: the
// context it carried is the one the call already has.
func (r *publishRequest) dropContext(instance string) {
	if r.typed != nil {
		r.typed.Context = nil
		r.typed.SameContext = true
		return
	}
	h := protowire.AppendTag(nil, fieldPublishRequestInstance, protowire.BytesType)
	h = protowire.AppendString(h, instance)
	h = protowire.AppendTag(h, fieldPublishRequestSame, protowire.VarintType)
	r.raw[1] = protowire.AppendVarint(h, 1)
}

func (r *publishRequest) setID(id uint64) {
	if r.typed != nil {
		r.typed.BatchId = id
		return
	}
	r.raw[0] = protowire.AppendVarint(protowire.AppendTag(nil, fieldPublishRequestID, protowire.VarintType), id)
}

// publishStream adapts the generated Publish stream to publishRequest.
type publishStream struct {
	pluginv1.Endpoint_PublishClient
}

func (s publishStream) Send(r *publishRequest) error {
	if r.typed != nil {
		return s.SendMsg(r.typed)
	}
	return s.SendMsg(&r.raw)
}

// openFrame is the Connect.Request that opens an exchange, around the
// exchange's encoded context.
func openFrame(instance string, ctxBytes []byte) *rawMessage {
	var body []byte
	if instance != "" {
		body = protowire.AppendString(protowire.AppendTag(body, fieldOpenInstance, protowire.BytesType), instance)
	}
	body = protowire.AppendTag(body, fieldOpenContext, protowire.BytesType)
	body = protowire.AppendVarint(body, uint64(len(ctxBytes)))
	head := protowire.AppendTag(nil, fieldConnectRequestOpen, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(body)+len(ctxBytes)))
	return &rawMessage{append(head, body...), ctxBytes}
}

// startFrame is the Subscribe.Request that starts a subscription, around
// the exchange's encoded context.
func startFrame(instance string, ctxBytes []byte, ss *pluginv1.Connect_SubscribeStart) *rawMessage {
	var head, tail []byte
	if instance != "" {
		head = protowire.AppendString(protowire.AppendTag(head, fieldStartInstance, protowire.BytesType), instance)
	}
	head = protowire.AppendTag(head, fieldStartContext, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(ctxBytes)))
	if q := ss.GetQos(); q != "" {
		tail = protowire.AppendString(protowire.AppendTag(tail, fieldStartQoS, protowire.BytesType), q)
	}
	if id := ss.GetLastId(); id != "" {
		tail = protowire.AppendString(protowire.AppendTag(tail, fieldStartLastID, protowire.BytesType), id)
	}
	if l := ss.GetLimit(); l != 0 {
		tail = protowire.AppendVarint(protowire.AppendTag(tail, fieldStartLimit, protowire.VarintType), uint64(l))
	}
	outer := protowire.AppendTag(nil, fieldSubscribeRequestStart, protowire.BytesType)
	outer = protowire.AppendVarint(outer, uint64(len(head)+len(ctxBytes)+len(tail)))
	return &rawMessage{append(outer, head...), ctxBytes, tail}
}
