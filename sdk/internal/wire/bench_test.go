package wire

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/sdk/gateway"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// benchBatch is a typical subscribe batch: 256 Kafka records of 256 bytes
// with one header and the usual metadata.
func benchBatch() []*gateway.Message {
	msgs := make([]*gateway.Message, 256)
	payload := bytes.Repeat([]byte("x"), 256)
	for i := range msgs {
		msgs[i] = &gateway.Message{
			ID:      fmt.Sprintf("demo@0#%d", i),
			Content: payload,
			Headers: gateway.Headers{"X-Trace": {"abc"}},
			Metadata: map[string]any{
				"topic":           "demo",
				"partition":       int32(0),
				"offset":          int64(1000 + i),
				"sourceTimestamp": int64(1715000000000 + i),
				"key":             "k",
			},
			Tag: uint64(i + 1),
		}
	}
	return msgs
}

func BenchmarkMessagesToWire256x256(b *testing.B) {
	msgs := benchBatch()
	b.ReportAllocs()
	b.SetBytes(256 * 256)
	for b.Loop() {
		if _, err := MessagesToWire(msgs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessagesFromWire256x256(b *testing.B) {
	w, err := MessagesToWire(benchBatch())
	if err != nil {
		b.Fatal(err)
	}
	var ws []*pluginv1.Message = w
	b.ReportAllocs()
	b.SetBytes(256 * 256)
	for b.Loop() {
		_ = MessagesFromWire(ws)
	}
}

func BenchmarkAppendMessages256x256(b *testing.B) {
	msgs := benchBatch()
	buf := make([]byte, 0, MessagesSize(msgs))
	b.ReportAllocs()
	b.SetBytes(256 * 256)
	for b.Loop() {
		if _, err := AppendMessages(buf[:0], 1, msgs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMessages256x256(b *testing.B) {
	enc, err := AppendMessages(nil, 1, benchBatch())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(256 * 256)
	for b.Loop() {
		if _, err := DecodeMessages(enc, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGeneratedRoundTrip256x256 is what the direct pair replaces: the
// conversion to the generated types, proto.Marshal, proto.Unmarshal and the
// conversion back.
func BenchmarkGeneratedRoundTrip256x256(b *testing.B) {
	msgs := benchBatch()
	b.ReportAllocs()
	b.SetBytes(256 * 256)
	for b.Loop() {
		ws, err := MessagesToWire(msgs)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := proto.Marshal(&pluginv1.Connect_Deliver{Messages: ws})
		if err != nil {
			b.Fatal(err)
		}
		var back pluginv1.Connect_Deliver
		if err := proto.Unmarshal(enc, &back); err != nil {
			b.Fatal(err)
		}
		_ = MessagesFromWire(back.GetMessages())
	}
}
