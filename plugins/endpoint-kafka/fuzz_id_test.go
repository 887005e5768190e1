package main

import (
	"regexp"
	"testing"
)

// legalTopic is Kafka's rule for topic names.
var legalTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// FuzzMessageID checks that every id the endpoint hands out is a cursor that
// resumes exactly where it was given: a client's Last-Event-ID or ?cursor=
// is that id, and a position read back wrongly loses or repeats records.
func FuzzMessageID(f *testing.F) {
	f.Add("orders", int32(0), int64(0), true)
	f.Add("a.b_c-d", int32(2147483647), int64(-1), false)
	f.Add("t", int32(5), int64(9223372036854775807), true)
	f.Fuzz(func(t *testing.T, topic string, partition int32, offset int64, encode bool) {
		if !legalTopic.MatchString(topic) || partition < 0 || offset < -1 {
			return
		}
		id := encodeID(topic, partition, offset, encode)
		ps, err := parseCursor(id, encode)
		if err != nil {
			t.Fatalf("id %q of %s@%d#%d does not parse: %v", id, topic, partition, offset, err)
		}
		want := position{topicPartition{topic, partition}, offset}
		if len(ps) != 1 || ps[0] != want {
			t.Fatalf("id %q parsed to %v, want %v", id, ps, want)
		}
		if again := formatCursor(ps, encode); again != id {
			t.Fatalf("id %q formats back as %q", id, again)
		}
	})
}
