package el

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

func fixture() Env {
	return Env{
		Request: &gateway.Request{
			ID:               "req-1",
			TransactionID:    "tx-1",
			ClientIdentifier: "client-1",
			Method:           "POST",
			Path:             "/kafka/orders",
			ContextPath:      "/kafka",
			PathInfo:         "/orders",
			Headers: gateway.Headers{
				"X-Key":                          {"k1", "k2"},
				"X-Topic-Override-Request-Level": {"topic-a"},
				"X":                              {"x-value"},
				"Content-Type":                   {"application/json"},
			},
			Params:        map[string][]string{"q": {"one", "two"}, "Case": {"c"}},
			PathParams:    map[string]string{"newTopic": "dyn-topic"},
			RemoteAddress: "10.0.0.7",
			Body:          []byte(`{"a":"alpha","b":{"c":[10,2.5,"x",{"d":true}]},"n":12345678901234,"big":1e21,"z":null}`),
		},
		Attributes: map[string]any{
			"gravitee.attribute.kafka.oauthbearer.token": "tok-123",
			"tok":    "secret-token",
			"name":   "plain",
			"topics": []string{"t1", "t2"},
			"count":  3,
		},
		Message: &gateway.Message{
			ID:      "orders@0#42",
			Content: []byte(`{"a":"from-message"}`),
			Headers: gateway.Headers{"Content-Type": {"text/plain"}, "dup": {"1", "2"}},
			Metadata: map[string]any{
				"key":             "record-key",
				"topic":           "orders",
				"partition":       0,
				"offset":          int64(42),
				"sourceTimestamp": int64(1700000000000),
			},
			Attributes: map[string]any{"k": "attr-value", "b": 1},
		},
		API: map[string]any{"id": "kafka-api", "name": "Kafka API"},
	}
}

func TestEval(t *testing.T) {
	noMsgID := fixture()
	noMsgID.Message.ID = ""
	errMsg := fixture()
	errMsg.Message.Error = &gateway.Failure{Status: 500, Message: "boom"}
	emptyEnv := Env{}

	tests := map[string]struct {
		src  string
		env  *Env // nil means fixture()
		want any
	}{
		// #request
		"request id":                    {src: "{#request.id}", want: "req-1"},
		"request transactionId":         {src: "{#request.transactionId}", want: "tx-1"},
		"request method":                {src: "{#request.method}", want: "POST"},
		"request path":                  {src: "{#request.path}", want: "/kafka/orders"},
		"request contextPath":           {src: "{#request.contextPath}", want: "/kafka"},
		"request pathInfo":              {src: "{#request.pathInfo}", want: "/orders"},
		"request remoteAddress":         {src: "{#request.remoteAddress}", want: "10.0.0.7"},
		"request clientIdentifier":      {src: "{#request.clientIdentifier}", want: "client-1"},
		"request content":               {src: "{#request.content}", want: string(fixture().Request.Body)},
		"request headers list":          {src: "{#request.headers['X-Key']}", want: []string{"k1", "k2"}},
		"request header first":          {src: "{#request.headers['X-Key'][0]}", want: "k1"},
		"request header lower case":     {src: "{#request.headers['x-key'][0]}", want: "k1"},
		"request header upper case":     {src: "{#request.headers['X-KEY'][1]}", want: "k2"},
		"request header dot":            {src: "{#request.headers.X[0]}", want: "x-value"},
		"request header double quotes":  {src: `{#request.headers["x-key"][0]}`, want: "k1"},
		"request header missing":        {src: "{#request.headers['Missing']}", want: nil},
		"request header safe nav":       {src: "{#request?.headers['x-key'][0]}", want: "k1"},
		"request headers whole":         {src: "{#request.headers != null}", want: true},
		"request params":                {src: "{#request.params['q']}", want: []string{"one", "two"}},
		"request params first":          {src: "{#request.params['q'][0]}", want: "one"},
		"request params case-sensitive": {src: "{#request.params['case']}", want: nil},
		"request params dot":            {src: "{#request.params.q[1]}", want: "two"},
		"request pathParams":            {src: "{#request.pathParams['newTopic']}", want: "dyn-topic"},
		"request pathParams dot":        {src: "{#request.pathParams.newTopic}", want: "dyn-topic"},
		"request pathParams missing":    {src: "{#request.pathParams['nope'] == null}", want: true},
		"request absent header in text": {src: "a{#request.headers['Missing']}b", want: "ab"},

		// #context
		"context attribute":           {src: "{#context.attributes['gravitee.attribute.kafka.oauthbearer.token']}", want: "tok-123"},
		"context attribute dot":       {src: "{#context.attributes.name}", want: "plain"},
		"context attribute missing":   {src: "{#context.attributes['nope']}", want: nil},
		"context attribute list":      {src: "{#context.attributes['topics']}", want: []string{"t1", "t2"}},
		"context attribute number":    {src: "{#context.attributes['count'] + 1}", want: 4},
		"context attributes nil map":  {src: "{#context.attributes['x']}", env: &emptyEnv, want: nil},
		"context attribute is absent": {src: "{#context.attributes['nope'] == null}", want: true},

		// #message
		"message id":                  {src: "{#message.id}", want: "orders@0#42"},
		"message id null":             {src: "{#message.id}", env: &noMsgID, want: nil},
		"message id null test":        {src: "{#message.id == null}", env: &noMsgID, want: true},
		"message content":             {src: "{#message.content}", want: `{"a":"from-message"}`},
		"message contentLength":       {src: "{#message.contentLength}", want: 20},
		"message headers":             {src: "{#message.headers['content-type']}", want: []string{"text/plain"}},
		"message header first":        {src: "{#message.headers['CONTENT-TYPE'][0]}", want: "text/plain"},
		"message header missing":      {src: "{#message.headers['nope']}", want: nil},
		"message metadata dot":        {src: "{#message.metadata.key}", want: "record-key"},
		"message metadata index":      {src: "{#message.metadata['key']}", want: "record-key"},
		"message metadata topic":      {src: "{#message.metadata.topic}", want: "orders"},
		"message metadata partition":  {src: "{#message.metadata.partition}", want: 0},
		"message metadata offset":     {src: "{#message.metadata['offset']}", want: int64(42)},
		"message metadata missing":    {src: "{#message.metadata['nope']}", want: nil},
		"message attribute":           {src: "{#message.attributes['k']}", want: "attr-value"},
		"message attribute dot":       {src: "{#message.attributes.k}", want: "attr-value"},
		"message attributeNames":      {src: "{#message.attributeNames}", want: []string{"b", "k"}},
		"message error false":         {src: "{#message.error}", want: false},
		"message error true":          {src: "{#message.error}", env: &errMsg, want: true},
		"message jsonPath":            {src: "{#jsonPath(#message.content, '$.a')}", want: "from-message"},
		"message whole root via let":  {src: "{#let m = message; m.content}", want: `{"a":"from-message"}`},
		"message content via env var": {src: "{#$env.message.content}", want: `{"a":"from-message"}`},

		// #api
		"api id":   {src: "{#api.id}", want: "kafka-api"},
		"api name": {src: "{#api.name}", want: "Kafka API"},

		// #jsonPath
		"jsonPath field":        {src: "{#jsonPath(#request.content,'$.a')}", want: "alpha"},
		"jsonPath nested index": {src: "{#jsonPath(#request.content, '$.b.c[1]')}", want: 2.5},
		"jsonPath int":          {src: "{#jsonPath(#request.content, '$.b.c[0]')}", want: 10},
		"jsonPath big int":      {src: "{#jsonPath(#request.content, '$.n')}", want: 12345678901234},
		"jsonPath bracket":      {src: `{#jsonPath(#request.content, "$['b']['c'][3].d")}`, want: true},
		"jsonPath negative":     {src: "{#jsonPath(#request.content, '$.b.c[-2]')}", want: "x"},
		"jsonPath missing":      {src: "{#jsonPath(#request.content, '$.nope.deeper')}", want: nil},
		"jsonPath null value":   {src: "{#jsonPath(#request.content, '$.z')}", want: nil},
		"jsonPath object":       {src: "{#jsonPath(#request.content, '$.b.c[3]')}", want: map[string]any{"d": true}},
		"jsonPath chained":      {src: "{#jsonPath(jsonPath(#request.content, '$.b'), '$.c[2]')}", want: "x"},
		"jsonPath dynamic path": {src: "{#jsonPath(#request.content, '$.' + 'a')}", want: "alpha"},

		// SpEL forms from docs/behaviour.md section 6
		"ref topic override":  {src: "{#request.headers['X-Topic-Override-Request-Level'][0]}", want: "topic-a"},
		"ref header present":  {src: "{#request.headers['X'] != null}", want: true},
		"ref header absent":   {src: "{#request.headers['Y'] != null}", want: false},
		"ref oauth token":     {src: "{#context.attributes['gravitee.attribute.kafka.oauthbearer.token']}", want: "tok-123"},
		"ref message content": {src: "{#message.content}", want: `{"a":"from-message"}`},
		"ref metadata key":    {src: "{#message.metadata.key}", want: "record-key"},
		"ref metadata index":  {src: "{#message.metadata['key']}", want: "record-key"},
		"ref content-type":    {src: "{#message.headers['content-type']}", want: []string{"text/plain"}},
		"ref message attr":    {src: "{#message.attributes['k']}", want: "attr-value"},
		"ref jsonPath":        {src: "{#jsonPath(#request.content,'$.a')}", want: "alpha"},
		"ref path param":      {src: "{#request.pathParams['newTopic']}", want: "dyn-topic"},

		// SpEL operators and literals
		"null literal":           {src: "{#null}", want: nil},
		"NULL upper case":        {src: "{#request.headers['nope'] == NULL}", want: true},
		"eq":                     {src: "{#request.method eq 'POST'}", want: true},
		"ne":                     {src: "{#request.method ne 'POST'}", want: false},
		"lt gt le ge":            {src: "{#1 lt 2 and 2 gt 1 and 2 le 2 and 3 ge 4}", want: false},
		"word ops upper":         {src: "{#1 LT 2 AND NOT (1 GT 2)}", want: true},
		"div mod":                {src: "{#7 div 2 + 7 mod 2}", want: 4.5},
		"symbols":                {src: "{#!(1 == 2) && (1 != 2 || false)}", want: true},
		"or word":                {src: "{#false or true}", want: true},
		"ternary":                {src: "{#request.headers['X'] != null ? request.headers['X'][0] : 'none'}", want: "x-value"},
		"ternary null branch":    {src: "{#request.headers['Y'] != null ? 'yes' : null}", want: nil},
		"elvis":                  {src: "{#request.headers['Y'] ?: 'fallback'}", want: "fallback"},
		"matches whole":          {src: "{#request.method matches 'PO.*'}", want: true},
		"matches is anchored":    {src: "{#request.method matches 'OS'}", want: false},
		"matches backslash":      {src: `{#request.pathInfo matches '/\w+'}`, want: true},
		"matches dynamic":        {src: "{#'abc' matches 'a' + 'b'}", want: false},
		"matches on null":        {src: "{#request.headers['nope'] matches 'a'}", want: false},
		"single quoted escape":   {src: "{#'it''s'}", want: "it's"},
		"double quoted escape":   {src: `{#"say ""hi"""}`, want: `say "hi"`},
		"backslash is literal":   {src: `{#'a\nb'}`, want: `a\nb`},
		"no rewrite in string":   {src: "{#'#request null eq and'}", want: "#request null eq and"},
		"braces in string":       {src: "{#'}{'}", want: "}{"},
		"string concat":          {src: "{#'topic-' + request.headers['x-key'][0]}", want: "topic-k1"},
		"inline map":             {src: "{#{'a': 1, b: {'c': 2}}}", want: map[string]any{"a": 1, "b": map[string]any{"c": 2}}},
		"inline map index":       {src: "{#{'a': 1}['a']}", want: 1},
		"inline list":            {src: "{#{1, 2, 3}}", want: []any{1, 2, 3}},
		"inline list ternary":    {src: "{#{true ? 1 : 2}}", want: []any{1}},
		"empty list":             {src: "{#{}}", want: []any{}},
		"empty map":              {src: "{#{:}}", want: map[string]any{}},
		"long suffix":            {src: "{#1L + 1}", want: 2},
		"float suffix":           {src: "{#1f}", want: 1.0},
		"hex":                    {src: "{#0x10}", want: 16},
		"expr builtin":           {src: "{#upper(request.method)}", want: "POST"},
		"expr builtin len":       {src: "{#len(request.headers['x-key'])}", want: 2},
		"expr predicate":         {src: "{#filter(request.headers['x-key'], # != 'k1')}", want: []any{"k2"}},
		"unicode string":         {src: "{#'héllo'}", want: "héllo"},
		"leading space":          {src: "{# request.id }", want: "req-1"},
		"root without hash":      {src: "{#request.id == #request.id}", want: true},
		"attribute in condition": {src: "{#context.attributes['count'] > 2}", want: true},

		// Templates
		"literal":              {src: "plain text", want: "plain text"},
		"literal braces":       {src: "{json: true} #not-el {", want: "{json: true} #not-el {"},
		"empty":                {src: "", want: ""},
		"mixed":                {src: "prefix-{#request.headers['X'][0]}-suffix", want: "prefix-x-value-suffix"},
		"two segments":         {src: "{#request.method} {#request.path}", want: "POST /kafka/orders"},
		"adjacent segments":    {src: "{#request.method}{#request.id}", want: "POSTreq-1"},
		"mixed list":           {src: "topics={#context.attributes['topics']}", want: "topics=t1,t2"},
		"mixed bool":           {src: "x={#1 == 1}", want: "x=true"},
		"mixed number":         {src: "n={#2 * 3}", want: "n=6"},
		"mixed map literal":    {src: "m={#{'a':1}['a']}!", want: "m=1!"},
		"text around braces":   {src: "{x}{#request.id}{y}", want: "{x}req-1{y}"},
		"JAAS oauthbearer":     {src: `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token="{#context.attributes['tok']}";`, want: `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token="secret-token";`},
		"JAAS plain two":       {src: `org.apache.kafka.common.security.plain.PlainLoginModule required username="{#request.headers['x-key'][0]}" password="{#context.attributes['tok']}";`, want: `org.apache.kafka.common.security.plain.PlainLoginModule required username="k1" password="secret-token";`},
		"quote then segment":   {src: `it's {#request.id}`, want: "it's req-1"},
		"multi-line":           {src: "a\n{#request.id}\nb", want: "a\nreq-1\nb"},
		"no request for const": {src: "{#1 + 1}", env: &emptyEnv, want: 2},
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
			// The convenience function must agree with the compiled form.
			got2, err := Eval(tc.src, env)
			if err != nil || !reflect.DeepEqual(got2, tc.want) {
				t.Fatalf("el.Eval(%q) = %#v, %v; want %#v", tc.src, got2, err, tc.want)
			}
		})
	}
}

func TestEvalString(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string
	}{
		"nil":             {src: "{#null}", want: ""},
		"missing header":  {src: "{#request.headers['nope']}", want: ""},
		"string":          {src: "{#request.id}", want: "req-1"},
		"list joined":     {src: "{#request.headers['X-Key']}", want: "k1,k2"},
		"any list joined": {src: "{#{1, 'a', true}}", want: "1,a,true"},
		"bool":            {src: "{#1 > 2}", want: "false"},
		"int":             {src: "{#40 + 2}", want: "42"},
		"int64":           {src: "{#message.metadata.sourceTimestamp}", want: "1700000000000"},
		"integral float":  {src: "{#jsonPath(#request.content, '$.big')}", want: "1000000000000000000000"},
		"float":           {src: "{#jsonPath(#request.content, '$.b.c[1]')}", want: "2.5"},
		"float division":  {src: "{#10 / 4}", want: "2.5"},
		"integral div":    {src: "{#10 / 5}", want: "2"},
		"big json int":    {src: "{#jsonPath(#request.content, '$.n')}", want: "12345678901234"},
		"map as json":     {src: "{#jsonPath(#request.content, '$.b.c[3]')}", want: `{"d":true}`},
		"mixed":           {src: "t-{#request.headers['x-key']}-{#null}-{#1.5}", want: "t-k1,k2--1.5"},
		"literal":         {src: "just text", want: "just text"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := MustCompile(tc.src).EvalString(fixture())
			if err != nil {
				t.Fatalf("EvalString(%q): %v", tc.src, err)
			}
			if got != tc.want {
				t.Fatalf("EvalString(%q) = %q, want %q", tc.src, got, tc.want)
			}
			got2, err := EvalString(tc.src, fixture())
			if err != nil || got2 != tc.want {
				t.Fatalf("el.EvalString(%q) = %q, %v; want %q", tc.src, got2, err, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := map[string]struct {
		src    string
		column int
		expr   string
		msg    string
	}{
		"unterminated":               {src: "abc {#request.id", column: 5, expr: "{#request.id", msg: "unterminated expression"},
		"unterminated after segment": {src: "{#request.id}-{#x", column: 15, expr: "{#x", msg: "unterminated expression"},
		"unterminated nested brace":  {src: "{#{'a':1}", column: 1, msg: "unterminated expression"},
		"unterminated string":        {src: "x{#'abc}", column: 4, msg: "unterminated string literal"},
		"empty":                      {src: "a{#}b", column: 2, expr: "{#}", msg: "empty expression"},
		"blank":                      {src: "{#  }", column: 1, msg: "empty expression"},
		"unknown field":              {src: "x-{#request.headres['X'][0]}", column: 13, expr: "{#request.headres['X'][0]}", msg: "has no field headres"},
		"unknown root":               {src: "{#secrets.get('/vault/x')}", column: 3, msg: "unknown name secrets"},
		"unknown message field":      {src: "{#message.body}", column: 11, msg: "no field body"},
		"syntax error":               {src: "{#request.id ==}", column: 16, msg: "unexpected token EOF"},
		"bad regexp":                 {src: "{#request.id matches '('}", column: 14, msg: "missing closing )"},
		"bad jsonPath":               {src: "{#jsonPath(#request.content, 'a.b')}", column: 30, msg: "must start with '$'"},
		"unsupported jsonPath":       {src: "{#jsonPath(#request.content, '$..a')}", column: 30, msg: "unsupported"},
		"header key not string":      {src: "{#request.headers[1]}", column: 19, msg: "to index headers"},
		"multibyte before error":     {src: "héllo {#request.nope}", column: 17, msg: "no field nope"},
		"too long":                   {src: "ab{#'" + strings.Repeat("x", 20000) + "'}", column: 3, msg: "longer than"},
		"second segment":             {src: "{#request.id}{#api.id +}", column: 24, expr: "{#api.id +}"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(tc.src)
			if err == nil {
				t.Fatalf("Compile(%q) succeeded", tc.src)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) error %T is not *Error: %v", tc.src, err, err)
			}
			if e.Column != tc.column {
				t.Errorf("column = %d, want %d (%v)", e.Column, tc.column, err)
			}
			if tc.expr != "" && e.Expr != tc.expr {
				t.Errorf("expr = %q, want %q", e.Expr, tc.expr)
			}
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("msg = %q, want it to contain %q", e.Msg, tc.msg)
			}
			if e.Template != tc.src {
				t.Errorf("template = %q, want %q", e.Template, tc.src)
			}
			for _, part := range []string{shorten(e.Expr), "column"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("Error() = %.200q, does not name %.200q", err.Error(), part)
				}
			}
			if _, err := Eval(tc.src, fixture()); err == nil {
				t.Errorf("el.Eval(%q) succeeded", tc.src)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	noMsg := fixture()
	noMsg.Message = nil
	noReq := fixture()
	noReq.Request = nil
	badBody := fixture()
	badBody.Request.Body = []byte("not json")

	tests := map[string]struct {
		src    string
		env    Env
		column int
		msg    string
	}{
		"index missing header":  {src: "{#request.headers['Missing'][0]}", env: fixture(), column: 29, msg: "cannot fetch 0"},
		"index out of range":    {src: "v={#request.headers['X'][3]}", env: fixture(), column: 25, msg: "out of range"},
		"message outside phase": {src: "{#message.content}", env: noMsg, column: 3},
		"message metadata":      {src: "{#message.metadata['key']}", env: noMsg, column: 3},
		"no request":            {src: "{#request.id}", env: noReq, column: 3},
		"no request headers":    {src: "{#request.headers['x'][0]}", env: noReq, column: 3},
		"jsonPath not json":     {src: "{#jsonPath(#request.content, '$.a')}", env: badBody, column: 3, msg: "not JSON"},
		"jsonPath null":         {src: "{#jsonPath(null, '$.a')}", env: fixture(), column: 3, msg: "null"},
		"mixed template":        {src: "a-{#request.headers['Missing'][0]}-b", env: fixture(), column: 31, msg: "cannot fetch"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tpl, err := Compile(tc.src)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tc.src, err)
			}
			_, err = tpl.Eval(tc.env)
			if err == nil {
				t.Fatalf("Eval(%q) succeeded", tc.src)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if e.Column != tc.column {
				t.Errorf("column = %d, want %d (%v)", e.Column, tc.column, err)
			}
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("msg = %q, want it to contain %q", e.Msg, tc.msg)
			}
			if _, err := tpl.EvalString(tc.env); err == nil {
				t.Errorf("EvalString(%q) succeeded", tc.src)
			}
		})
	}
}

func TestTemplateAccessors(t *testing.T) {
	tests := map[string]struct {
		src     string
		literal bool
		hasEL   bool
	}{
		"plain":        {src: "topic-a", literal: true},
		"empty":        {src: "", literal: true},
		"braces":       {src: "{a} #b", literal: true},
		"hash brace":   {src: "#{request.id}", literal: true},
		"segment":      {src: "{#request.id}", hasEL: true},
		"mixed":        {src: "a{#request.id}b", hasEL: true},
		"JAAS":         {src: `x required access_token="{#context.attributes['tok']}";`, hasEL: true},
		"unterminated": {src: "a{#b", hasEL: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := HasEL(tc.src); got != tc.hasEL {
				t.Errorf("HasEL(%q) = %v, want %v", tc.src, got, tc.hasEL)
			}
			tpl, err := Compile(tc.src)
			if err != nil {
				if tc.hasEL && !tc.literal {
					return // unterminated: covered by TestCompileErrors
				}
				t.Fatalf("Compile(%q): %v", tc.src, err)
			}
			if tpl.IsLiteral() != tc.literal {
				t.Errorf("IsLiteral() = %v, want %v", tpl.IsLiteral(), tc.literal)
			}
			if tpl.Source() != tc.src {
				t.Errorf("Source() = %q, want %q", tpl.Source(), tc.src)
			}
		})
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustCompile did not panic on a bad template")
		}
	}()
	MustCompile("{#")
}

func TestNilTemplate(t *testing.T) {
	var tpl *Template
	if _, err := tpl.Eval(Env{}); err == nil {
		t.Fatal("Eval on nil template succeeded")
	}
}

// TestUsage checks that bodies are converted to strings only when read, since
// that copy is the one cost per evaluation that grows with the payload.
func TestUsage(t *testing.T) {
	tests := map[string]struct {
		src  string
		want usage
	}{
		"header only":      {src: "{#request.headers['x'][0]}", want: usage{request: true}},
		"request content":  {src: "{#request.content}", want: usage{request: true, reqContent: true}},
		"jsonPath":         {src: "{#jsonPath(#request.content, '$.a')}", want: usage{request: true, reqContent: true}},
		"message content":  {src: "{#message.content}", want: usage{message: true, msgContent: true}},
		"attribute names":  {src: "{#message.attributeNames}", want: usage{message: true, msgNames: true}},
		"message metadata": {src: "{#message.metadata.key}", want: usage{message: true}},
		"whole request":    {src: "{#let r = request; r.id}", want: usage{request: true, reqContent: true}},
		"whole message":    {src: "{#let m = message; m.id}", want: usage{message: true, msgContent: true, msgNames: true}},
		"env":              {src: "{#$env.api}", want: usage{true, true, true, true, true}},
		"api only":         {src: "{#api.id}", want: usage{}},
		"merged":           {src: "{#request.content}{#message.content}", want: usage{request: true, message: true, reqContent: true, msgContent: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MustCompile(tc.src).use; got != tc.want {
				t.Fatalf("usage = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConcurrentEval(t *testing.T) {
	tpl := MustCompile("p-{#request.headers['x-key'][0]}-{#message.metadata.key}")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				s, err := tpl.EvalString(fixture())
				if err != nil || s != "p-k1-record-key" {
					t.Errorf("EvalString = %q, %v", s, err)
					return
				}
				if _, err := EvalString("{#request.id}", fixture()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkEvalHeader(b *testing.B) {
	tpl := MustCompile("{#request.headers['X-Key'][0]}")
	env := fixture()
	b.ReportAllocs()
	for b.Loop() {
		v, err := tpl.Eval(env)
		if err != nil || v != "k1" {
			b.Fatalf("Eval = %v, %v", v, err)
		}
	}
}

func BenchmarkEvalHeaderMixed(b *testing.B) {
	tpl := MustCompile("prefix-{#request.headers['x-key'][0]}-suffix")
	env := fixture()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.EvalString(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalCached(b *testing.B) {
	env := fixture()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Eval("{#request.headers['X-Key'][0]}", env); err != nil {
			b.Fatal(err)
		}
	}
}
