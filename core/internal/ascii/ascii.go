// Package ascii holds the byte-level text helpers HTTP needs: header names,
// methods and origins compare without regard to ASCII case, never with
// Unicode folding (which would, for example, fold the Kelvin sign into "k").
package ascii

import "strings"

// EqualFold reports whether a and b are equal ignoring ASCII case.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HasToken reports whether any of a header's comma-separated values holds
// token, ignoring ASCII case (Connection: keep-alive, Upgrade).
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
