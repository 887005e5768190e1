package el

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestForms covers every EL form the reference lists and the Java methods
// templates call, each with its exact result.
func TestForms(t *testing.T) {
	vip := fixture()
	vip.Message.Content = []byte("vip:Alice, Bob ,,")
	unicode := fixture()
	unicode.Message.Content = []byte("héllo wörld")
	spaces := fixture()
	spaces.Message.Content = []byte("\t  padded \n")
	noHeaders := fixture()
	noHeaders.Request.Headers = nil
	noParams := fixture()
	noParams.Request.PathParams = nil

	tests := map[string]struct {
		src  string
		env  *Env
		want any
	}{
		// Roots and fields of the reference.
		"pathParams index":       {src: "{#request.pathParams['newTopic']}", want: "dyn-topic"},
		"pathParams in text":     {src: "topic-{#request.pathParams['newTopic']}", want: "topic-dyn-topic"},
		"pathParams nil map":     {src: "{#request.pathParams['newTopic']}", env: &noParams, want: nil},
		"pathParams present":     {src: "{#request.pathParams['newTopic'] != null}", want: true},
		"pathParams absent":      {src: "{#request.pathParams['other'] != null}", want: false},
		"pathParams absent eq":   {src: "{#request.pathParams['other'] == null}", want: true},
		"attributeNames":         {src: "{#message.attributeNames}", want: []string{"b", "k"}},
		"attributeNames has":     {src: "{#message.attributeNames.contains('k')}", want: true},
		"attributeNames size":    {src: "{#message.attributeNames.size()}", want: 2},
		"contentLength":          {src: "{#message.contentLength}", want: 20},
		"contentLength compare":  {src: "{#message.contentLength > 10}", want: true},
		"content":                {src: "{#message.content}", want: `{"a":"from-message"}`},
		"headers list":           {src: "{#message.headers['dup']}", want: []string{"1", "2"}},
		"headers whole":          {src: "{#message.headers['dup'] == null}", want: false},
		"metadata topic":         {src: "{#message.metadata['topic']}", want: "orders"},
		"metadata compare":       {src: "{#message.metadata['partition'] == 0}", want: true},
		"attributes":             {src: "{#message.attributes['k']}", want: "attr-value"},
		"attributes missing":     {src: "{#message.attributes['zz'] == null}", want: true},
		"context attributes":     {src: "{#context.attributes['tok']}", want: "secret-token"},
		"request header first":   {src: "{#request.headers['X'][0]}", want: "x-value"},
		"request header second":  {src: "{#request.headers['X-Key'][1]}", want: "k2"},
		"request header has":     {src: "{#request.headers['x'] != null}", want: true},
		"request header has not": {src: "{#request.headers['nope'] != null}", want: false},
		"header null on left":    {src: "{#null == request.headers['nope']}", want: true},
		"nil headers":            {src: "{#request.headers['x'] != null}", env: &noHeaders, want: false},
		"params":                 {src: "{#request.params['q']}", want: []string{"one", "two"}},
		"params first":           {src: "{#request.params['q'][0]}", want: "one"},
		"params has":             {src: "{#request.params['q'] != null}", want: true},
		"params has not":         {src: "{#request.params['zz'] != null}", want: false},
		"request content":        {src: "{#request.content.startsWith('{')}", want: true},
		"jsonPath request":       {src: "{#jsonPath(#request.content, '$.b.c[0]')}", want: 10},
		"jsonPath message":       {src: "{#jsonPath(#message.content, '$.a')}", want: "from-message"},
		"jsonPath compare":       {src: "{#jsonPath(#message.content, '$.a') == 'from-message'}", want: true},

		// String methods.
		"startsWith":             {src: "{#message.content.startsWith('vip:')}", env: &vip, want: true},
		"startsWith false":       {src: "{#message.content.startsWith('VIP:')}", env: &vip, want: false},
		"endsWith":               {src: "{#request.path.endsWith('/orders')}", want: true},
		"contains":               {src: "{#request.path.contains('ord')}", want: true},
		"contains false":         {src: "{#request.path.contains('xyz')}", want: false},
		"contains on any":        {src: "{#context.attributes['name'].contains('la')}", want: true},
		"contains on list":       {src: "{#request.headers['X-Key'].contains('k2')}", want: true},
		"contains list missing":  {src: "{#context.attributes['topics'].contains('t9')}", want: false},
		"contains on headers":    {src: "{#request.headers.contains('x-key')}", want: true},
		"matches":                {src: "{#request.method.matches('PO.T')}", want: true},
		"matches anchored":       {src: "{#request.method.matches('OS')}", want: false},
		"matches dynamic":        {src: "{#request.method.matches(request.headers['X-Key'][0] + '|POST')}", want: true},
		"matches dynamic anchor": {src: "{#request.method.matches('' + 'OS')}", want: false},
		"toUpperCase":            {src: "{#request.headers['X'][0].toUpperCase()}", want: "X-VALUE"},
		"toLowerCase":            {src: "{#request.method.toLowerCase()}", want: "post"},
		"substring from":         {src: "{#message.content.substring(4)}", env: &vip, want: "Alice, Bob ,,"},
		"substring range":        {src: "{#message.content.substring(0, 3)}", env: &vip, want: "vip"},
		"substring unicode":      {src: "{#message.content.substring(1, 4)}", env: &unicode, want: "éll"},
		"substring empty":        {src: "{#'abc'.substring(3)}", want: ""},
		"length":                 {src: "{#request.method.length()}", want: 4},
		"length unicode":         {src: "{#message.content.length()}", env: &unicode, want: 11},
		"isEmpty":                {src: "{#''.isEmpty()}", want: true},
		"isEmpty false":          {src: "{#request.method.isEmpty()}", want: false},
		"isEmpty list":           {src: "{#request.headers['X'].isEmpty()}", want: false},
		"trim":                   {src: "{#message.content.trim()}", env: &spaces, want: "padded"},
		"replace":                {src: "{#request.path.replace('/', '.')}", want: ".kafka.orders"},
		"split":                  {src: "{#message.content.split(',')}", env: &vip, want: []string{"vip:Alice", " Bob "}},
		"split regex":            {src: "{#'a1b22c'.split('\\d+')}", want: []string{"a", "b", "c"}},
		"split none":             {src: "{#'abc'.split(',')}", want: []string{"abc"}},
		"split index":            {src: "{#request.path.split('/')[2]}", want: "orders"},
		"indexOf":                {src: "{#request.path.indexOf('/o')}", want: 6},
		"indexOf missing":        {src: "{#request.path.indexOf('zz')}", want: -1},
		"indexOf from":           {src: "{#request.path.indexOf('/', 1)}", want: 6},
		"indexOf unicode":        {src: "{#message.content.indexOf('w')}", env: &unicode, want: 6},
		"lastIndexOf":            {src: "{#request.path.lastIndexOf('/')}", want: 6},
		"equals":                 {src: "{#request.method.equals('POST')}", want: true},
		"equals false":           {src: "{#request.method.equals('post')}", want: false},
		"equalsIgnoreCase":       {src: "{#request.method.equalsIgnoreCase('post')}", want: true},
		"equalsIgnoreCase null":  {src: "{#request.method.equalsIgnoreCase(null)}", want: false},
		"toString":               {src: "{#message.metadata['offset'].toString()}", want: "42"},
		"chained methods":        {src: "{#request.headers['X'][0].toUpperCase().startsWith('X-')}", want: true},
		"method on literal":      {src: "{#'Hello'.toLowerCase()}", want: "hello"},
		"safe method on null":    {src: "{#context.attributes['nope']?.toUpperCase()}", want: nil},
		"safe method on value":   {src: "{#context.attributes['name']?.toUpperCase()}", want: "PLAIN"},
		"elvis after safe call":  {src: "{#context.attributes['nope']?.trim() ?: 'default'}", want: "default"},
		"size of map":            {src: "{#message.metadata.size()}", want: 5},
		"containsKey":            {src: "{#message.metadata.containsKey('key')}", want: true},
		"containsKey headers":    {src: "{#message.headers.containsKey('CONTENT-TYPE')}", want: true},
		"containsKey missing":    {src: "{#message.attributes.containsKey('zz')}", want: false},
		"get map":                {src: "{#message.metadata.get('topic')}", want: "orders"},
		"get list":               {src: "{#request.headers['X-Key'].get(1)}", want: "k2"},
		"get header":             {src: "{#request.headers.get('x-key')}", want: "k1"},
		"get header missing":     {src: "{#request.headers.get('nope')}", want: nil},
		"Go method still works":  {src: "{#request.headers.Get('x-key')}", want: "k1"},

		// Operators.
		"eq symbol":          {src: "{#request.method == 'POST'}", want: true},
		"ne symbol":          {src: "{#request.method != 'POST'}", want: false},
		"lt":                 {src: "{#message.contentLength < 21}", want: true},
		"gt":                 {src: "{#message.contentLength > 20}", want: false},
		"le":                 {src: "{#message.contentLength <= 20}", want: true},
		"ge":                 {src: "{#message.contentLength >= 21}", want: false},
		"eq word":            {src: "{#request.method eq 'POST'}", want: true},
		"ne word":            {src: "{#request.method ne 'GET'}", want: true},
		"lt word":            {src: "{#1 lt 2}", want: true},
		"gt word":            {src: "{#1 gt 2}", want: false},
		"le word":            {src: "{#2 le 2}", want: true},
		"ge word":            {src: "{#1 ge 2}", want: false},
		"string compare":     {src: "{#'abc' < 'abd'}", want: true},
		"and":                {src: "{#true && false}", want: false},
		"or":                 {src: "{#false || true}", want: true},
		"not":                {src: "{#!true}", want: false},
		"and word":           {src: "{#true and true}", want: true},
		"or word":            {src: "{#false or false}", want: false},
		"not word":           {src: "{#not false}", want: true},
		"ternary":            {src: "{#message.contentLength > 5 ? 'big' : 'small'}", want: "big"},
		"ternary else":       {src: "{#message.contentLength > 50 ? 'big' : 'small'}", want: "small"},
		"elvis value":        {src: "{#message.attributes['k'] ?: 'x'}", want: "attr-value"},
		"elvis null":         {src: "{#message.attributes['zz'] ?: 'x'}", want: "x"},
		"safe navigation":    {src: "{#context.attributes['nope']?.foo}", want: nil},
		"null":               {src: "{#null}", want: nil},
		"string single":      {src: "{#'a'}", want: "a"},
		"string double":      {src: `{#"a"}`, want: "a"},
		"integer":            {src: "{#42}", want: 42},
		"float":              {src: "{#1.5}", want: 1.5},
		"true":               {src: "{#true}", want: true},
		"false":              {src: "{#false}", want: false},
		"concat strings":     {src: "{#'a' + 'b'}", want: "ab"},
		"concat number":      {src: "{#'n=' + 1}", want: "n=1"},
		"concat number left": {src: "{#1 + '=n'}", want: "1=n"},
		"concat float":       {src: "{#'f=' + 2.5}", want: "f=2.5"},
		"concat bool":        {src: "{#'b=' + true}", want: "b=true"},
		"concat null":        {src: "{#'a' + null}", want: "anull"},
		"concat attribute":   {src: "{#'c=' + context.attributes['count']}", want: "c=3"},
		"concat chain":       {src: "{#'a' + 1 + 2}", want: "a12"},
		"numbers still add":  {src: "{#1 + 2}", want: 3},
		"concat content":     {src: "{#'<' + message.content + '>'}", want: `<{"a":"from-message"}>`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := fixture()
			if tc.env != nil {
				env = *tc.env
			}
			tpl, err := Compile(tc.src)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tc.src, err)
			}
			got, err := tpl.Eval(env)
			if err != nil {
				t.Fatalf("Eval(%q): %v", tc.src, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Eval(%q) = %#v (%T), want %#v (%T)", tc.src, got, got, tc.want, tc.want)
			}
		})
	}
}

func TestMethodErrors(t *testing.T) {
	compile := map[string]struct {
		src    string
		column int
		msg    string
	}{
		"too many arguments":  {src: "{#request.method.trim(1)}", column: 18, msg: "trim() takes 0 argument(s), got 1"},
		"too few arguments":   {src: "{#request.method.startsWith()}", column: 18, msg: "startsWith() takes 1 argument(s), got 0"},
		"substring arity":     {src: "{#request.method.substring()}", column: 18, msg: "substring() takes 1 or 2 argument(s)"},
		"unknown method":      {src: "{#request.method.frobnicate()}", column: 18, msg: "no method frobnicate"},
		"bad constant regexp": {src: "{#request.method.matches('(')}", column: 18, msg: "missing closing )"},
		"int startsWith":      {src: "{#request.id.length.startsWith('a')}", column: 14, msg: "no field length"},
	}
	for name, tc := range compile {
		t.Run("compile/"+name, func(t *testing.T) {
			_, err := Compile(tc.src)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) = %v, want *Error", tc.src, err)
			}
			if e.Column != tc.column || !strings.Contains(e.Msg, tc.msg) || e.Expr != tc.src {
				t.Fatalf("Compile(%q): column %d msg %q expr %q; want column %d msg containing %q", tc.src, e.Column, e.Msg, e.Expr, tc.column, tc.msg)
			}
		})
	}
	run := map[string]struct {
		src    string
		column int
		msg    string
	}{
		"substring out of range": {src: "{#request.method.substring(2, 9)}", column: 18, msg: "substring: begin 2, end 9, length 4"},
		"substring negative":     {src: "{#request.method.substring(-1)}", column: 18, msg: "begin -1"},
		"method on null":         {src: "{#context.attributes['nope'].toUpperCase()}", column: 30, msg: "cannot call toUpperCase() on null"},
		"length on number":       {src: "{#context.attributes['count'].length()}", column: 31, msg: "cannot call length() on int"},
		"isEmpty on null":        {src: "{#context.attributes['nope'].isEmpty()}", column: 30, msg: "cannot call isEmpty() on null"},
		"missing header [0]":     {src: "x {#request.headers['nope'][0]}", column: 28, msg: "cannot fetch 0 from null"},
		"empty header [0]":       {src: "{#request.headers['empty'][0]}", column: 27, msg: "cannot fetch 0 from an empty list"},
		"missing param [0]":      {src: "{#request.params['nope'][0]}", column: 25, msg: "cannot fetch 0 from null"},
		"bad dynamic regexp":     {src: "{#request.method.matches('(' + '')}", column: 18, msg: "matches: error parsing regexp"},
		"bad split regexp":       {src: "{#request.method.split('(')}", column: 18, msg: "split: error parsing regexp"},
		"get out of range":       {src: "{#request.headers['X'].get(3)}", column: 24, msg: "get(3): index out of range (size 1)"},
		"indexOf non-string":     {src: "{#request.method.indexOf(context.attributes['count'])}", column: 18, msg: "indexOf() needs a string argument, got int"},
	}
	for name, tc := range run {
		t.Run("eval/"+name, func(t *testing.T) {
			env := fixture()
			env.Request.Headers["empty"] = []string{}
			tpl, err := Compile(tc.src)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tc.src, err)
			}
			_, err = tpl.Eval(env)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Eval(%q) = %v, want *Error", tc.src, err)
			}
			if e.Column != tc.column || !strings.Contains(e.Msg, tc.msg) || e.Expr != strings.TrimPrefix(tc.src, "x ") || e.Template != tc.src {
				t.Fatalf("Eval(%q): column %d msg %q expr %q; want column %d msg containing %q", tc.src, e.Column, e.Msg, e.Expr, tc.column, tc.msg)
			}
			if !strings.Contains(err.Error(), e.Expr) {
				t.Fatalf("Error() = %q does not name the expression", err.Error())
			}
		})
	}
}

// TestResultsOutliveBody checks that results never share memory with the
// message or request body, which the evaluation reads without copying: a
// policy may keep the result (as an attribute) after the body is reused.
func TestResultsOutliveBody(t *testing.T) {
	tests := map[string]struct {
		src  string
		want any
	}{
		"content":        {src: "{#message.content}", want: "abc,def"},
		"request body":   {src: "{#request.content}", want: "req,body"},
		"substring":      {src: "{#message.content.substring(4)}", want: "def"},
		"split":          {src: "{#message.content.split(',')}", want: []string{"abc", "def"}},
		"list of parts":  {src: "{#{message.content, request.content}}", want: []any{"abc,def", "req,body"}},
		"map of parts":   {src: "{#{'m': message.content}}", want: map[string]any{"m": "abc,def"}},
		"trim":           {src: "{#message.content.trim()}", want: "abc,def"},
		"ternary":        {src: "{#true ? message.content : ''}", want: "abc,def"},
		"elvis":          {src: "{#message.content ?: 'x'}", want: "abc,def"},
		"whole message":  {src: "{#message}", want: "abc,def"},
		"whole env":      {src: "{#$env}", want: "abc,def"},
		"let of content": {src: "{#let c = message.content; c}", want: "abc,def"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := []byte("abc,def")
			req := []byte("req,body")
			env := fixture()
			env.Message.Content = body
			env.Request.Body = req
			tpl := MustCompile(tc.src)
			got, err := tpl.Eval(env)
			if err != nil {
				t.Fatal(err)
			}
			// Reuse both bodies and the pooled frame, as the next message would.
			copy(body, "XXXXXXX")
			copy(req, "YYYYYYYY")
			other := fixture()
			other.Message.Content = []byte("zzzzzzz")
			if _, err := tpl.Eval(other); err != nil {
				t.Fatal(err)
			}
			switch v := got.(type) {
			case *messageView:
				got = v.Content
			case *root:
				got = v.Message.Content
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("after reuse, result = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestAllocs pins the per-message cost: a condition allocates nothing and a
// lookup allocates only its result, whatever the body size.
func TestAllocs(t *testing.T) {
	env := benchEnv()
	tests := map[string]struct {
		src    string
		allocs float64
	}{
		"startsWith condition": {src: "{#message.content.startsWith('vip:')}", allocs: 0},
		"operator condition":   {src: "{#message.content startsWith 'vip:'}", allocs: 0},
		"contains condition":   {src: "{#message.content.contains('xxx')}", allocs: 0},
		"constant matches":     {src: "{#message.content.matches('vip:x*')}", allocs: 0},
		"header present":       {src: "{#message.headers['x-tenant'] != null}", allocs: 0},
		"metadata condition":   {src: "{#message.metadata['topic'] == 'orders'}", allocs: 0},
		"attribute condition":  {src: "{#message.attributes['k'] == 'v' && context.attributes['count'] > 2}", allocs: 0},
		"length condition":     {src: "{#message.contentLength > 100}", allocs: 0},
		"header value":         {src: "{#message.headers['x-tenant'][0]}", allocs: 1},
		"path parameter":       {src: "{#request.pathParams['newTopic']}", allocs: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tpl := MustCompile(tc.src)
			if _, err := tpl.Eval(env); err != nil {
				t.Fatal(err)
			}
			got := testing.AllocsPerRun(200, func() {
				if _, err := tpl.Eval(env); err != nil {
					t.Fatal(err)
				}
			})
			if got > tc.allocs {
				t.Fatalf("%s: %v allocations per evaluation, want at most %v", tc.src, got, tc.allocs)
			}
		})
	}
}

func TestSplitJava(t *testing.T) {
	tests := map[string]struct {
		in, sep string
		want    []string
	}{
		"trailing empties dropped": {in: "a,b,,", sep: ",", want: []string{"a", "b"}},
		"leading empty kept":       {in: ",a", sep: ",", want: []string{"", "a"}},
		"no separator":             {in: "abc", sep: ",", want: []string{"abc"}},
		"empty input":              {in: "", sep: ",", want: []string{""}},
		"only separators":          {in: ",,", sep: ",", want: []string{}},
		"regex":                    {in: "a.b", sep: `\.`, want: []string{"a", "b"}},
		"multi-char literal":       {in: "a::b", sep: "::", want: []string{"a", "b"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := splitFn(tc.in, tc.sep)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("split(%q, %q) = %#v, want %#v", tc.in, tc.sep, got, tc.want)
			}
		})
	}
}
