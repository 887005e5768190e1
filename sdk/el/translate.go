package el

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Token kinds of the SpEL scanner. The scanner only needs to know enough to
// rewrite SpEL spellings into expr ones; expr's own parser does the rest and
// reports syntax errors, which are mapped back to template columns.
const (
	tkSpace = iota
	tkString
	tkWord  // bare identifier or keyword
	tkHash  // #name variable reference
	tkNum   // numeric literal
	tkPunct // operator or punctuation
)

type token struct {
	kind  int
	src   string // text as written
	start int    // byte offset in the expression body
	out   string // text emitted for expr
}

// keywords maps SpEL's word operators and literals, which SpEL matches without
// regard to case, to their expr spelling.
var keywords = map[string]string{
	"null":    "nil",
	"true":    "true",
	"false":   "false",
	"and":     "and",
	"or":      "or",
	"not":     "not",
	"matches": "matches",
	"eq":      "==",
	"ne":      "!=",
	"lt":      "<",
	"gt":      ">",
	"le":      "<=",
	"ge":      ">=",
	"div":     "/",
	"mod":     "%",
}

// translated is an expr program text together with, for each of its runes,
// the byte offset in the SpEL body it came from, so expr's error locations can
// be reported against what the operator wrote.
type translated struct {
	code string
	pos  []int
}

// bodyError is a translation failure at a byte offset within the body.
type bodyError struct {
	off int
	msg string
}

func (e *bodyError) Error() string { return e.msg }

// translate rewrites a SpEL expression body into expr syntax.
func translate(body string) (translated, error) {
	toks, err := tokenize(body)
	if err != nil {
		return translated{}, err
	}
	listBraces, dropColon := classifyBraces(toks)

	var b strings.Builder
	b.Grow(len(body) + 8)
	pos := make([]int, 0, len(body)+8)
	emit := func(t token, out string) {
		b.WriteString(out)
		if out == t.src {
			for k := range out {
				pos = append(pos, t.start+k)
			}
			return
		}
		for range out {
			pos = append(pos, t.start)
		}
	}

	prev := -1 // index of the previous non-space token
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		out := t.out
		switch t.kind {
		case tkWord:
			afterDot := prev >= 0 && (toks[prev].src == "." || toks[prev].src == "?.")
			if kw, ok := keywords[strings.ToLower(t.src)]; ok && !afterDot {
				out = kw
				// A word operator glued to its operands would read as one word.
				if !isIdentRune(rune(kw[0])) {
					if i > 0 && toks[i-1].kind != tkSpace {
						out = " " + out
					}
					if i+1 < len(toks) && toks[i+1].kind != tkSpace {
						out += " "
					}
				}
			}
		case tkPunct:
			switch {
			case t.src == "{" && listBraces[i]:
				out = "["
			case t.src == "}" && listBraces[i]:
				out = "]"
			case dropColon[i]:
				// SpEL's empty map {:} is expr's {}.
				out = ""
			}
		}
		emit(t, out)
		if t.kind != tkSpace {
			prev = i
		}
	}
	return translated{code: b.String(), pos: pos}, nil
}

func isIdentStart(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r)
}

func isIdentRune(r rune) bool {
	return isIdentStart(r) || unicode.IsDigit(r)
}

func tokenize(body string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(body) {
		r, size := utf8.DecodeRuneInString(body[i:])
		start := i
		switch {
		case unicode.IsSpace(r):
			for i < len(body) {
				r, size := utf8.DecodeRuneInString(body[i:])
				if !unicode.IsSpace(r) {
					break
				}
				i += size
			}
			toks = append(toks, token{kind: tkSpace, src: body[start:i], start: start, out: body[start:i]})
		case r == '\'' || r == '"':
			val, n, ok := scanString(body[i:])
			if !ok {
				return nil, &bodyError{off: start, msg: "unterminated string literal"}
			}
			i += n
			toks = append(toks, token{kind: tkString, src: body[start:i], start: start, out: strconv.Quote(val)})
		case r == '#':
			i += size
			j := scanIdent(body, i)
			if j == i {
				// A bare # is expr's predicate element (filter(list, # > 1)).
				toks = append(toks, token{kind: tkPunct, src: "#", start: start, out: "#"})
				continue
			}
			i = j
			toks = append(toks, token{kind: tkHash, src: body[start:i], start: start, out: body[start+1 : i]})
		case isIdentStart(r):
			i = scanIdent(body, i)
			toks = append(toks, token{kind: tkWord, src: body[start:i], start: start, out: body[start:i]})
		case r >= '0' && r <= '9':
			var out string
			i, out = scanNumber(body, i)
			toks = append(toks, token{kind: tkNum, src: body[start:i], start: start, out: out})
		case r == '?' && i+1 < len(body) && body[i+1] == ':':
			// SpEL's Elvis operator is expr's nil coalescing.
			i += 2
			toks = append(toks, token{kind: tkPunct, src: "?:", start: start, out: "??"})
		case r == '?' && i+1 < len(body) && body[i+1] == '.':
			i += 2
			toks = append(toks, token{kind: tkPunct, src: "?.", start: start, out: "?."})
		default:
			i += size
			toks = append(toks, token{kind: tkPunct, src: body[start:i], start: start, out: body[start:i]})
		}
	}
	return toks, nil
}

func scanIdent(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isIdentRune(r) {
			break
		}
		i += size
	}
	return i
}

// scanString reads a SpEL string literal at the start of s. SpEL escapes a
// quote by doubling it and gives backslashes no meaning, which matters for
// regular expressions such as '\d+'.
func scanString(s string) (val string, n int, ok bool) {
	q := s[0]
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		if c == q {
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i += 2
				continue
			}
			return b.String(), i + 1, true
		}
		b.WriteByte(c)
		i++
	}
	return "", 0, false
}

// scanNumber reads a numeric literal and drops Java's type suffixes (1L, 2.5f,
// 3d), which expr does not know; a float suffix on an integer keeps it a float.
func scanNumber(s string, i int) (int, string) {
	start := i
	if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') {
		i += 2
		for i < len(s) && isHex(s[i]) {
			i++
		}
		out := s[start:i]
		if i < len(s) && (s[i] == 'l' || s[i] == 'L') {
			i++
		}
		return i, out
	}
	float := false
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		float = true
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			float = true
			i = j
			for i < len(s) && isDigit(s[i]) {
				i++
			}
		}
	}
	out := s[start:i]
	if i < len(s) {
		switch s[i] {
		case 'l', 'L':
			i++
		case 'f', 'F', 'd', 'D':
			if i+1 >= len(s) || !isIdentRune(rune(s[i+1])) {
				i++
				if !float {
					out += ".0"
				}
			}
		}
	}
	return i, out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// classifyBraces decides, for each "{" and "}" token, whether the pair is a
// SpEL inline list ({1,2}), which expr writes [1,2], or a map ({a:1}), which
// both write the same way. A pair is a map when it holds a top-level ":" that
// is not the else-branch of a ternary.
func classifyBraces(toks []token) (lists, dropColon map[int]bool) {
	match := make(map[int]int)
	var stack []int
	for i, t := range toks {
		if t.kind != tkPunct {
			continue
		}
		switch t.src {
		case "{", "(", "[":
			stack = append(stack, i)
		case "}", ")", "]":
			if len(stack) > 0 {
				open := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				match[open] = i
			}
		}
	}
	for open, end := range match {
		if toks[open].src != "{" || toks[end].src != "}" {
			continue
		}
		isMap := false
		ternaries := 0
		var inner []int
		for k := open + 1; k < end; k++ {
			t := toks[k]
			if t.kind == tkSpace {
				continue
			}
			inner = append(inner, k)
			if t.kind != tkPunct {
				continue
			}
			if m, ok := match[k]; ok {
				k = m
				continue
			}
			switch t.src {
			case "?":
				ternaries++
			case ":":
				if ternaries > 0 {
					ternaries--
				} else {
					isMap = true
				}
			}
		}
		if len(inner) == 1 && toks[inner[0]].src == ":" {
			if dropColon == nil {
				dropColon = map[int]bool{}
			}
			dropColon[inner[0]] = true
			continue
		}
		if !isMap {
			if lists == nil {
				lists = map[int]bool{}
			}
			lists[open] = true
			lists[end] = true
		}
	}
	return lists, dropColon
}
