package relay

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Field numbers of Context, Request, Header and google.protobuf.Value the
// context encoder writes.
const (
	fieldContextAPI        = 1
	fieldContextRequest    = 2
	fieldContextAttributes = 3

	fieldRequestID          = 1
	fieldRequestTransaction = 2
	fieldRequestClient      = 3
	fieldRequestMethod      = 4
	fieldRequestPath        = 5
	fieldRequestContextPath = 6
	fieldRequestPathInfo    = 7
	fieldRequestHeaders     = 8
	fieldRequestParams      = 9
	fieldRequestPathParams  = 10
	fieldRequestRemote      = 11
	fieldRequestBody        = 12
	fieldRequestWebSocket   = 13

	fieldHeaderName   = 1
	fieldHeaderValues = 2
	fieldEntryKey     = 1
	fieldEntryValue   = 2

	fieldValueNull   = 1
	fieldValueNumber = 2
	fieldValueString = 3
	fieldValueBool   = 4
)

// encodeContext encodes an exchange's context, as proto.Marshal would but
// without its reflection over maps of structpb values, which was the core's
// largest cost per POST after the sockets. Composite attribute values (a
// JWT's claims) still go through proto.Marshal.
func encodeContext(c *pluginv1.Context) ([]byte, error) {
	b := make([]byte, 0, 512+len(c.GetRequest().GetBody()))
	if s := c.GetApiId(); s != "" {
		b = appendStringField(b, fieldContextAPI, s)
	}
	if r := c.GetRequest(); r != nil {
		b = protowire.AppendTag(b, fieldContextRequest, protowire.BytesType)
		start := len(b)
		b = appendRequest(b, r)
		b = prefixLength(b, start)
	}
	for k, v := range c.GetAttributes() {
		b = protowire.AppendTag(b, fieldContextAttributes, protowire.BytesType)
		start := len(b)
		b = appendStringField(b, fieldEntryKey, k)
		var err error
		if b, err = appendValue(b, v); err != nil {
			return nil, err
		}
		b = prefixLength(b, start)
	}
	return b, nil
}

func appendRequest(b []byte, r *pluginv1.Request) []byte {
	for _, f := range []struct {
		num protowire.Number
		s   string
	}{
		{fieldRequestID, r.GetId()}, {fieldRequestTransaction, r.GetTransactionId()}, {fieldRequestClient, r.GetClientIdentifier()},
		{fieldRequestMethod, r.GetMethod()}, {fieldRequestPath, r.GetPath()}, {fieldRequestContextPath, r.GetContextPath()},
		{fieldRequestPathInfo, r.GetPathInfo()},
	} {
		if f.s != "" {
			b = appendStringField(b, f.num, f.s)
		}
	}
	b = appendHeaders(b, fieldRequestHeaders, r.GetHeaders())
	b = appendHeaders(b, fieldRequestParams, r.GetParams())
	for k, v := range r.GetPathParams() {
		b = protowire.AppendTag(b, fieldRequestPathParams, protowire.BytesType)
		start := len(b)
		b = appendStringField(b, fieldEntryKey, k)
		b = appendStringField(b, fieldEntryValue, v)
		b = prefixLength(b, start)
	}
	if s := r.GetRemoteAddress(); s != "" {
		b = appendStringField(b, fieldRequestRemote, s)
	}
	if body := r.GetBody(); len(body) > 0 {
		b = protowire.AppendTag(b, fieldRequestBody, protowire.BytesType)
		b = protowire.AppendBytes(b, body)
	}
	if r.GetWebsocket() {
		b = protowire.AppendTag(b, fieldRequestWebSocket, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

func appendHeaders(b []byte, num protowire.Number, hs []*pluginv1.Header) []byte {
	for _, h := range hs {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		start := len(b)
		if n := h.GetName(); n != "" {
			b = appendStringField(b, fieldHeaderName, n)
		}
		for _, v := range h.GetValues() {
			b = appendStringField(b, fieldHeaderValues, v)
		}
		b = prefixLength(b, start)
	}
	return b
}

// appendValue appends a map entry's value field holding v.
func appendValue(b []byte, v *structpb.Value) ([]byte, error) {
	b = protowire.AppendTag(b, fieldEntryValue, protowire.BytesType)
	start := len(b)
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		b = protowire.AppendTag(b, fieldValueNull, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k.NullValue))
	case *structpb.Value_NumberValue:
		b = protowire.AppendTag(b, fieldValueNumber, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(k.NumberValue))
	case *structpb.Value_StringValue:
		b = appendStringField(b, fieldValueString, k.StringValue)
	case *structpb.Value_BoolValue:
		b = protowire.AppendTag(b, fieldValueBool, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(k.BoolValue))
	case nil:
	default:
		var err error
		if b, err = (proto.MarshalOptions{}).MarshalAppend(b, v); err != nil {
			return nil, err
		}
	}
	return prefixLength(b, start), nil
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// prefixLength turns b[start:] into a length-delimited value: it inserts
// the varint length at start.
func prefixLength(b []byte, start int) []byte {
	n := len(b) - start
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size)...)
	copy(b[start+size:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}
