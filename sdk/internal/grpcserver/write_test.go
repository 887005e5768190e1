package grpcserver

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// The direct Write encoding is byte for byte what the generated code makes.
func TestEncodeWriteMatchesGeneratedCode(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	cases := map[string]struct {
		chunks [][]byte
		text   bool
		ack    uint64
	}{
		"one chunk":            {chunks: [][]byte{[]byte("data: a\n\n")}},
		"several with ack":     {chunks: [][]byte{[]byte("a"), []byte("bc"), big}, ack: 300},
		"text frame":           {chunks: [][]byte{[]byte("{}")}, text: true, ack: 1},
		"empty chunk and none": {chunks: [][]byte{{}}},
		"no chunks":            {},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pluginv1.Connect_Response{Kind: &pluginv1.Connect_Response_Write{
				Write: &pluginv1.Connect_Write{Chunks: tc.chunks, Text: tc.text, AckThrough: tc.ack}}})
			if err != nil {
				t.Fatal(err)
			}
			got := encodeWrite(tc.chunks, tc.text, tc.ack)
			if !bytes.Equal(*got, want) {
				t.Fatalf("encodeWrite:\n got %x\nwant %x", (*got)[:min(len(*got), 64)], want[:min(len(want), 64)])
			}
		})
	}
}
