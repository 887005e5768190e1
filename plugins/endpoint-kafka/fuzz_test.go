package main

import "testing"

// The parsers take client and operator input: they must never panic, and
// what they accept must round-trip.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"t1@0#1,1#5;t2@0#3", "dGVzdC10b3BpY0AwIzI=", "t@0#-1", "@#,;", "a@b#c", ""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, decode bool) {
		ps, err := parseCursor(s, decode)
		if err != nil {
			return
		}
		again, err := parseCursor(formatCursor(ps, false), false)
		if err != nil || len(again) != len(ps) {
			t.Fatalf("%q parsed to %v, which does not round-trip: %v %v", s, ps, again, err)
		}
	})
}

func FuzzParseJAAS(f *testing.F) {
	for _, s := range []string{
		`org.apache.kafka.common.security.plain.PlainLoginModule required username='$ConnectionString' password='Endpoint=sb://x/;K=v';`,
		`M required a="x\"y" /* c */ b=c // d`, `M`, `"`, `M required a=`, `/*`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := parseJAAS(s); err == nil && (e.Module == "" || e.Flag == "") {
			t.Fatalf("%q parsed without module or flag: %+v", s, e)
		}
	})
}
