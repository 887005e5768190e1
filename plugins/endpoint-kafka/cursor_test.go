package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestEncodeID(t *testing.T) {
	tests := map[string]struct {
		topic     string
		partition int32
		offset    int64
		encode    bool
		want      string
	}{
		// docs/behaviour.md 2.7 / 7.2: ids of offsets 0, 1, 2 of test-topic.
		"offset 0 base64":  {"test-topic", 0, 0, true, "dGVzdC10b3BpY0AwIzA="},
		"offset 1 base64":  {"test-topic", 0, 1, true, "dGVzdC10b3BpY0AwIzE="},
		"offset 2 base64":  {"test-topic", 0, 2, true, "dGVzdC10b3BpY0AwIzI="},
		"plain":            {"test-topic", 3, 42, false, "test-topic@3#42"},
		"nothing yet":      {"test-topic", 0, -1, false, "test-topic@0#-1"},
		"large offset":     {"t", 11, 9007199254740993, false, "t@11#9007199254740993"},
		"dotted topic b64": {"a.b_c-d", 1, 7, true, "YS5iX2MtZEAxIzc="},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := encodeID(tc.topic, tc.partition, tc.offset, tc.encode); got != tc.want {
				t.Fatalf("encodeID = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseCursor(t *testing.T) {
	pos := func(topic string, p int32, o int64) position { return position{topicPartition{topic, p}, o} }
	tests := map[string]struct {
		in     string
		decode bool
		want   []position
		err    string
	}{
		"single plain":       {in: "test-topic@0#2", want: []position{pos("test-topic", 0, 2)}},
		"single base64":      {in: "dGVzdC10b3BpY0AwIzI=", decode: true, want: []position{pos("test-topic", 0, 2)}},
		"base64 no padding":  {in: "dGVzdC10b3BpY0AwIzI", decode: true, want: []position{pos("test-topic", 0, 2)}},
		"several partitions": {in: "my-topic@1#0,2#0", want: []position{pos("my-topic", 1, 0), pos("my-topic", 2, 0)}},
		"several topics": {in: "t1@0#1,1#5;t2@0#3", want: []position{
			pos("t1", 0, 1), pos("t1", 1, 5), pos("t2", 0, 3),
		}},
		"minus one":            {in: "test-topic@0#-1", want: []position{pos("test-topic", 0, -1)}},
		"spaces trimmed":       {in: " t@ 0 # 4 ", want: []position{pos("t", 0, 4)}},
		"empty":                {in: "", err: "empty"},
		"no at":                {in: "test-topic#0", err: "<topic>@"},
		"no hash":              {in: "t@0", err: "<partition>#<offset>"},
		"bad partition":        {in: "t@x#1", err: "partition"},
		"negative partition":   {in: "t@-1#1", err: "partition"},
		"bad offset":           {in: "t@0#y", err: "offset"},
		"offset below -1":      {in: "t@0#-2", err: "offset"},
		"empty topic":          {in: "@0#1", err: "<topic>@"},
		"trailing separator":   {in: "t@0#1;", err: "<topic>@"},
		"plain when b64 asked": {in: "test-topic@0#2", decode: true, err: "not base64"},
		"b64 of garbage":       {in: "aGVsbG8=", decode: true, err: "<topic>@"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseCursor(tc.in, tc.decode)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseCursor(%q) error = %v, want one containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCursor(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseCursor(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatCursorRoundTrip(t *testing.T) {
	ps := []position{{topicPartition{"t1", 0}, 1}, {topicPartition{"t1", 1}, 5}, {topicPartition{"t2", 0}, -1}}
	for _, encode := range []bool{false, true} {
		s := formatCursor(ps, encode)
		if !encode && s != "t1@0#1,1#5;t2@0#-1" {
			t.Fatalf("formatCursor = %q", s)
		}
		got, err := parseCursor(s, encode)
		if err != nil || !reflect.DeepEqual(got, ps) {
			t.Fatalf("round trip (encode=%v) of %q = %v, %v", encode, s, got, err)
		}
	}
}

func TestCursorFailure(t *testing.T) {
	_, err := parseCursor("nope", false)
	f := cursorFailure("nope", false, err)
	if f.Status != 400 || !f.RequestLevel || !strings.Contains(f.Message, cursorForm) {
		t.Fatalf("cursorFailure = %+v", f)
	}
}

func TestClientID(t *testing.T) {
	id := clientID("gio-apim-consumer-")
	if len(id) != len("gio-apim-consumer-")+8 || strings.Trim(id[len("gio-apim-consumer-"):], "0123456789abcdef") != "" {
		t.Fatalf("clientID = %q, want the prefix and 8 hex characters", id)
	}
	if u := newUUID(); len(u) != 36 || u[14] != '4' {
		t.Fatalf("newUUID = %q, want a version 4 UUID", u)
	}
}
