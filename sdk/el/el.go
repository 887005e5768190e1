// Package el is Sluice's expression language: the one implementation every
// plugin and the core use to evaluate "{#...}" templates in configuration
// values and policies.
//
// Operators write Gravitee's Spring SpEL spelling, because their existing
// API definitions and the reference fixtures use it. The package translates
// the SpEL forms the reference uses into github.com/expr-lang/expr and runs
// them there, so templates are compiled once and evaluated per request or
// per message without reflection-heavy interpretation.
//
// Roots: #request (id, transactionId, clientIdentifier, method, path,
// contextPath, pathInfo, headers, params, pathParams, remoteAddress, content),
// #context.attributes, #message (id, content, contentLength, headers,
// metadata, attributes, attributeNames, error) and #api. Header lookups ignore
// case; a missing map key is null. The function #jsonPath(content, path)
// reads a JSONPath subset ($, .field, ['field'], [index]). SpEL spellings
// accepted: #name variables, null, the word operators eq ne lt gt le ge div
// mod and or not (any case), matches (whole-string, as in Java), ?: (Elvis),
// ?. (safe navigation), 'single' and "double" quoted strings with doubled
// quotes as escapes, inline lists {1,2} and maps {a:1}, and Java number
// suffixes, string concatenation with + when either side is a string, and
// the Java String and collection methods templates call (startsWith,
// endsWith, contains, matches, equals, equalsIgnoreCase, toUpperCase,
// toLowerCase, trim, length, isEmpty, substring, indexOf, lastIndexOf,
// replace, split, toString, size, containsKey, get). Everything else follows
// expr, including its builtins. docs/el.md describes every form.
//
// Evaluation reuses pooled environments and reads bodies without copying
// them, so a per-message condition allocates nothing; results that would
// still refer to that memory are copied before Eval returns.
package el

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/javafmt"
)

// Env is what an evaluation can see. Fields left nil make their root
// unavailable: reading #message outside a message phase is an error, as in
// the reference, rather than a silent empty value.
type Env struct {
	// Request is the root #request.
	Request *gateway.Request
	// Attributes is the root #context.attributes.
	Attributes map[string]any
	// Message is the root #message; nil outside message phases.
	Message *gateway.Message
	// API is the root #api (id, name, ...).
	API map[string]any
}

// Template is a compiled string that may contain EL segments {#...}. It is
// immutable and safe for concurrent use, so callers compile configuration
// once and evaluate it for every request or message.
type Template struct {
	src    string
	parts  []part
	use    usage
	single bool // exactly one expression and no literal text
	exprs  int
}

// part is literal text (prog == nil) or one compiled expression.
type part struct {
	text  string // literal text, or the segment as written ("{#...}")
	start int    // byte offset of the segment in the template
	prog  *vm.Program
	pos   []int // rune index in the expr code -> byte offset in the body
}

// Error is a compile or evaluation failure. It carries the segment and the
// column so an operator can find the mistake in a long configuration value.
type Error struct {
	// Template is the whole source string.
	Template string
	// Expr is the segment at fault, as written ("{#...}").
	Expr string
	// Column is the 1-based column, in runes, within Template.
	Column int
	// Msg describes the problem.
	Msg string
	// Err is the underlying error, when there is one (for errors.Is/As).
	Err error
}

// Error formats the failure with its segment and column, since that is all
// a log line usually has to point the operator at the mistake.
func (e *Error) Error() string {
	return fmt.Sprintf("el: %s at column %d: %s", shorten(e.Expr), e.Column, e.Msg)
}

// shorten keeps log lines readable when the segment at fault is huge.
func shorten(s string) string {
	const limit = 120
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Unwrap exposes the underlying error, so callers can still match errors
// returned by functions such as jsonPath.
func (e *Error) Unwrap() error { return e.Err }

func newError(src, exprText string, off int, msg string) *Error {
	return &Error{Template: src, Expr: exprText, Column: column(src, off), Msg: msg}
}

// baseOptions are the expr options shared by every compilation; the patcher,
// which keeps per-expression state, is added per call.
var baseOptions = append([]expr.Option{expr.Env(root{})}, methodOptions...)

// HasEL reports whether s contains the start of a {#...} segment. An
// unterminated segment counts, so that callers who skip compiling plain
// strings still hand it to Compile and get an error instead of a literal.
func HasEL(s string) bool {
	return strings.Contains(s, "{#")
}

// Compile parses src once so that evaluation does no parsing. Errors are
// *Error values naming the segment and the column within src.
func Compile(src string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, newError(src, src, 0, fmt.Sprintf("internal error: %v", r))
		}
	}()
	segs, err := split(src)
	if err != nil {
		return nil, err
	}
	t = &Template{src: src}
	exprs := 0
	for _, s := range segs {
		if s.literal {
			t.parts = append(t.parts, part{text: s.text, start: s.start})
			continue
		}
		p, use, err := compileSegment(src, s)
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, p)
		t.use.merge(use)
		exprs++
	}
	t.exprs = exprs
	t.single = exprs == 1 && len(t.parts) == 1
	return t, nil
}

// maxExprLen bounds one expression. expr parses and checks recursively, so
// the length bounds the nesting depth and with it the stack a hostile
// template (one that came from request data) can make Compile use; no
// legitimate expression comes near it.
const maxExprLen = 16 << 10

func compileSegment(src string, s segment) (part, usage, error) {
	bodyStart := s.start + 2
	if strings.TrimSpace(s.body) == "" {
		return part{}, usage{}, newError(src, s.text, s.start, "empty expression")
	}
	if len(s.body) > maxExprLen {
		return part{}, usage{}, newError(src, s.text, s.start, fmt.Sprintf("expression longer than %d bytes", maxExprLen))
	}
	tr, err := translate(s.body)
	if err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			return part{}, usage{}, newError(src, s.text, bodyStart+be.off, be.msg)
		}
		return part{}, usage{}, newError(src, s.text, s.start, err.Error())
	}
	p := &patcher{}
	opts := append(baseOptions[:len(baseOptions):len(baseOptions)], expr.Patch(p))
	prog, err := expr.Compile(tr.code, opts...)
	if p.err != nil {
		// The patcher's finding says the problem in SpEL terms, and any
		// error expr then raised is a consequence of it.
		return part{}, usage{}, newError(src, s.text, bodyStart+bodyOffset(tr.pos, p.err.from, len(s.body)), p.err.msg)
	}
	if err != nil {
		off, msg := s.start, err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			off, msg = bodyStart+bodyOffset(tr.pos, fe.From, len(s.body)), fe.Message
			if strings.Contains(msg, "unexpected token EOF") {
				// The expression ended too early: point at its closing brace.
				off = bodyStart + len(s.body)
			}
		}
		e := newError(src, s.text, off, friendly(msg))
		return part{}, usage{}, e
	}
	return part{text: s.text, start: s.start, prog: prog, pos: tr.pos}, p.finish(), nil
}

// bodyOffset maps a rune index in translated code back to a byte offset in
// the SpEL body; past the end means the closing brace.
func bodyOffset(pos []int, from, bodyLen int) int {
	if from >= 0 && from < len(pos) {
		return pos[from]
	}
	return bodyLen
}

// MustCompile is Compile for templates written in Go source, where a bad
// template is a programming error.
func MustCompile(src string) *Template {
	t, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return t
}

// Source returns the template as written, for logs and error messages.
func (t *Template) Source() string {
	if t == nil {
		return ""
	}
	return t.src
}

// IsLiteral reports whether the template has no EL, letting callers keep the
// plain string and skip evaluation entirely.
func (t *Template) IsLiteral() bool { return t == nil || t.exprs == 0 }

// Eval evaluates the template. A template that is exactly one {#expr} keeps
// the expression's type (bool, list, number, nil...), which is what
// attributes and conditions need; text mixed with segments concatenates to a
// string, null segments contributing nothing. Results are not copied (a
// header list is the request's own slice), so callers treat them as
// read-only.
func (t *Template) Eval(env Env) (any, error) {
	if t == nil {
		return nil, errors.New("el: nil template")
	}
	if t.exprs == 0 {
		return t.src, nil
	}
	f := newFrame(&env, t.use)
	defer f.release()
	if t.single {
		v, err := t.run(&t.parts[0], f)
		if err != nil {
			return nil, err
		}
		v, _ = f.detach(v, 0)
		return v, nil
	}
	b := make([]byte, 0, len(t.src))
	for i := range t.parts {
		p := &t.parts[i]
		if p.prog == nil {
			b = append(b, p.text...)
			continue
		}
		v, err := t.run(p, f)
		if err != nil {
			return nil, err
		}
		// The buffer copies what it writes, so the value need not be
		// detached from the frame.
		b = javafmt.AppendJoined(b, v)
	}
	return string(b), nil
}

// EvalString evaluates the template to text for string-typed configuration:
// null becomes "", lists are joined with "," and integral numbers are written
// without an exponent.
func (t *Template) EvalString(env Env) (string, error) {
	v, err := t.Eval(env)
	if err != nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return format(v), nil
}

// vmPool reuses expr VMs, whose stacks would otherwise be allocated on every
// evaluation.
var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

func (t *Template) run(p *part, f *frame) (v any, err error) {
	m := vmPool.Get().(*vm.VM)
	defer func() {
		// Drop references to this request's data before pooling the VM.
		clear(m.Stack[:cap(m.Stack)])
		clear(m.Variables)
		vmPool.Put(m)
		if r := recover(); r != nil {
			v, err = nil, newError(t.src, p.text, p.start, fmt.Sprintf("internal error: %v", r))
		}
	}()
	v, err = m.Run(p.prog, &f.root)
	if err != nil {
		off, msg := p.start, err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			off, msg = p.start+2+bodyOffset(p.pos, fe.From, len(p.text)-3), fe.Message
		}
		return nil, &Error{Template: t.src, Expr: p.text, Column: column(t.src, off), Msg: friendly(msg), Err: errors.Unwrap(err)}
	}
	return v, nil
}

// cacheLimit bounds the convenience cache: template sources can come from
// request data (attributes may hold EL), and an unbounded cache would grow
// with every distinct value.
const cacheLimit = 4096

var (
	cache     sync.Map // src -> *Template
	cacheSize atomic.Int64
)

func cached(src string) (*Template, error) {
	if t, ok := cache.Load(src); ok {
		return t.(*Template), nil
	}
	t, err := Compile(src)
	if err != nil {
		return nil, err
	}
	if cacheSize.Load() < cacheLimit {
		if _, loaded := cache.LoadOrStore(src, t); !loaded {
			cacheSize.Add(1)
		}
	}
	return t, nil
}

// Eval compiles and evaluates src in one call, for values that are only
// known at run time (such as context attributes that hold EL). Compiled
// templates are cached by source; strings without EL skip the cache.
func Eval(src string, env Env) (any, error) {
	if !HasEL(src) {
		return src, nil
	}
	t, err := cached(src)
	if err != nil {
		return nil, err
	}
	return t.Eval(env)
}

// EvalString is Eval with Template.EvalString's formatting.
func EvalString(src string, env Env) (string, error) {
	if !HasEL(src) {
		return src, nil
	}
	t, err := cached(src)
	if err != nil {
		return "", err
	}
	return t.EvalString(env)
}
