package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

// sseEvent is one event as an EventSource dispatches it.
type sseEvent struct {
	id, event, data string
	hasID           bool
}

// parseSSE interprets a stream as the HTML specification's event stream
// parser does (lines end with CRLF, LF or CR; a blank line dispatches; a
// line starting with ':' is a comment; one space after the colon is dropped),
// keeping every dispatched event even when its data is empty.
func parseSSE(b []byte) (events []sseEvent, rest string) {
	s := string(b)
	var cur sseEvent
	var data []string
	fields := false
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return events, s
		}
		line := s[:i]
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
		if line == "" {
			if fields {
				cur.data = strings.Join(data, "\n")
				events = append(events, cur)
			}
			cur, data, fields = sseEvent{}, nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if ok {
			value = strings.TrimPrefix(value, " ")
		}
		fields = true
		switch name {
		case "id":
			cur.id, cur.hasID = value, true
		case "event":
			cur.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// FuzzAppendMessage checks the SSE encoder against a spec parser: whatever
// a Kafka record carries (content, header names and values, metadata, ids
// from cursors), it comes out as exactly one event, with the content intact
// up to line-ending normalisation, and nothing in it can end the event early
// or add a field.
func FuzzAppendMessage(f *testing.F) {
	f.Add("dGVzdEAwIzA=", []byte("hello"), "X-H", "v", "key", "k", true, true, false)
	f.Add("", []byte("a\r\nb\rc\nd\n"), "a\nid: x", "b\r\nevent: y", "k\n\n", "v\rdata: z", true, true, false)
	f.Add("id\nevent: evil", []byte(""), "", "", "", "", false, false, true)
	f.Add("x", []byte("\n\n\n"), ":", ":", ":", ":", true, true, false)
	f.Fuzz(func(t *testing.T, id string, content []byte, hname, hvalue, mkey, mvalue string, headers, metadata, isError bool) {
		m := &gateway.Message{ID: id, Content: content,
			Headers:  gateway.Headers{hname: {hvalue}},
			Metadata: map[string]any{mkey: mvalue, "offset": float64(len(content))},
		}
		want := string(content)
		wantEvent := "message"
		if isError {
			m.Error = &gateway.Failure{Status: 500, Message: mvalue}
			want, wantEvent = errorText(m), "error"
		}
		out := eventFormat{headersAsComment: headers, metadataAsComment: metadata}.appendMessage(nil, m)
		events, rest := parseSSE(out)
		if len(events) != 1 || rest != "" {
			t.Fatalf("want one event, got %d (rest %q) from %q", len(events), rest, out)
		}
		ev := events[0]
		want = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(want)
		if ev.data != want || ev.event != wantEvent {
			t.Fatalf("event %q data %q, want %q %q; stream %q", ev.event, ev.data, wantEvent, want, out)
		}
		wantID := strings.NewReplacer("\r", "", "\n", "").Replace(id)
		if ev.hasID != (id != "") || ev.id != wantID {
			t.Fatalf("id %q (present %v), want %q; stream %q", ev.id, ev.hasID, wantID, out)
		}
		if !bytes.HasSuffix(out, []byte("\n\n")) {
			t.Fatalf("event does not end with a blank line: %q", out)
		}
	})
}

// FuzzAppendFailure checks that a failure's text, which can quote a broker
// or client error, cannot break out of its error event.
func FuzzAppendFailure(f *testing.F) {
	f.Add("Connection closed")
	f.Add("a\r\n\r\nid: 1\ndata: x")
	f.Add("")
	f.Fuzz(func(t *testing.T, msg string) {
		events, rest := parseSSE(appendFailure(nil, &gateway.Failure{Message: msg}))
		if len(events) != 1 || rest != "" || events[0].event != "error" || events[0].hasID {
			t.Fatalf("failure %q: events %+v rest %q", msg, events, rest)
		}
	})
}
