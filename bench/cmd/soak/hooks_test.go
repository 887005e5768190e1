package main

import "testing"

// TestTally checks the webhook check: a record delivered or dead-lettered is
// covered, one neither is missing, a second delivery is a duplicate, and a
// delivery of no record is counted apart.
func TestTally(t *testing.T) {
	inTopic := map[uint64]uint32{1: 1, 2: 1, 3: 2, 4: 1}
	seen := map[uint64]uint32{1: 1, 2: 2, 3: 1, 9: 1}
	rep := tally(inTopic, seen, nil, nil)
	if rep.missing != 2 || rep.duplicates != 1 || rep.unknown != 1 || rep.ok() {
		t.Errorf("without dlq: %+v", rep)
	}
	dead := map[uint64]uint32{3: 1, 4: 1}
	rep = tally(inTopic, seen, dead, func(h uint64) bool { return h == 4 })
	if rep.missing != 0 || rep.duplicates != 1 || rep.deadLettered != 2 || rep.poison != 1 || rep.unknown != 1 {
		t.Errorf("with dlq: %+v", rep)
	}
	rep = tally(inTopic, map[uint64]uint32{1: 1, 2: 1, 3: 2, 4: 1}, nil, nil)
	if !rep.ok() || rep.duplicates != 0 {
		t.Errorf("all delivered once: %+v", rep)
	}
}
