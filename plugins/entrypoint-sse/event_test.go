package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/javafmt"
)

func TestAppendMessage(t *testing.T) {
	tests := map[string]struct {
		format eventFormat
		msg    *gateway.Message
		want   string
	}{
		"kafka chunk without id (vector 6)": {
			msg:  &gateway.Message{Content: []byte("message1")},
			want: "event: message\ndata: message1\n\n",
		},
		"id line when the message has an id": {
			msg:  &gateway.Message{ID: "dGVzdC10b3BpY0AwIzA=", Content: []byte("message1")},
			want: "id: dGVzdC10b3BpY0AwIzA=\nevent: message\ndata: message1\n\n",
		},
		"empty content still has a data line": {
			msg:  &gateway.Message{},
			want: "event: message\ndata: \n\n",
		},
		"multi-line content is split on LF, CRLF and CR": {
			msg:  &gateway.Message{Content: []byte("a\nb\r\nc\rd")},
			want: "event: message\ndata: a\ndata: b\ndata: c\ndata: d\n\n",
		},
		"trailing newline keeps an empty last line": {
			msg:  &gateway.Message{Content: []byte("{\n}\n")},
			want: "event: message\ndata: {\ndata: }\ndata: \n\n",
		},
		"id with line breaks cannot break framing": {
			msg:  &gateway.Message{ID: "a\nb\r", Content: []byte("x")},
			want: "id: ab\nevent: message\ndata: x\n\n",
		},
		"headers as comments": {
			format: eventFormat{headersAsComment: true},
			msg: &gateway.Message{Content: []byte("x"), Headers: gateway.Headers{
				"X-B": {"2"}, "X-A": {"v1", "v2"},
			}},
			want: "event: message\ndata: x\n:X-A: v1,v2\n:X-B: 2\n\n",
		},
		"headers ignored when disabled": {
			msg:  &gateway.Message{Content: []byte("x"), Headers: gateway.Headers{"X-A": {"1"}}},
			want: "event: message\ndata: x\n\n",
		},
		"metadata as comments, sourceTimestamp first, numbers as integers": {
			format: eventFormat{metadataAsComment: true},
			msg: &gateway.Message{Content: []byte("message1"), Metadata: map[string]any{
				"topic": "test-topic", "partition": float64(0), "offset": float64(12),
				"sourceTimestamp": float64(1700000000123), "key": "key",
			}},
			want: "event: message\ndata: message1\n:sourceTimestamp: 1700000000123\n:key: key\n:offset: 12\n:partition: 0\n:topic: test-topic\n\n",
		},
		"headers then metadata": {
			format: eventFormat{headersAsComment: true, metadataAsComment: true},
			msg: &gateway.Message{ID: "i", Content: []byte("m"), Headers: gateway.Headers{"h": {"v"}},
				Metadata: map[string]any{"tombstone": true}},
			want: "id: i\nevent: message\ndata: m\n:h: v\n:tombstone: true\n\n",
		},
		"comment values with line breaks become several comments": {
			format: eventFormat{metadataAsComment: true},
			msg:    &gateway.Message{Content: []byte("m"), Metadata: map[string]any{"key": "a\nb"}},
			want:   "event: message\ndata: m\n:key: a\n:key: b\n\n",
		},
		"error message": {
			msg:  &gateway.Message{Error: &gateway.Failure{Status: 500, Message: "Connection closed"}},
			want: "event: error\ndata: Connection closed\n\n",
		},
		"error message without text uses content": {
			format: eventFormat{headersAsComment: true},
			msg:    &gateway.Message{Content: []byte("boom\nagain"), Error: &gateway.Failure{}, Headers: gateway.Headers{"h": {"v"}}},
			want:   "event: error\ndata: boom\ndata: again\n\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(tc.format.appendMessage(nil, tc.msg))
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAppendMessageReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 256)
	f := eventFormat{}
	buf = f.appendMessage(buf, &gateway.Message{Content: []byte("message1")})
	buf = f.appendMessage(buf, &gateway.Message{Content: []byte("message2")})
	want := "event: message\ndata: message1\n\nevent: message\ndata: message2\n\n"
	if string(buf) != want {
		t.Fatalf("got %q, want %q", buf, want)
	}
	allocs := testing.AllocsPerRun(100, func() {
		buf = f.appendMessage(buf[:0], &gateway.Message{ID: "x", Content: []byte("a\nb")})
	})
	if allocs != 0 {
		t.Fatalf("appendMessage allocated %v times per event with a warm buffer", allocs)
	}
}

func TestAppendRetry(t *testing.T) {
	for i := 0; i < 200; i++ {
		got := string(appendRetry(nil))
		if !strings.HasPrefix(got, "retry: ") || !strings.HasSuffix(got, "\n\n") {
			t.Fatalf("bad retry frame %q", got)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(got, "retry: "), "\n\n"))
		if err != nil || n < retryMin || n >= retryMax {
			t.Fatalf("retry %q out of [%d, %d)", got, retryMin, retryMax)
		}
	}
}

func TestAppendFailure(t *testing.T) {
	tests := map[string]struct {
		f    *gateway.Failure
		want string
	}{
		"message":    {&gateway.Failure{Status: 500, Message: "Invalid configuration"}, "event: error\ndata: Invalid configuration\n\n"},
		"multi-line": {&gateway.Failure{Message: "a\nb"}, "event: error\ndata: a\ndata: b\n\n"},
		"no text":    {&gateway.Failure{}, "event: error\ndata: Stream failure\n\n"},
		"nil":        {nil, "event: error\ndata: Stream failure\n\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(appendFailure(nil, tc.f)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := map[string]struct {
		v    any
		want string
	}{
		"string":         {"a", "a"},
		"whole float":    {float64(1700000000123), "1700000000123"},
		"negative whole": {float64(-1), "-1"},
		"fraction":       {1.5, "1.5"},
		"int":            {42, "42"},
		"uint8":          {uint8(7), "7"},
		"bool":           {false, "false"},
		"nil":            {nil, "null"},
		"list":           {[]any{"a", float64(1)}, "[a, 1]"},
		"map":            {map[string]any{"b": "2", "a": float64(1)}, "{a=1, b=2}"},
		"strings":        {[]string{"x", "y"}, "[x, y]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := javafmt.String(tc.v); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
