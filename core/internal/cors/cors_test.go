package cors

import (
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func mustCORS(t *testing.T, o Options) *Policy {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return c
}

// corsHeaderNames are the response headers the CORS tests compare.
var corsHeaderNames = []string{
	"Vary", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers", "X-Other",
}

// corsHeaders returns the compared response headers that are present, each
// as its values joined with " | " (so a header sent twice shows).
func corsHeaders(r *fasthttp.Response) map[string]string {
	out := map[string]string{}
	for _, name := range corsHeaderNames {
		var vs []string
		for _, v := range r.Header.PeekAll(name) {
			vs = append(vs, string(v))
		}
		if len(vs) > 0 {
			out[name] = strings.Join(vs, " | ")
		}
	}
	return out
}

func TestCORSAllowsOrigin(t *testing.T) {
	exact := Options{AllowOrigins: []string{"https://app.example.com", "http://localhost:3000", "null"}, AllowMethods: []string{"GET"}}
	upper := Options{AllowOrigins: []string{"HTTPS://App.Example.COM"}, AllowMethods: []string{"GET"}}
	any := Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET"}}
	regex := Options{AllowOriginRegex: []string{`https://[a-z0-9-]+\.example\.com`, `http://localhost:\d+`}, AllowMethods: []string{"GET"}}
	alternation := Options{AllowOriginRegex: []string{`https://a\.example\.com|https://b\.example\.com`}, AllowMethods: []string{"GET"}}
	tests := map[string]struct {
		opts   Options
		origin string
		want   bool
	}{
		"exact":                             {exact, "https://app.example.com", true},
		"exact with port":                   {exact, "http://localhost:3000", true},
		"exact, other port":                 {exact, "http://localhost:3001", false},
		"exact, other scheme":               {exact, "http://app.example.com", false},
		"exact, subdomain":                  {exact, "https://x.app.example.com", false},
		"exact, suffix added":               {exact, "https://app.example.com.evil.net", false},
		"exact, trailing slash":             {exact, "https://app.example.com/", false},
		"exact, upper-case scheme and host": {exact, "HTTPS://APP.EXAMPLE.COM", true},
		"configured upper case":             {upper, "https://app.example.com", true},
		"null origin listed":                {exact, "null", true},
		"null origin not listed":            {upper, "null", false},
		"no origin":                         {exact, "", false},
		"wildcard":                          {any, "https://anything.example.org", true},
		"wildcard, null":                    {any, "null", true},
		"wildcard, no origin":               {any, "", false},
		"wildcard, space inside":            {any, "https://a b", false},
		"wildcard, non-ascii":               {any, "https://é.example", false},
		"regex":                             {regex, "https://app-2.example.com", true},
		"regex, second pattern":             {regex, "http://localhost:5173", true},
		"regex is case-insensitive":         {regex, "HTTPS://APP.EXAMPLE.COM", true},
		"regex matches the whole origin":    {regex, "https://app.example.com.evil.net", false},
		"regex, prefix added":               {regex, "https://evil.net/https://app.example.com", false},
		"regex, other domain":               {regex, "https://example.com", false},
		"regex alternation is anchored":     {alternation, "https://b.example.com.evil.net", false},
		"regex alternation, second branch":  {alternation, "https://b.example.com", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := mustCORS(t, tc.opts)
			if got := c.AllowsOrigin([]byte(tc.origin)); got != tc.want {
				t.Fatalf("AllowsOrigin(%q) = %v, want %v", tc.origin, got, tc.want)
			}
		})
	}
}

func TestNewCORSErrors(t *testing.T) {
	get := []string{"GET"}
	tests := map[string]struct {
		opts Options
		want []string // substrings of the error; none means valid
	}{
		"valid":                   {Options{AllowOrigins: []string{"https://a.example", "null", "http://[::1]:8080"}, AllowMethods: get}, nil},
		"valid regex only":        {Options{AllowOriginRegex: []string{`https://.*`}, AllowMethods: []string{"*"}}, nil},
		"no origin":               {Options{AllowMethods: get}, []string{"no origin is allowed"}},
		"no method":               {Options{AllowOrigins: []string{"*"}}, []string{"no method is allowed"}},
		"trailing slash":          {Options{AllowOrigins: []string{"https://a.example/"}, AllowMethods: get}, []string{`"https://a.example/" is not an origin`}},
		"no scheme":               {Options{AllowOrigins: []string{"a.example"}, AllowMethods: get}, []string{`"a.example" is not an origin`}},
		"pattern in exact list":   {Options{AllowOrigins: []string{"https://*.example.com"}, AllowMethods: get}, []string{"is not an origin"}},
		"bad port":                {Options{AllowOrigins: []string{"https://a.example:x"}, AllowMethods: get}, []string{"is not an origin"}},
		"bad regex":               {Options{AllowOriginRegex: []string{"https://(a"}, AllowMethods: get}, []string{`allow_origin_regex "https://(a"`, "missing closing )"}},
		"empty regex":             {Options{AllowOriginRegex: []string{""}, AllowMethods: get}, []string{"the pattern is empty"}},
		"credentials with *":      {Options{AllowOrigins: []string{"*"}, AllowMethods: get, AllowCredentials: true}, []string{`allow_credentials cannot be combined with the "*" origin`}},
		"credentials expose *":    {Options{AllowOrigins: []string{"https://a.example"}, AllowMethods: get, ExposeHeaders: []string{"*"}, AllowCredentials: true}, []string{`expose_headers "*"`}},
		"method not a token":      {Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET POST"}}, []string{`"GET POST" is not an HTTP method`}},
		"header not a token":      {Options{AllowOrigins: []string{"*"}, AllowMethods: get, AllowHeaders: []string{"X-A:"}}, []string{`"X-A:" is not a header name`}},
		"every problem reported":  {Options{AllowOrigins: []string{"x", "y"}}, []string{`"x" is not`, `"y" is not`, "no method"}},
		"expose * without creds":  {Options{AllowOrigins: []string{"*"}, AllowMethods: get, ExposeHeaders: []string{"*"}}, nil},
		"credentials with a list": {Options{AllowOrigins: []string{"https://a.example"}, AllowMethods: get, AllowCredentials: true}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(tc.opts)
			if len(tc.want) == 0 {
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v; want a policy", c, err)
				}
				return
			}
			if err == nil || c != nil {
				t.Fatalf("New = %v, %v; want an error", c, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCORSPreflight(t *testing.T) {
	base := Options{
		AllowOrigins:  []string{"https://app.example.com"},
		AllowMethods:  []string{"GET", "POST"},
		AllowHeaders:  []string{"Last-Event-ID", "X-Gravitee-Client-Identifier"},
		ExposeHeaders: []string{"X-Gravitee-Transaction-Id"},
		MaxAgeSeconds: 3600,
	}
	noMaxAge := base
	noMaxAge.MaxAgeSeconds = -1
	credentials := base
	credentials.AllowCredentials = true
	wildcards := Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, MaxAgeSeconds: -1}
	credWildcards := Options{AllowOriginRegex: []string{`https://.*\.example\.com`}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, MaxAgeSeconds: 0, AllowCredentials: true}
	const vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

	tests := map[string]struct {
		opts    Options
		method  string
		headers [][2]string
		handled bool
		status  int
		want    map[string]string
		body    string
	}{
		"allowed": {
			base, "OPTIONS", [][2]string{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "GET"}},
			true, 200, map[string]string{
				"Vary":                         vary,
				"Access-Control-Allow-Origin":  "https://app.example.com",
				"Access-Control-Allow-Methods": "GET, POST",
				"Access-Control-Allow-Headers": "Last-Event-ID, X-Gravitee-Client-Identifier",
				"Access-Control-Max-Age":       "3600",
			}, "",
		},
		"origin echoed as sent": {
			base, "OPTIONS", [][2]string{{"Origin", "HTTPS://App.Example.com"}, {"Access-Control-Request-Method", "POST"}},
			true, 200, map[string]string{
				"Vary":                         vary,
				"Access-Control-Allow-Origin":  "HTTPS://App.Example.com",
				"Access-Control-Allow-Methods": "GET, POST",
				"Access-Control-Allow-Headers": "Last-Event-ID, X-Gravitee-Client-Identifier",
				"Access-Control-Max-Age":       "3600",
			}, "",
		},
		"requested headers allowed, any case and spacing": {
			noMaxAge, "OPTIONS", [][2]string{
				{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "GET"},
				{"Access-Control-Request-Headers", "last-event-id,x-gravitee-client-identifier ,  "},
			},
			true, 200, map[string]string{
				"Vary":                         vary,
				"Access-Control-Allow-Origin":  "https://app.example.com",
				"Access-Control-Allow-Methods": "GET, POST",
				"Access-Control-Allow-Headers": "Last-Event-ID, X-Gravitee-Client-Identifier",
			}, "",
		},
		"credentials": {
			credentials, "OPTIONS", [][2]string{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "GET"}},
			true, 200, map[string]string{
				"Vary":                             vary,
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, POST",
				"Access-Control-Allow-Headers":     "Last-Event-ID, X-Gravitee-Client-Identifier",
				"Access-Control-Max-Age":           "3600",
			}, "",
		},
		"wildcards answer what was asked": {
			wildcards, "OPTIONS", [][2]string{
				{"Origin", "https://elsewhere.example"}, {"Access-Control-Request-Method", "PATCH"},
				{"Access-Control-Request-Headers", "authorization, x-a"}, {"Access-Control-Request-Headers", "x-b"},
			},
			true, 200, map[string]string{
				"Vary":                         vary,
				"Access-Control-Allow-Origin":  "https://elsewhere.example",
				"Access-Control-Allow-Methods": "PATCH",
				"Access-Control-Allow-Headers": "authorization, x-a, x-b",
			}, "",
		},
		"wildcard headers, none asked": {
			wildcards, "OPTIONS", [][2]string{{"Origin", "https://elsewhere.example"}, {"Access-Control-Request-Method", "GET"}},
			true, 200, map[string]string{
				"Vary":                         vary,
				"Access-Control-Allow-Origin":  "https://elsewhere.example",
				"Access-Control-Allow-Methods": "GET",
			}, "",
		},
		"credentialed wildcards, max age 0": {
			credWildcards, "OPTIONS", [][2]string{
				{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "DELETE"},
				{"Access-Control-Request-Headers", "authorization"},
			},
			true, 200, map[string]string{
				"Vary":                             vary,
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "DELETE",
				"Access-Control-Allow-Headers":     "authorization",
				"Access-Control-Max-Age":           "0",
			}, "",
		},
		"origin not allowed": {
			base, "OPTIONS", [][2]string{{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}},
			true, 400, map[string]string{"Vary": vary},
			"CORS preflight failed: origin 'https://evil.example' is not allowed",
		},
		"origin not allowed, json": {
			base, "OPTIONS", [][2]string{{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}, {"Accept", "*/*"}},
			true, 400, map[string]string{"Vary": vary},
			`{"message":"CORS preflight failed: origin 'https://evil.example' is not allowed","http_status_code":400}`,
		},
		"method not allowed": {
			base, "OPTIONS", [][2]string{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "PUT"}},
			true, 400, map[string]string{"Vary": vary},
			"CORS preflight failed: method 'PUT' is not allowed",
		},
		"methods are case-sensitive": {
			base, "OPTIONS", [][2]string{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "get"}},
			true, 400, map[string]string{"Vary": vary},
			"CORS preflight failed: method 'get' is not allowed",
		},
		"a requested header not allowed": {
			base, "OPTIONS", [][2]string{
				{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "GET"},
				{"Access-Control-Request-Headers", "last-event-id,x-secret"},
			},
			true, 400, map[string]string{"Vary": vary},
			"CORS preflight failed: request headers 'last-event-id, x-secret' are not allowed",
		},
		"echoed value is bounded and printable": {
			base, "OPTIONS", [][2]string{{"Origin", "https://" + strings.Repeat("a", 300)}, {"Access-Control-Request-Method", "GET"}},
			true, 400, map[string]string{"Vary": vary},
			"CORS preflight failed: origin 'https://" + strings.Repeat("a", 192) + "' is not allowed",
		},
		"not OPTIONS": {
			base, "GET", [][2]string{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "GET"}},
			false, 200, map[string]string{}, "",
		},
		"OPTIONS without Access-Control-Request-Method": {
			base, "OPTIONS", [][2]string{{"Origin", "https://app.example.com"}},
			false, 200, map[string]string{}, "",
		},
		"OPTIONS without Origin": {
			base, "OPTIONS", [][2]string{{"Access-Control-Request-Method", "GET"}},
			false, 200, map[string]string{}, "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := mustCORS(t, tc.opts)
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tc.method)
			ctx.Request.SetRequestURI("/demo")
			for _, h := range tc.headers {
				ctx.Request.Header.Add(h[0], h[1])
			}
			if got := c.Preflight(&ctx); got != tc.handled {
				t.Fatalf("Preflight = %v, want %v", got, tc.handled)
			}
			r := &ctx.Response
			if r.StatusCode() != tc.status {
				t.Errorf("status = %d, want %d", r.StatusCode(), tc.status)
			}
			if got := corsHeaders(r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headers:\n got %q\nwant %q", got, tc.want)
			}
			if got := string(r.Body()); got != tc.body {
				t.Errorf("body = %q, want %q", got, tc.body)
			}
			if tc.status == 400 && r.ConnectionClose() {
				t.Errorf("a refused preflight closes the connection")
			}
		})
	}
}

func TestCORSDecorate(t *testing.T) {
	opts := Options{
		AllowOrigins:  []string{"https://app.example.com"},
		AllowMethods:  []string{"GET"},
		ExposeHeaders: []string{"X-Gravitee-Transaction-Id", "X-Gravitee-Client-Identifier"},
		MaxAgeSeconds: 600,
	}
	credentials := opts
	credentials.AllowCredentials = true
	noExpose := Options{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET"}}

	tests := map[string]struct {
		opts   Options
		before [][2]string // response headers already set
		origin string
		twice  bool
		want   map[string]string
	}{
		"allowed": {
			opts, nil, "https://app.example.com", false, map[string]string{
				"Vary":                          "Origin",
				"Access-Control-Allow-Origin":   "https://app.example.com",
				"Access-Control-Expose-Headers": "X-Gravitee-Transaction-Id, X-Gravitee-Client-Identifier",
			},
		},
		"allowed with credentials": {
			credentials, nil, "https://app.example.com", false, map[string]string{
				"Vary":                             "Origin",
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "X-Gravitee-Transaction-Id, X-Gravitee-Client-Identifier",
			},
		},
		"wildcard echoes the origin, no expose": {
			noExpose, nil, "https://elsewhere.example", false, map[string]string{
				"Vary":                        "Origin",
				"Access-Control-Allow-Origin": "https://elsewhere.example",
			},
		},
		"no origin: only Vary": {
			opts, nil, "", false, map[string]string{"Vary": "Origin"},
		},
		"refused origin: CORS headers removed": {
			opts, [][2]string{
				{"Access-Control-Allow-Origin", "*"}, {"Access-Control-Allow-Credentials", "true"},
				{"Access-Control-Expose-Headers", "X-Secret"}, {"X-Other", "kept"},
			}, "https://evil.example", false, map[string]string{"Vary": "Origin", "X-Other": "kept"},
		},
		"existing Vary kept, Origin added": {
			opts, [][2]string{{"Vary", "Accept"}}, "https://app.example.com", false, map[string]string{
				"Vary":                          "Accept | Origin",
				"Access-Control-Allow-Origin":   "https://app.example.com",
				"Access-Control-Expose-Headers": "X-Gravitee-Transaction-Id, X-Gravitee-Client-Identifier",
			},
		},
		"Vary already naming origin": {
			opts, [][2]string{{"Vary", "accept, origin"}}, "", false, map[string]string{"Vary": "accept, origin"},
		},
		"Vary *": {
			opts, [][2]string{{"Vary", "*"}}, "", false, map[string]string{"Vary": "*"},
		},
		"credentials header from elsewhere removed": {
			opts, [][2]string{{"Access-Control-Allow-Credentials", "true"}}, "https://app.example.com", false, map[string]string{
				"Vary":                          "Origin",
				"Access-Control-Allow-Origin":   "https://app.example.com",
				"Access-Control-Expose-Headers": "X-Gravitee-Transaction-Id, X-Gravitee-Client-Identifier",
			},
		},
		"twice gives the same headers": {
			credentials, nil, "https://app.example.com", true, map[string]string{
				"Vary":                             "Origin",
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "X-Gravitee-Transaction-Id, X-Gravitee-Client-Identifier",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := mustCORS(t, tc.opts)
			var ctx fasthttp.RequestCtx
			for _, h := range tc.before {
				ctx.Response.Header.Add(h[0], h[1])
			}
			c.Decorate(&ctx, []byte(tc.origin))
			if tc.twice {
				c.Decorate(&ctx, []byte(tc.origin))
			}
			if got := corsHeaders(&ctx.Response); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headers:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestCORSStreamingHeaders checks the decorated headers are what a streamed
// response writes first: Decorate before SetBodyStream, as the data path
// does, puts them on the wire with the status line.
func TestCORSStreamingHeaders(t *testing.T) {
	c := mustCORS(t, Options{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"GET"}, AllowCredentials: true})
	var ctx fasthttp.RequestCtx
	c.Decorate(&ctx, []byte("https://app.example.com"))
	ctx.SetContentType("text/event-stream")
	ctx.SetBodyStream(strings.NewReader("data: x\n\n"), -1)
	raw := ctx.Response.String()
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	for _, line := range []string{
		"\r\nVary: Origin\r\n",
		"\r\nAccess-Control-Allow-Origin: https://app.example.com\r\n",
		"\r\nAccess-Control-Allow-Credentials: true\r\n",
	} {
		if !strings.Contains(head+"\r\n", line) {
			t.Errorf("response head lacks %q:\n%s", strings.TrimSpace(line), head)
		}
	}
}

func TestCORSNilIsNoOp(t *testing.T) {
	var c *Policy
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("OPTIONS")
	ctx.Request.Header.Set("Origin", "https://app.example.com")
	ctx.Request.Header.Set("Access-Control-Request-Method", "GET")
	if c.Preflight(&ctx) {
		t.Fatal("nil CORS answered a preflight")
	}
	c.Decorate(&ctx, []byte("https://app.example.com"))
	if got := corsHeaders(&ctx.Response); len(got) != 0 {
		t.Fatalf("nil CORS set headers %q", got)
	}
	if c.AllowsOrigin([]byte("https://app.example.com")) {
		t.Fatal("nil CORS allows an origin")
	}
}

func TestIsOriginSyntaxCORS(t *testing.T) {
	tests := map[string]struct {
		in   string
		want bool
	}{
		"https":               {"https://app.example.com", true},
		"port":                {"http://localhost:8080", true},
		"ipv6":                {"http://[::1]:8080", true},
		"ipv6 no port":        {"http://[2001:db8::1]", true},
		"custom scheme":       {"chrome-extension://abcdef", true},
		"null":                {"null", true},
		"empty":               {"", false},
		"no scheme":           {"app.example.com", false},
		"trailing slash":      {"https://app.example.com/", false},
		"path":                {"https://app.example.com/app", false},
		"query":               {"https://app.example.com?x", false},
		"user info":           {"https://u@app.example.com", false},
		"empty port":          {"https://app.example.com:", false},
		"letters in port":     {"https://app.example.com:8o", false},
		"empty host":          {"https://:80", false},
		"wildcard host":       {"https://*.example.com", false},
		"unclosed ipv6":       {"http://[::1", false},
		"ipv6 junk after":     {"http://[::1]x", false},
		"scheme starts digit": {"1http://a", false},
		"space":               {"https://a b", false},
		"non-ascii":           {"https://é.example", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := isOriginSyntax(tc.in); got != tc.want {
				t.Fatalf("isOriginSyntax(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
