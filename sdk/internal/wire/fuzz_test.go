package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// FuzzDecodePublishRequest checks the hand-written Publish.Request decoder
// (the endpoint's hot path) against the generated code: no input may panic
// it, and what the generated code reads it must read the same way.
func FuzzDecodePublishRequest(f *testing.F) {
	for _, msgs := range directCases() {
		w, err := MessagesToWire(msgs)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(&pluginv1.Publish_Request{BatchId: 7, InstanceId: "api/ep", Messages: w,
			Context: &pluginv1.Context{}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, req, same, err := DecodePublishRequest(b)
		var gen pluginv1.Publish_Request
		if proto.Unmarshal(b, &gen) != nil {
			return
		}
		if err != nil {
			t.Fatalf("the generated code reads % x, DecodePublishRequest fails: %v", b, err)
		}
		if id != gen.GetBatchId() || same != gen.GetSameContext() || req.InstanceID != gen.GetInstanceId() || len(req.Messages) != len(gen.GetMessages()) {
			t.Fatalf("batch %d %q %d messages, the generated code reads %d %q %d", id, req.InstanceID,
				len(req.Messages), gen.GetBatchId(), gen.GetInstanceId(), len(gen.GetMessages()))
		}
		for i, m := range gen.GetMessages() {
			if string(req.Messages[i].Content) != string(m.GetContent()) || req.Messages[i].ID != m.GetId() {
				t.Fatalf("message %d: %+v, the generated code reads %v", i, req.Messages[i], m)
			}
		}
	})
}
