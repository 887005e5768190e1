package el

import (
	"strings"
	"unicode/utf8"
)

// segment is one piece of a template: literal text, or an expression written
// as {#...}. For an expression, body is the SpEL text after the "{#" and
// start is the byte offset of the "{" in the template source.
type segment struct {
	literal bool
	text    string // literal text, or the whole "{#...}" for an expression
	body    string
	start   int
}

// split cuts a template into literal text and {#...} segments. The end of a
// segment is the "}" that balances its "{", ignoring braces inside string
// literals, so inline maps and lists and quoted braces do not end it early.
func split(src string) ([]segment, error) {
	var segs []segment
	lit := 0 // start of pending literal text
	i := 0
	for {
		j := strings.Index(src[i:], "{#")
		if j < 0 {
			break
		}
		open := i + j
		end, err := matchBrace(src, open)
		if err != nil {
			return nil, err
		}
		if open > lit {
			segs = append(segs, segment{literal: true, text: src[lit:open], start: lit})
		}
		segs = append(segs, segment{text: src[open : end+1], body: src[open+2 : end], start: open})
		i = end + 1
		lit = i
	}
	if lit < len(src) {
		segs = append(segs, segment{literal: true, text: src[lit:], start: lit})
	}
	return segs, nil
}

// matchBrace returns the index of the "}" closing the "{" at open. SpEL string
// literals use doubled quotes as escapes, which a plain toggle on each quote
// handles without special casing.
func matchBrace(src string, open int) (int, error) {
	depth := 0
	for i := open; i < len(src); i++ {
		switch c := src[i]; c {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i, nil
			}
		case '\'', '"':
			k := strings.IndexByte(src[i+1:], c)
			if k < 0 {
				return 0, newError(src, src[open:], i, "unterminated string literal")
			}
			i += k + 1
		}
	}
	return 0, newError(src, src[open:], open, "unterminated expression: missing closing '}'")
}

// column converts a byte offset in src to the 1-based rune column that error
// messages report, so multi-byte text before an error does not skew it.
func column(src string, off int) int {
	if off > len(src) {
		off = len(src)
	}
	if off < 0 {
		off = 0
	}
	return utf8.RuneCountInString(src[:off]) + 1
}
