package tunnel

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec Codec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// RawFrame receives one message in wire form: the hot paths decode it
// themselves, or relay it without decoding at all.
type RawFrame []byte

// RawParts sends one message already in wire form, as the concatenation of
// its parts, so a prefix can go in front of received bytes without a copy.
type RawParts [][]byte

// RawBytes sends one message already in wire form.
type RawBytes []byte

// Codec is the gRPC codec of every call between the core and a plugin, on
// both sides, tunnelled or not. It is the standard proto codec (same name,
// so go-plugin's own services and a plugin built without this package see
// ordinary "application/grpc+proto" calls) plus the three raw types above,
// which skip the generated message types entirely.
var Codec encoding.CodecV2 = passThrough{proto: encoding.GetCodecV2("proto")}

type passThrough struct{ proto encoding.CodecV2 }

func (passThrough) Name() string { return "proto" }

func (c passThrough) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *RawParts:
		out := make(mem.BufferSlice, 0, len(*m))
		for _, p := range *m {
			if len(p) > 0 {
				out = append(out, mem.SliceBuffer(p))
			}
		}
		return out, nil
	case *RawBytes:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	}
	// The standard codec marshals into gRPC's default pool, which hands out
	// a 1 MiB buffer for anything past 32 KiB and zeroes it first;
	// BufferPool's buffers fit and are not cleared.
	if m, ok := v.(proto.Message); ok {
		size := proto.Size(m)
		buf := BufferPool.Get(size)
		out, err := proto.MarshalOptions{}.MarshalAppend((*buf)[:0], m)
		if err != nil {
			BufferPool.Put(buf)
			return nil, err
		}
		*buf = out
		return mem.BufferSlice{mem.NewBuffer(buf, BufferPool)}, nil
	}
	return c.proto.Marshal(v)
}

func (c passThrough) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*RawFrame); ok {
		// gRPC frees data when Unmarshal returns: keep a copy.
		*f = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// marshalParts encodes v for a tunnelled call. The buffers are not freed:
// the writer still reads them after SendMsg returned, and unreturned pool
// buffers are simply collected.
func marshalParts(v any) ([][]byte, int, error) {
	switch m := v.(type) {
	case *RawParts:
		n := 0
		for _, p := range *m {
			n += len(p)
		}
		return *m, n, nil
	case *RawBytes:
		return [][]byte{*m}, len(*m), nil
	}
	if m, ok := v.(proto.Message); ok {
		// One allocation of the exact size: the writer keeps it until sent.
		b, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 0, proto.Size(m)), m)
		if err != nil {
			return nil, 0, err
		}
		return [][]byte{b}, len(b), nil
	}
	bs, err := Codec.Marshal(v)
	if err != nil {
		return nil, 0, err
	}
	parts := make([][]byte, len(bs))
	n := 0
	for i, b := range bs {
		parts[i] = b.ReadOnlyData()
		n += len(parts[i])
	}
	return parts, n, nil
}

// unmarshalPayload decodes a tunnelled message into v. A *RawFrame gets
// the payload itself: received batches are never reused, so no copy is
// needed.
func unmarshalPayload(p []byte, v any) error {
	if f, ok := v.(*RawFrame); ok {
		*f = p
		return nil
	}
	return Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(p)}, v)
}
