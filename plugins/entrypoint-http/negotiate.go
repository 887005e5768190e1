package main

import (
	"sort"
	"strconv"
	"strings"
)

// negotiate picks the media type of an HTTP GET response from the request's
// Accept values (docs/behaviour.md 5.2): the supported type (application/json,
// application/xml, text/plain) with the highest quality, ties going to the
// one listed first; with no supported type, no Accept (or only empty values)
// gives text/plain and a leading */* gives application/json. ok is false when
// nothing acceptable remains, which the caller answers with 400.
//
// Media ranges with q=0 are skipped: RFC 9110 says they are "not
// acceptable", where the reference would still pick them.
func negotiate(accept []string) (mediaType string, ok bool) {
	ranges, any := parseAccept(accept)
	if !any {
		return mediaText, true
	}
	for _, r := range ranges {
		switch r.mediaType {
		case mediaJSON, mediaXML, mediaText:
			return r.mediaType, true
		}
	}
	if len(ranges) > 0 && ranges[0].mediaType == "*/*" {
		return mediaJSON, true
	}
	return "", false
}

type mediaRange struct {
	mediaType string
	q         float64
}

// parseAccept splits Accept values into media ranges, lower-cased and without
// parameters, sorted by quality (stable, so order breaks ties). any reports
// whether the values named any media type at all, acceptable or not.
func parseAccept(values []string) (ranges []mediaRange, any bool) {
	var out []mediaRange
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			fields := strings.Split(part, ";")
			mt := strings.ToLower(strings.TrimSpace(fields[0]))
			if mt == "" {
				continue
			}
			any = true
			q := 1.0
			for _, p := range fields[1:] {
				k, val, found := strings.Cut(strings.TrimSpace(p), "=")
				if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
					continue
				}
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
			if q == 0 {
				continue
			}
			out = append(out, mediaRange{mediaType: mt, q: q})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].q > out[j].q })
	return out, any
}

// javaList renders values as Java's List.toString does, for the reference's
// "Unsupported accept header: [a, b]" message.
func javaList(values []string) string {
	return "[" + strings.Join(values, ", ") + "]"
}
