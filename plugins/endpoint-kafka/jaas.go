package main

import (
	"fmt"
	"strings"
)

// jaasEntry is one parsed login module entry of a sasl.jaas.config string:
//
//	<LoginModuleClass> <flag> [<key>=<value> ...];
//
// Kafka accepts exactly one entry per client, so parseJAAS returns one.
type jaasEntry struct {
	// Module is the login module class name.
	Module string
	// Flag is the control flag in lower case: required, requisite,
	// sufficient or optional.
	Flag string
	// Options are the key=value options; a repeated key keeps the last value,
	// as Java's HashMap does.
	Options map[string]string
}

// option returns the named option, or "".
func (e *jaasEntry) option(name string) string {
	if e == nil {
		return ""
	}
	return e.Options[name]
}

// jaasError is a JAAS syntax error with its byte position, so an operator can
// find the mistake in a long string.
type jaasError struct {
	pos int
	msg string
}

// Error names the offset and the problem.
func (e *jaasError) Error() string {
	return fmt.Sprintf("invalid JAAS configuration at offset %d: %s", e.pos, e.msg)
}

// jaasScanner tokenizes like Kafka's JaasConfig, which uses Java's
// StreamTokenizer: words, quoted strings (single or double quotes, with
// backslash escapes), '=' and ';', with // and /* */ comments. It is more
// lenient than Java about unquoted values: anything up to whitespace or ';'
// is accepted, so username=$ConnectionString works unquoted too.
type jaasScanner struct {
	src string
	pos int
}

type jaasTokenKind int

const (
	jaasEOF jaasTokenKind = iota
	jaasWord
	jaasQuoted
	jaasEquals
	jaasSemicolon
)

type jaasToken struct {
	kind jaasTokenKind
	text string
	pos  int
}

func isJAASSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// skip moves past whitespace and comments.
func (s *jaasScanner) skip() error {
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case isJAASSpace(c):
			s.pos++
		case strings.HasPrefix(s.src[s.pos:], "//"):
			end := strings.IndexAny(s.src[s.pos:], "\n\r")
			if end < 0 {
				s.pos = len(s.src)
			} else {
				s.pos += end
			}
		case strings.HasPrefix(s.src[s.pos:], "/*"):
			end := strings.Index(s.src[s.pos+2:], "*/")
			if end < 0 {
				return &jaasError{s.pos, "unterminated comment"}
			}
			s.pos += end + 4
		default:
			return nil
		}
	}
	return nil
}

// next returns the next token. valueMode makes a bare word extend to the
// next whitespace or ';' (values may contain '=' and '/'), while keys and
// class names stop at '='.
func (s *jaasScanner) next(valueMode bool) (jaasToken, error) {
	if err := s.skip(); err != nil {
		return jaasToken{}, err
	}
	start := s.pos
	if s.pos >= len(s.src) {
		return jaasToken{kind: jaasEOF, pos: start}, nil
	}
	switch c := s.src[s.pos]; c {
	case '=':
		s.pos++
		return jaasToken{kind: jaasEquals, text: "=", pos: start}, nil
	case ';':
		s.pos++
		return jaasToken{kind: jaasSemicolon, text: ";", pos: start}, nil
	case '"', '\'':
		text, err := s.quoted(c)
		return jaasToken{kind: jaasQuoted, text: text, pos: start}, err
	}
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if isJAASSpace(c) || c == ';' || c == '"' || c == '\'' || (!valueMode && c == '=') {
			break
		}
		s.pos++
	}
	return jaasToken{kind: jaasWord, text: s.src[start:s.pos], pos: start}, nil
}

// quoted reads a quoted string starting at the opening quote q, applying
// StreamTokenizer's escapes (\n, \t, \\, \", \', octal...).
func (s *jaasScanner) quoted(q byte) (string, error) {
	start := s.pos
	s.pos++
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == q:
			s.pos++
			return b.String(), nil
		case c == '\\' && s.pos+1 < len(s.src):
			s.pos++
			e := s.src[s.pos]
			s.pos++
			switch e {
			case 'a':
				b.WriteByte(7)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'v':
				b.WriteByte('\v')
			default:
				if e >= '0' && e <= '7' {
					// Up to three octal digits, value at most 0377.
					v := int(e - '0')
					max := 2
					if e > '3' {
						max = 1
					}
					for i := 0; i < max && s.pos < len(s.src) && s.src[s.pos] >= '0' && s.src[s.pos] <= '7'; i++ {
						v = v*8 + int(s.src[s.pos]-'0')
						s.pos++
					}
					b.WriteByte(byte(v))
				} else {
					b.WriteByte(e)
				}
			}
		default:
			b.WriteByte(c)
			s.pos++
		}
	}
	return "", &jaasError{start, "unterminated quoted string"}
}

// jaasFlags are the control flags JAAS defines.
var jaasFlags = map[string]bool{"required": true, "requisite": true, "sufficient": true, "optional": true}

// parseJAAS parses a sasl.jaas.config value holding exactly one login module
// entry. The terminating ';' may be omitted at the end of the string.
func parseJAAS(src string) (*jaasEntry, error) {
	s := &jaasScanner{src: src}
	var entries []*jaasEntry
	for {
		tok, err := s.next(false)
		if err != nil {
			return nil, err
		}
		if tok.kind == jaasEOF {
			break
		}
		if tok.kind != jaasWord {
			return nil, &jaasError{tok.pos, fmt.Sprintf("expected a login module class name, found %q", tok.text)}
		}
		e := &jaasEntry{Module: tok.text, Options: map[string]string{}}
		flag, err := s.next(false)
		if err != nil {
			return nil, err
		}
		if flag.kind != jaasWord || !jaasFlags[strings.ToLower(flag.text)] {
			return nil, &jaasError{flag.pos, fmt.Sprintf("expected a control flag (required, requisite, sufficient or optional) after %s, found %q", e.Module, flag.text)}
		}
		e.Flag = strings.ToLower(flag.text)
		for done := false; !done; {
			key, err := s.next(false)
			if err != nil {
				return nil, err
			}
			switch key.kind {
			case jaasSemicolon, jaasEOF:
				done = true
				continue
			case jaasWord:
			default:
				return nil, &jaasError{key.pos, fmt.Sprintf("expected an option name or ';', found %q", key.text)}
			}
			eq, err := s.next(false)
			if err != nil {
				return nil, err
			}
			if eq.kind != jaasEquals {
				return nil, &jaasError{eq.pos, fmt.Sprintf("expected '=' after option %q", key.text)}
			}
			val, err := s.next(true)
			if err != nil {
				return nil, err
			}
			if val.kind != jaasWord && val.kind != jaasQuoted {
				return nil, &jaasError{val.pos, fmt.Sprintf("value not specified for option %q", key.text)}
			}
			e.Options[key.text] = val.text
		}
		entries = append(entries, e)
	}
	switch len(entries) {
	case 0:
		return nil, &jaasError{0, "no login module specified"}
	case 1:
		return entries[0], nil
	default:
		return nil, &jaasError{0, fmt.Sprintf("%d login modules specified, Kafka accepts exactly 1", len(entries))}
	}
}
