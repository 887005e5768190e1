package el

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// arity is how many arguments a Java method takes.
type arity struct{ min, max int }

// javaMethods are the Java String and collection methods that SpEL
// templates call on values (#message.content.startsWith('vip:')). Go
// strings have no methods, so the patcher turns each call into an expr
// operator or a helper function.
var javaMethods = map[string]arity{
	"startsWith":       {1, 1},
	"endsWith":         {1, 1},
	"contains":         {1, 1},
	"matches":          {1, 1},
	"equals":           {1, 1},
	"equalsIgnoreCase": {1, 1},
	"toUpperCase":      {0, 0},
	"toLowerCase":      {0, 0},
	"trim":             {0, 0},
	"length":           {0, 0},
	"isEmpty":          {0, 0},
	"substring":        {1, 2},
	"indexOf":          {1, 2},
	"lastIndexOf":      {1, 1},
	"replace":          {2, 2},
	"split":            {1, 1},
	"toString":         {0, 0},
	"size":             {0, 0},
	"containsKey":      {1, 1},
	"get":              {1, 1},
}

// methodFns names the helper for methods that are a plain call of the
// receiver followed by the arguments, by argument count.
var methodFns = map[string][3]string{
	"equalsIgnoreCase": {1: "__elEqualsIgnoreCase"},
	"toUpperCase":      {0: "__elToUpperCase"},
	"toLowerCase":      {0: "__elToLowerCase"},
	"trim":             {0: "__elTrim"},
	"length":           {0: "__elLength"},
	"isEmpty":          {0: "__elIsEmpty"},
	"substring":        {1: "__elSubstring", 2: fnSubstring2},
	"indexOf":          {1: "__elIndexOf", 2: fnIndexOf2},
	"lastIndexOf":      {1: "__elLastIndexOf"},
	"replace":          {2: fnReplace},
	"split":            {1: "__elSplit"},
	"toString":         {0: "__elToString"},
	"size":             {0: "__elSize"},
	"containsKey":      {1: "__elContainsKey"},
	"get":              {1: "__elGet"},
	"contains":         {1: "__elContains"},
}

// Helpers with three arguments, beyond what expr calls without an argument
// slice; they build a new string anyway, so the slice is not what costs.
const (
	fnSubstring2 = "__elSubstring2"
	fnIndexOf2   = "__elIndexOf2"
	fnReplace    = "__elReplace"
)

// methodOptions registers the three-argument helpers.
var methodOptions = []expr.Option{
	expr.Function(fnSubstring2, substring2Fn),
	expr.Function(fnIndexOf2, indexOf2Fn),
	expr.Function(fnReplace, replaceFn),
}

// method rewrites a Java method call; it reports false for calls it leaves
// to expr (functions, and methods of Go types such as Headers.Get).
func (p *patcher) method(node *ast.Node, n *ast.CallNode) bool {
	m, ok := n.Callee.(*ast.MemberNode)
	if !ok || !m.Method {
		return false
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return false
	}
	name := prop.Value
	ar, ok := javaMethods[name]
	if !ok {
		return false
	}
	loc := prop.Location()
	args := n.Arguments
	if len(args) < ar.min || len(args) > ar.max {
		want := fmt.Sprint(ar.min)
		if ar.max != ar.min {
			want = fmt.Sprintf("%d or %d", ar.min, ar.max)
		}
		p.fail(prop, "%s() takes %s argument(s), got %d", name, want, len(args))
		return true
	}
	recv := m.Node
	var out ast.Node
	switch name {
	case "startsWith", "endsWith":
		// expr's operators: no call, so a per-message condition allocates
		// nothing.
		out = &ast.BinaryNode{Operator: name, Left: recv, Right: args[0]}
	case "equals":
		out = &ast.BinaryNode{Operator: "==", Left: recv, Right: args[0]}
	case "matches":
		b := &ast.BinaryNode{Operator: "matches", Left: recv, Right: args[0]}
		out = b
		p.matches(&out, b)
	case "contains":
		if isStringNode(recv, recv.Type()) {
			out = &ast.BinaryNode{Operator: "contains", Left: recv, Right: args[0]}
			break
		}
		fallthrough
	default:
		out = &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: methodFns[name][len(args)]},
			Arguments: append([]ast.Node{recv}, args...),
		}
	}
	if m.Optional {
		// SpEL's ?. gives null instead of calling a method on null.
		out = &ast.ConditionalNode{
			Cond: &ast.BinaryNode{Operator: "==", Left: recv, Right: &ast.NilNode{}},
			Exp1: &ast.NilNode{},
			Exp2: out,
		}
	}
	setLocation(out, loc)
	ast.Patch(node, out)
	(*node).SetLocation(loc)
	return true
}

// setLocation points the nodes the patcher made at the method name, so
// errors they raise name the call the operator wrote. Nodes parsed from the
// source (receiver and arguments) keep their own location.
func setLocation(n ast.Node, loc file.Location) {
	n.SetLocation(loc)
	switch x := n.(type) {
	case *ast.CallNode:
		x.Callee.SetLocation(loc)
	case *ast.ConditionalNode:
		x.Cond.SetLocation(loc)
		x.Cond.(*ast.BinaryNode).Right.SetLocation(loc)
		x.Exp1.SetLocation(loc)
		setLocation(x.Exp2, loc)
	}
}

// receiver returns the string a string method was called on; calling one
// on null or on another type is an error, as in Java.
func receiver(v any, method string) string {
	s, ok := v.(string)
	if !ok {
		panic(fmt.Sprintf("cannot call %s() on %s", method, typeName(v)))
	}
	return s
}

func argString(v any, method string) string {
	s, ok := v.(string)
	if !ok {
		panic(fmt.Sprintf("%s() needs a string argument, got %s", method, typeName(v)))
	}
	return s
}

func argInt(v any, method string) int {
	switch i := v.(type) {
	case int:
		return i
	case int64:
		return int(i)
	case int32:
		return int(i)
	}
	panic(fmt.Sprintf("%s() needs an integer argument, got %s", method, typeName(v)))
}

func upperFn(v any) any { return strings.ToUpper(receiver(v, "toUpperCase")) }

func lowerFn(v any) any { return strings.ToLower(receiver(v, "toLowerCase")) }

// trimFn strips what Java's String.trim strips: every character up to and
// including the space, and nothing else.
func trimFn(v any) any {
	return strings.TrimFunc(receiver(v, "trim"), func(r rune) bool { return r <= ' ' })
}

// lengthFn counts characters, not bytes, as Java does (Java counts UTF-16
// units, which differs only for characters beyond U+FFFF).
func lengthFn(v any) any { return utf8.RuneCountInString(receiver(v, "length")) }

func isEmptyFn(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case nil:
		panic("cannot call isEmpty() on null")
	}
	return collectionLen(v, "isEmpty") == 0
}

func sizeFn(v any) any { return collectionLen(v, "size") }

func collectionLen(v any, method string) int {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len()
	}
	panic(fmt.Sprintf("cannot call %s() on %s", method, typeName(v)))
}

func toStringFn(v any) any {
	if v == nil {
		panic("cannot call toString() on null")
	}
	if s, ok := v.(string); ok {
		return s
	}
	return format(v)
}

func equalsIgnoreCaseFn(v, other any) bool {
	s := receiver(v, "equalsIgnoreCase")
	o, ok := other.(string)
	return ok && strings.EqualFold(s, o)
}

// containsFn is contains() on a receiver whose type is only known at run
// time: a string, a list, or headers (where it asks for a header name, as
// Gravitee's HttpHeaders.contains does).
func containsFn(v, x any) bool {
	switch r := v.(type) {
	case nil:
		return false // as expr's contains operator on null
	case string:
		return strings.Contains(r, argString(x, "contains"))
	case gateway.Headers:
		return r.Values(argString(x, "contains")) != nil
	case []string:
		s, ok := x.(string)
		if !ok {
			return false
		}
		for _, e := range r {
			if e == s {
				return true
			}
		}
		return false
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); k == reflect.Slice || k == reflect.Array {
		for i := 0; i < rv.Len(); i++ {
			if runtime.Equal(rv.Index(i).Interface(), x) {
				return true
			}
		}
		return false
	}
	panic(fmt.Sprintf("cannot call contains() on %s", typeName(v)))
}

func containsKeyFn(v, k any) bool {
	switch m := v.(type) {
	case gateway.Headers:
		return m.Values(argString(k, "containsKey")) != nil
	case map[string]any:
		_, ok := m[argString(k, "containsKey")]
		return ok
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		panic(fmt.Sprintf("cannot call containsKey() on %s", typeName(v)))
	}
	kv := reflect.ValueOf(k)
	if !kv.IsValid() || !kv.Type().AssignableTo(rv.Type().Key()) {
		return false
	}
	return rv.MapIndex(kv).IsValid()
}

// getFn is Java's get(): a list element by index, or a map value by key.
// On headers it gives the first value, like Gravitee's HttpHeaders.get.
func getFn(v, k any) any {
	switch m := v.(type) {
	case gateway.Headers:
		if l := m.Values(argString(k, "get")); len(l) > 0 {
			return l[0]
		}
		return nil
	case map[string]any:
		return m[argString(k, "get")]
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		kv := reflect.ValueOf(k)
		if !kv.IsValid() || !kv.Type().AssignableTo(rv.Type().Key()) {
			return nil
		}
		if e := rv.MapIndex(kv); e.IsValid() {
			return e.Interface()
		}
		return nil
	case reflect.Slice, reflect.Array:
		i := argInt(k, "get")
		if i < 0 || i >= rv.Len() {
			panic(fmt.Sprintf("get(%d): index out of range (size %d)", i, rv.Len()))
		}
		return rv.Index(i).Interface()
	}
	panic(fmt.Sprintf("cannot call get() on %s", typeName(v)))
}

// runeOffset returns the byte offset of the i-th character of s, or -1 when
// s has fewer than i characters. ASCII text, the usual case, needs no scan.
func runeOffset(s string, i int) int {
	if i < 0 {
		return -1
	}
	n := 0
	for off := range s {
		if n == i {
			return off
		}
		n++
	}
	if n == i {
		return len(s)
	}
	return -1
}

func substring(s string, begin, end int, hasEnd bool) string {
	length := utf8.RuneCountInString(s)
	if !hasEnd {
		end = length
	}
	if begin < 0 || end > length || begin > end {
		panic(fmt.Sprintf("substring: begin %d, end %d, length %d", begin, end, length))
	}
	return s[runeOffset(s, begin):runeOffset(s, end)]
}

func substring1Fn(v, begin any) any {
	return substring(receiver(v, "substring"), argInt(begin, "substring"), 0, false)
}

func substring2Fn(args ...any) (any, error) {
	return substring(receiver(args[0], "substring"), argInt(args[1], "substring"), argInt(args[2], "substring"), true), nil
}

// indexOf returns the character index of sub in s at or after from, or -1.
func indexOf(s, sub string, from int) int {
	if from < 0 {
		from = 0
	}
	off := runeOffset(s, from)
	if off < 0 {
		return -1
	}
	i := strings.Index(s[off:], sub)
	if i < 0 {
		return -1
	}
	return from + utf8.RuneCountInString(s[off:off+i])
}

func indexOf1Fn(v, sub any) any {
	return indexOf(receiver(v, "indexOf"), argString(sub, "indexOf"), 0)
}

func indexOf2Fn(args ...any) (any, error) {
	return indexOf(receiver(args[0], "indexOf"), argString(args[1], "indexOf"), argInt(args[2], "indexOf")), nil
}

func lastIndexOfFn(v, sub any) any {
	s := receiver(v, "lastIndexOf")
	i := strings.LastIndex(s, argString(sub, "lastIndexOf"))
	if i < 0 {
		return -1
	}
	return utf8.RuneCountInString(s[:i])
}

// replaceFn is Java's String.replace: every literal occurrence.
func replaceFn(args ...any) (any, error) {
	return strings.ReplaceAll(receiver(args[0], "replace"), argString(args[1], "replace"), argString(args[2], "replace")), nil
}

// splitFn is Java's String.split: the separator is a regular expression,
// and trailing empty strings are dropped.
func splitFn(v, sep any) any {
	s := receiver(v, "split")
	pattern := argString(sep, "split")
	var parts []string
	if isLiteral(pattern) {
		parts = strings.Split(s, pattern)
	} else {
		re, err := cachedRegexp(pattern)
		if err != nil {
			panic(fmt.Sprintf("split: %v", err))
		}
		parts = re.Split(s, -1)
	}
	if len(parts) == 1 {
		return parts // no separator found: Java returns the input itself
	}
	end := len(parts)
	for end > 0 && parts[end-1] == "" {
		end--
	}
	return parts[:end]
}

// isLiteral reports whether a pattern means itself, so split can avoid the
// regexp engine for the usual "," or ":".
func isLiteral(p string) bool {
	return p != "" && !strings.ContainsAny(p, `\.+*?()|[]{}^$`)
}

func matchesFn(v, pattern any) bool {
	p, ok := pattern.(string)
	if !ok {
		panic(fmt.Sprintf("matches needs a string pattern, got %s", typeName(pattern)))
	}
	s, ok := v.(string)
	if !ok {
		return false // as expr's matches operator on a non-string
	}
	re, err := cachedRegexp(anchor(p))
	if err != nil {
		panic(fmt.Sprintf("matches: %v", err))
	}
	return re.MatchString(s)
}

// regexpCacheLimit bounds the cache of patterns computed at run time:
// they may come from request data, and every distinct one would stay.
const regexpCacheLimit = 1024

var (
	regexpCache     sync.Map // pattern -> *regexp.Regexp
	regexpCacheSize atomic.Int64
)

func cachedRegexp(p string) (*regexp.Regexp, error) {
	if re, ok := regexpCache.Load(p); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	if regexpCacheSize.Load() < regexpCacheLimit {
		// The key may view a message body; the cache outlives it.
		if _, loaded := regexpCache.LoadOrStore(strings.Clone(p), re); !loaded {
			regexpCacheSize.Add(1)
		}
	}
	return re, nil
}

// concatFn is SpEL's + with a string on one side: the other side is written
// as text, null as "null" (as Java's string concatenation does), and
// numbers and lists as format writes them.
func concatFn(a, b any) string {
	return concatText(a) + concatText(b)
}

func concatText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	}
	return format(v)
}

// attributeNames lists attribute names sorted, so a template that joins
// them gives the same text every time.
func attributeNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
