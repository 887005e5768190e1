package tunnel

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// FuzzDecodeBatch checks the hand-written TunnelBatch decoder against the
// generated code: a batch comes from the other process, which may be a
// third-party plugin, so no input may panic it, and whatever the generated
// code reads, decodeBatch must read the same way (it replaces proto.Unmarshal
// on the hot path, and a silent difference would corrupt calls).
func FuzzDecodeBatch(f *testing.F) {
	for _, fr := range []frame{
		{call: 1, method: "/sluice.v1.Endpoint/Publish", msg: [][]byte{[]byte("abc")}, msgLen: 3, hasMsg: true},
		{call: 2, msg: [][]byte{}, hasMsg: true},
		{call: 3, closeSend: true, window: 64, cancel: true},
		{call: 1 << 40, end: &endStatus{code: 14, message: "unavailable"}},
		{call: 4, end: &endStatus{}},
	} {
		var b []byte
		for _, p := range fr.encode().parts {
			b = append(b, p...)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x02, 0x2a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []*frame
		err := decodeBatch(b, func(fr *frame) { got = append(got, fr) })
		var gen pluginv1.TunnelBatch
		if proto.Unmarshal(b, &gen) != nil {
			return
		}
		if err != nil {
			t.Fatalf("the generated code reads % x, decodeBatch fails: %v", b, err)
		}
		if len(got) != len(gen.GetFrames()) {
			t.Fatalf("%d frames, the generated code reads %d", len(got), len(gen.GetFrames()))
		}
		for i, g := range gen.GetFrames() {
			d := got[i]
			if d.call != g.GetCall() || d.method != g.GetMethod() || d.closeSend != g.GetCloseSend() ||
				d.window != g.GetWindow() || d.cancel != g.GetCancel() {
				t.Fatalf("frame %d: %+v, the generated code reads %v", i, d, g)
			}
			if d.hasMsg != (g.Message != nil) {
				t.Fatalf("frame %d: message present %v, generated %v", i, d.hasMsg, g.Message != nil)
			}
			if d.hasMsg && !bytes.Equal(bytes.Join(d.msg, nil), g.Message) {
				t.Fatalf("frame %d: message %q, generated %q", i, d.msg, g.Message)
			}
			if (d.end != nil) != (g.End != nil) {
				t.Fatalf("frame %d: end %v, generated %v", i, d.end, g.End)
			}
			if d.end != nil && (d.end.code != g.End.GetCode() || d.end.message != g.End.GetMessage()) {
				t.Fatalf("frame %d: end %+v, generated %v", i, d.end, g.End)
			}
		}
	})
}
