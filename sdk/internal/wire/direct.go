package wire

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// This file encodes and decodes batches of messages straight between
// gateway.Message and protobuf bytes, without building the generated
// pluginv1.Message and structpb.Value trees in between. Those trees cost
// several allocations per message (a Value per metadata entry, a map per
// message, on both sides of every hop), which made them the largest cost of
// the subscribe path. The bytes are exactly what proto.Marshal accepts and
// produces for pluginv1.Message, so either side may use either way; the
// tests check both directions against the generated code.

// Field numbers of sdk/proto/v1 and google.protobuf.Value.
const (
	fMessageID         = 1
	fMessageContent    = 2
	fMessageHeaders    = 3
	fMessageMetadata   = 4
	fMessageAttributes = 5
	fMessageError      = 6
	fMessageTag        = 7

	fHeaderName   = 1
	fHeaderValues = 2

	fFailureStatus       = 1
	fFailureKey          = 2
	fFailureMessage      = 3
	fFailureRetriable    = 4
	fFailureRequestLevel = 5

	fEntryKey   = 1
	fEntryValue = 2

	fValueNull   = 1
	fValueNumber = 2
	fValueString = 3
	fValueBool   = 4
	fValueStruct = 5
	fValueList   = 6
)

// errInvalidUTF8 is what proto.Marshal refuses too: proto3 strings must be
// valid UTF-8.
var errInvalidUTF8 = errors.New("string is not valid UTF-8")

// errMalformed reports bytes that are not a valid encoding.
var errMalformed = errors.New("malformed protobuf message")

// AppendMessages appends each non-nil message of msgs as field num of the
// message being encoded in b, in order. Content and strings are copied into
// b. It fails where proto.Marshal of the equivalent pluginv1 messages would
// (invalid UTF-8) and where MessagesToWire would (values encoding/json
// rejects), naming the message and the key.
func AppendMessages(b []byte, num protowire.Number, msgs []*gateway.Message) ([]byte, error) {
	var e directEncoder
	for i, m := range msgs {
		if m == nil {
			continue
		}
		var err error
		if b, err = e.message(b, num, m); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
	}
	return b, nil
}

// MessagesSize estimates the encoded size of msgs, for sizing a buffer.
func MessagesSize(msgs []*gateway.Message) int {
	n := 0
	for _, m := range msgs {
		if m != nil {
			// Content, its framing, and room for the usual metadata.
			n += len(m.Content) + len(m.ID) + 160
		}
	}
	return n
}

// directEncoder carries scratch space across the messages of one batch.
type directEncoder struct {
	names []string
}

// openLen starts a length-delimited field, leaving room for a length of
// guess bytes; closeLen writes the length, moving the body when the guess
// was wrong. The body starts at the returned offset.
func openLen(b []byte, num protowire.Number, guess int) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	for range guess {
		b = append(b, 0)
	}
	return b, len(b)
}

func closeLen(b []byte, start, guess int) []byte {
	n := len(b) - start
	k := protowire.SizeVarint(uint64(n))
	switch {
	case k > guess:
		d := k - guess
		b = append(b, make([]byte, d)...)
		copy(b[start+d:], b[start:start+n])
		start += d
	case k < guess:
		d := guess - k
		copy(b[start-d:], b[start:start+n])
		b = b[:len(b)-d]
		start -= d
	}
	protowire.AppendVarint(b[:start-k], uint64(n))
	return b
}

func appendString(b []byte, num protowire.Number, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, errInvalidUTF8
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s), nil
}

func (e *directEncoder) message(b []byte, num protowire.Number, m *gateway.Message) ([]byte, error) {
	b, start := openLen(b, num, 2)
	var err error
	if m.ID != "" {
		if b, err = appendString(b, fMessageID, m.ID); err != nil {
			return nil, fmt.Errorf("id: %w", err)
		}
	}
	if len(m.Content) > 0 {
		b = protowire.AppendTag(b, fMessageContent, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Content)
	}
	if b, err = e.headers(b, m.Headers); err != nil {
		return nil, err
	}
	if b, err = appendValueMap(b, fMessageMetadata, m.Metadata); err != nil {
		return nil, fmt.Errorf("metadata %w", err)
	}
	if b, err = appendValueMap(b, fMessageAttributes, m.Attributes); err != nil {
		return nil, fmt.Errorf("attribute %w", err)
	}
	if m.Error != nil {
		if b, err = appendFailure(b, fMessageError, m.Error); err != nil {
			return nil, fmt.Errorf("error: %w", err)
		}
	}
	if m.Tag != 0 {
		b = protowire.AppendTag(b, fMessageTag, protowire.VarintType)
		b = protowire.AppendVarint(b, m.Tag)
	}
	return closeLen(b, start, 2), nil
}

// headers appends h sorted by name, like the encoder of gateway.go, so the
// encoding is deterministic.
func (e *directEncoder) headers(b []byte, h map[string][]string) ([]byte, error) {
	if len(h) == 0 {
		return b, nil
	}
	e.names = e.names[:0]
	for k := range h {
		e.names = append(e.names, k)
	}
	slices.Sort(e.names)
	for _, k := range e.names {
		var start int
		b, start = openLen(b, fMessageHeaders, 1)
		var err error
		if k != "" {
			if b, err = appendString(b, fHeaderName, k); err != nil {
				return nil, fmt.Errorf("header name %q: %w", k, err)
			}
		}
		for _, v := range h[k] {
			if b, err = appendString(b, fHeaderValues, v); err != nil {
				return nil, fmt.Errorf("header %s: %w", k, err)
			}
		}
		b = closeLen(b, start, 1)
	}
	return b, nil
}

func appendFailure(b []byte, num protowire.Number, f *gateway.Failure) ([]byte, error) {
	b, start := openLen(b, num, 1)
	var err error
	if s := int32(f.Status); s != 0 {
		b = protowire.AppendTag(b, fFailureStatus, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(s)))
	}
	if f.Key != "" {
		if b, err = appendString(b, fFailureKey, f.Key); err != nil {
			return nil, err
		}
	}
	if f.Message != "" {
		if b, err = appendString(b, fFailureMessage, f.Message); err != nil {
			return nil, err
		}
	}
	if f.Retriable {
		b = protowire.AppendTag(b, fFailureRetriable, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if f.RequestLevel {
		b = protowire.AppendTag(b, fFailureRequestLevel, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return closeLen(b, start, 1), nil
}

// appendValueMap appends an attribute or metadata map as map entries.
func appendValueMap(b []byte, num protowire.Number, m map[string]any) ([]byte, error) {
	for k, v := range m {
		var start int
		b, start = openLen(b, num, 1)
		var err error
		if b, err = appendString(b, fEntryKey, k); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		if b, err = appendValue(b, fEntryValue, v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		b = closeLen(b, start, 1)
	}
	return b, nil
}

// appendValue appends v as a google.protobuf.Value, converted as
// ValueToWire converts it. Scalars are written directly; anything else goes
// through ValueToWire and proto.Marshal.
func appendValue(b []byte, num protowire.Number, v any) ([]byte, error) {
	var f float64
	switch x := v.(type) {
	case nil:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return append(b, 2, fValueNull<<3|byte(protowire.VarintType), 0), nil
	case string:
		if !utf8.ValidString(x) {
			return nil, errInvalidUTF8
		}
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(x))))
		b = protowire.AppendTag(b, fValueString, protowire.BytesType)
		return protowire.AppendString(b, x), nil
	case bool:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return append(b, 2, fValueBool<<3|byte(protowire.VarintType), byte(protowire.EncodeBool(x))), nil
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case int16:
		f = float64(x)
	case int8:
		f = float64(x)
	case uint:
		f = float64(x)
	case uint64:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint16:
		f = float64(x)
	case uint8:
		f = float64(x)
	case float64:
		f = x
	case float32:
		f = float64(x)
	default:
		w, err := ValueToWire(v)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(proto.Size(w)))
		return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, w)
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 9, fValueNumber<<3|byte(protowire.Fixed64Type))
	return protowire.AppendFixed64(b, math.Float64bits(f)), nil
}

// DecodeMessages decodes the messages held as field num of the encoded
// message b (a Connect.Deliver, a Subscribe.Batch...), in order; other
// fields are skipped. It decodes what MessagesFromWire returns for the
// same bytes decoded by proto.Unmarshal, except that it does not check that
// strings are valid UTF-8.
//
// Content aliases b, which the caller must not modify afterwards. Strings
// share one copy of b: holding any of them keeps that copy alive.
func DecodeMessages(b []byte, num protowire.Number) ([]*gateway.Message, error) {
	n := 0
	for i := 0; i < len(b); {
		fn, typ, l := protowire.ConsumeTag(b[i:])
		if l < 0 {
			return nil, errMalformed
		}
		m := protowire.ConsumeFieldValue(fn, typ, b[i+l:])
		if m < 0 {
			return nil, errMalformed
		}
		if fn == num && typ == protowire.BytesType {
			n++
		}
		i += l + m
	}
	if n == 0 {
		return nil, nil
	}
	d := directDecoder{b: b}
	backing := make([]gateway.Message, n)
	out := make([]*gateway.Message, n)
	k := 0
	for i := 0; i < len(b); {
		fn, typ, l := protowire.ConsumeTag(b[i:])
		i += l
		if fn != num || typ != protowire.BytesType {
			i += protowire.ConsumeFieldValue(fn, typ, b[i:])
			continue
		}
		start, end, next := d.span(i, len(b))
		if next < 0 {
			return nil, errMalformed
		}
		m := &backing[k]
		if err := d.message(m, start, end); err != nil {
			return nil, fmt.Errorf("message %d: %w", k, err)
		}
		out[k] = m
		k++
		i = next
	}
	return out, nil
}

// directDecoder reads from b; strings are cut from s, one copy of b made
// on first use, so that a batch's strings cost one allocation.
type directDecoder struct {
	b []byte
	s string
}

func (d *directDecoder) str(i, j int) string {
	if d.s == "" {
		d.s = string(d.b)
	}
	return d.s[i:j]
}

// span reads a length-delimited value at b[i:limit] and returns where its
// bytes start and end, and where the next field starts (-1 if malformed).
func (d *directDecoder) span(i, limit int) (start, end, next int) {
	v, n := protowire.ConsumeBytes(d.b[i:limit])
	if n < 0 {
		return 0, 0, -1
	}
	next = i + n
	return next - len(v), next, next
}

// fields walks the fields of b[i:end], calling f with each field's number,
// type and the offset of its value; f returns where the next field starts,
// or -1 when the value is malformed. Fields f does not want it skips by
// returning skip.
func (d *directDecoder) fields(i, end int, f func(num protowire.Number, typ protowire.Type, at int) int) error {
	for i < end {
		num, typ, n := protowire.ConsumeTag(d.b[i:end])
		if n < 0 {
			return errMalformed
		}
		i += n
		next := f(num, typ, i)
		if next == skip {
			m := protowire.ConsumeFieldValue(num, typ, d.b[i:end])
			if m < 0 {
				return errMalformed
			}
			next = i + m
		}
		if next < 0 || next > end {
			return errMalformed
		}
		i = next
	}
	return nil
}

// skip is what a fields callback returns for a field it does not read.
const skip = -2

func (d *directDecoder) varint(at, end int) (uint64, int) {
	v, n := protowire.ConsumeVarint(d.b[at:end])
	if n < 0 {
		return 0, -1
	}
	return v, at + n
}

func (d *directDecoder) message(m *gateway.Message, i, end int) error {
	var err error
	ferr := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		switch {
		case num == fMessageID && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				m.ID = d.str(s, e)
			}
			return next
		case num == fMessageContent && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				m.Content = d.b[s:e:e]
			}
			return next
		case num == fMessageHeaders && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				if m.Headers == nil {
					m.Headers = gateway.Headers{}
				}
				if err = d.header(m.Headers, s, e); err != nil {
					return -1
				}
			}
			return next
		case (num == fMessageMetadata || num == fMessageAttributes) && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				target := &m.Metadata
				if num == fMessageAttributes {
					target = &m.Attributes
				}
				if *target == nil {
					*target = make(map[string]any)
				}
				if err = d.entry(*target, s, e); err != nil {
					return -1
				}
			}
			return next
		case num == fMessageError && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				if m.Error == nil {
					m.Error = &gateway.Failure{}
				}
				if err = d.failure(m.Error, s, e); err != nil {
					return -1
				}
			}
			return next
		case num == fMessageTag && typ == protowire.VarintType:
			v, next := d.varint(at, end)
			m.Tag = v
			return next
		}
		return skip
	})
	if err != nil {
		return err
	}
	return ferr
}

// header adds one wire header to h; a name listed twice gets the values of
// both entries, in order, as HeadersFromWire does.
func (d *directDecoder) header(h gateway.Headers, i, end int) error {
	var (
		name   string
		values []string
	)
	err := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		if typ != protowire.BytesType || (num != fHeaderName && num != fHeaderValues) {
			return skip
		}
		s, e, next := d.span(at, end)
		if next >= 0 {
			if num == fHeaderName {
				name = d.str(s, e)
			} else {
				values = append(values, d.str(s, e))
			}
		}
		return next
	})
	if err != nil {
		return err
	}
	if prev, ok := h[name]; ok {
		h[name] = append(prev[:len(prev):len(prev)], values...)
	} else {
		h[name] = values
	}
	return nil
}

// entry adds one map entry to m; a later entry of the same key wins, as in
// proto.Unmarshal.
func (d *directDecoder) entry(m map[string]any, i, end int) error {
	var (
		key string
		val any
	)
	err := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		if typ != protowire.BytesType || (num != fEntryKey && num != fEntryValue) {
			return skip
		}
		s, e, next := d.span(at, end)
		if next < 0 {
			return next
		}
		if num == fEntryKey {
			key = d.str(s, e)
			return next
		}
		v, err := d.value(s, e)
		if err != nil {
			return -1
		}
		val = v
		return next
	})
	if err != nil {
		return err
	}
	m[key] = val
	return nil
}

// value decodes a google.protobuf.Value as ValueFromWire does. Scalars are
// read directly; a struct or list goes through proto.Unmarshal.
func (d *directDecoder) value(i, end int) (any, error) {
	var out any
	composite := false
	err := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		switch {
		case num == fValueNull && typ == protowire.VarintType:
			_, next := d.varint(at, end)
			out = nil
			return next
		case num == fValueNumber && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(d.b[at:end])
			if n < 0 {
				return -1
			}
			out = Number(math.Float64frombits(v))
			return at + n
		case num == fValueString && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				out = d.str(s, e)
			}
			return next
		case num == fValueBool && typ == protowire.VarintType:
			v, next := d.varint(at, end)
			out = protowire.DecodeBool(v)
			return next
		case (num == fValueStruct || num == fValueList) && typ == protowire.BytesType:
			composite = true
		}
		return skip
	})
	if err != nil {
		return nil, err
	}
	if composite {
		var v structpb.Value
		if err := proto.Unmarshal(d.b[i:end], &v); err != nil {
			return nil, err
		}
		return ValueFromWire(&v), nil
	}
	return out, nil
}

func (d *directDecoder) failure(f *gateway.Failure, i, end int) error {
	return d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		switch {
		case num == fFailureStatus && typ == protowire.VarintType:
			v, next := d.varint(at, end)
			f.Status = int(int32(v))
			return next
		case (num == fFailureKey || num == fFailureMessage) && typ == protowire.BytesType:
			s, e, next := d.span(at, end)
			if next >= 0 {
				if num == fFailureKey {
					f.Key = d.str(s, e)
				} else {
					f.Message = d.str(s, e)
				}
			}
			return next
		case (num == fFailureRetriable || num == fFailureRequestLevel) && typ == protowire.VarintType:
			v, next := d.varint(at, end)
			if num == fFailureRetriable {
				f.Retriable = protowire.DecodeBool(v)
			} else {
				f.RequestLevel = protowire.DecodeBool(v)
			}
			return next
		}
		return skip
	})
}

// Field numbers of Publish.Request.
const (
	fPublishBatchID    = 1
	fPublishInstanceID = 2
	fPublishContext    = 3
	fPublishMessages   = 4
	fPublishSame       = 5
)

// DecodePublishRequest decodes an encoded Publish.Request straight into the
// batch id and the endpoint's request, as proto.Unmarshal and
// PublishRequestFromWire would, messages as DecodeMessages does. same
// reports the same_context flag: the caller then sets the context of the
// call's previous request.
func DecodePublishRequest(b []byte) (id uint64, req *endpoint.PublishRequest, same bool, err error) {
	var (
		inst string
		pctx *gateway.Context
	)
	d := directDecoder{b: b}
	ferr := d.fields(0, len(b), func(num protowire.Number, typ protowire.Type, at int) int {
		switch {
		case num == fPublishBatchID && typ == protowire.VarintType:
			v, next := d.varint(at, len(b))
			id = v
			return next
		case num == fPublishSame && typ == protowire.VarintType:
			v, next := d.varint(at, len(b))
			same = protowire.DecodeBool(v)
			return next
		case num == fPublishInstanceID && typ == protowire.BytesType:
			s, e, next := d.span(at, len(b))
			if next >= 0 {
				inst = string(b[s:e])
			}
			return next
		case num == fPublishContext && typ == protowire.BytesType:
			s, e, next := d.span(at, len(b))
			if next >= 0 {
				if pctx == nil {
					pctx = &gateway.Context{}
				}
				if err = d.context(pctx, s, e); err != nil {
					return -1
				}
			}
			return next
		}
		return skip
	})
	if err != nil {
		return 0, nil, false, err
	}
	if ferr != nil {
		return 0, nil, false, ferr
	}
	msgs, err := DecodeMessages(b, fPublishMessages)
	if err != nil {
		return 0, nil, false, err
	}
	if pctx == nil {
		pctx = &gateway.Context{}
	}
	return id, &endpoint.PublishRequest{InstanceID: inst, Context: pctx, Messages: msgs}, same, nil
}
