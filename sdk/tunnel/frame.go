package tunnel

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Field numbers of TunnelFrame, TunnelStatus and TunnelBatch, read from the
// generated descriptors so the hand-written encoder below cannot drift from
// plugin.proto.
var (
	fieldCall      = frameField("call")
	fieldMethod    = frameField("method")
	fieldMessage   = frameField("message")
	fieldCloseSend = frameField("close_send")
	fieldEnd       = frameField("end")
	fieldWindow    = frameField("window")
	fieldCancel    = frameField("cancel")

	fieldStatusCode    = (&pluginv1.TunnelStatus{}).ProtoReflect().Descriptor().Fields().ByName("code").Number()
	fieldStatusMessage = (&pluginv1.TunnelStatus{}).ProtoReflect().Descriptor().Fields().ByName("message").Number()
	fieldBatchFrames   = (&pluginv1.TunnelBatch{}).ProtoReflect().Descriptor().Fields().ByName("frames").Number()
)

func frameField(name protoreflect.Name) protowire.Number {
	f := (&pluginv1.TunnelFrame{}).ProtoReflect().Descriptor().Fields().ByName(name)
	if f == nil {
		panic("tunnel: TunnelFrame has no field " + string(name))
	}
	return f.Number()
}

// frame is one TunnelFrame. msg is nil for a control frame; an empty
// message is a non-nil empty slice of parts.
type frame struct {
	call      uint64
	method    string
	msg       [][]byte
	msgLen    int
	hasMsg    bool
	closeSend bool
	end       *endStatus
	window    uint32
	cancel    bool
}

// endStatus is the status that ends a call.
type endStatus struct {
	code    int32
	message string
}

// encoded is one frame as it goes into a batch: its parts (the length
// prefix of TunnelBatch.frames first) and their total size.
type encoded struct {
	parts [][]byte
	size  int
}

// encode lays the frame out as batch parts. The message goes last and is
// not copied.
func (f *frame) encode() encoded {
	h := make([]byte, 0, 48+len(f.method))
	h = protowire.AppendTag(h, fieldCall, protowire.VarintType)
	h = protowire.AppendVarint(h, f.call)
	if f.method != "" {
		h = protowire.AppendTag(h, fieldMethod, protowire.BytesType)
		h = protowire.AppendString(h, f.method)
	}
	if f.closeSend {
		h = protowire.AppendTag(h, fieldCloseSend, protowire.VarintType)
		h = protowire.AppendVarint(h, 1)
	}
	if f.end != nil {
		var st []byte
		if f.end.code != 0 {
			st = protowire.AppendTag(st, fieldStatusCode, protowire.VarintType)
			st = protowire.AppendVarint(st, uint64(f.end.code))
		}
		if f.end.message != "" {
			st = protowire.AppendTag(st, fieldStatusMessage, protowire.BytesType)
			st = protowire.AppendString(st, f.end.message)
		}
		h = protowire.AppendTag(h, fieldEnd, protowire.BytesType)
		h = protowire.AppendBytes(h, st)
	}
	if f.window > 0 {
		h = protowire.AppendTag(h, fieldWindow, protowire.VarintType)
		h = protowire.AppendVarint(h, uint64(f.window))
	}
	if f.cancel {
		h = protowire.AppendTag(h, fieldCancel, protowire.VarintType)
		h = protowire.AppendVarint(h, 1)
	}
	if f.hasMsg {
		h = protowire.AppendTag(h, fieldMessage, protowire.BytesType)
		h = protowire.AppendVarint(h, uint64(f.msgLen))
	}
	inner := len(h) + f.msgLen
	prefix := protowire.AppendTag(make([]byte, 0, 8+len(h)), fieldBatchFrames, protowire.BytesType)
	prefix = protowire.AppendVarint(prefix, uint64(inner))
	prefix = append(prefix, h...)
	parts := make([][]byte, 0, 1+len(f.msg))
	parts = append(parts, prefix)
	parts = append(parts, f.msg...)
	return encoded{parts: parts, size: len(prefix) + f.msgLen}
}

var errMalformed = errors.New("tunnel: malformed batch")

// decodeBatch calls fn for every frame of a TunnelBatch. A frame's message
// is a slice of b.
func decodeBatch(b []byte, fn func(*frame)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if num != fieldBatchFrames || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		var f frame
		if err := decodeFrame(v, &f); err != nil {
			return err
		}
		fn(&f)
	}
	return nil
}

func decodeFrame(b []byte, f *frame) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num != fieldMethod && num != fieldMessage && num != fieldEnd:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
			switch num {
			case fieldCall:
				f.call = v
			case fieldCloseSend:
				f.closeSend = v != 0
			case fieldWindow:
				f.window = uint32(v)
			case fieldCancel:
				f.cancel = v != 0
			}
		case typ == protowire.BytesType && (num == fieldMethod || num == fieldMessage || num == fieldEnd):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
			switch num {
			case fieldMethod:
				f.method = string(v)
			case fieldMessage:
				f.msg = [][]byte{v}
				f.msgLen = len(v)
				f.hasMsg = true
			case fieldEnd:
				st, err := decodeStatus(v)
				if err != nil {
					return err
				}
				f.end = st
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
		}
	}
	return nil
}

func decodeStatus(b []byte) (*endStatus, error) {
	st := &endStatus{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errMalformed
		}
		b = b[n:]
		switch {
		case num == fieldStatusCode && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, errMalformed
			}
			b = b[n:]
			st.code = int32(v)
		case num == fieldStatusMessage && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errMalformed
			}
			b = b[n:]
			st.message = string(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, errMalformed
			}
			b = b[n:]
		}
	}
	return st, nil
}
