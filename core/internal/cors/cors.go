// Package cors is an API's CORS policy: it answers browser preflights and
// decorates every response (streams included) with the allow headers, as the
// reference gateway's HTTP listener does. The configuration loader validates
// the settings (core/internal/config); the server applies the policy before
// any plugin is called.
package cors

import (
	"github.com/sluice-gw/sluice/core/internal/ascii"
	"github.com/sluice-gw/sluice/core/internal/reply"

	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// CORS request and response header names.
const (
	corsOrigin           = "Origin"
	corsVary             = "Vary"
	corsRequestMethod    = "Access-Control-Request-Method"
	corsRequestHeaders   = "Access-Control-Request-Headers"
	corsAllowOrigin      = "Access-Control-Allow-Origin"
	corsAllowCredentials = "Access-Control-Allow-Credentials"
	corsAllowMethods     = "Access-Control-Allow-Methods"
	corsAllowHeaders     = "Access-Control-Allow-Headers"
	corsExposeHeaders    = "Access-Control-Expose-Headers"
	corsMaxAge           = "Access-Control-Max-Age"
)

// corsPreflightVary is the Vary of a preflight answer: it depends on the
// origin, and, since "*" is answered with what was asked, on the method and
// headers asked for.
const corsPreflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

// Statuses of a preflight answer, as the reference's
// CorsPreflightRequestProcessor gives them: 200 with the allow headers, or
// 400 (Cors.DEFAULT_ERROR_STATUS_CODE, key CORS_PREFLIGHT_FAILED).
const (
	corsPreflightOKStatus     = http.StatusOK
	corsPreflightFailedStatus = http.StatusBadRequest
)

// corsWildcard in an allow list means any origin, method or header.
const corsWildcard = "*"

// corsMaxEchoed bounds how much of a client's header a failure message
// repeats, so a huge header does not become a huge body.
const corsMaxEchoed = 200

// Options are an API's CORS settings, as the configuration's cors block
// gives them (config.CORS, whose loader has validated them and filled the
// defaults). New checks them again, so a bad value is an error, never a
// panic.
type Options struct {
	// AllowOrigins are exact origins ("https://app.example.com"), compared
	// ignoring ASCII case, or "*" for every origin. Optional. Default: none;
	// AllowOrigins and AllowOriginRegex together name at least one origin.
	AllowOrigins []string
	// AllowOriginRegex are RE2 patterns an origin must match as a whole,
	// ignoring case. Optional. Default: none.
	AllowOriginRegex []string
	// AllowMethods are the methods a preflight may ask for, compared as
	// written (HTTP methods are case-sensitive), or "*" for any. Required:
	// at least one.
	AllowMethods []string
	// AllowHeaders are the request headers a preflight may ask for,
	// compared ignoring case, or "*" for any. Optional. Default: none.
	AllowHeaders []string
	// ExposeHeaders are the response headers a page may read besides the
	// CORS-safelisted ones, or "*" for all (without credentials only).
	// Optional. Default: none.
	ExposeHeaders []string
	// MaxAgeSeconds is how long a browser may cache a preflight's answer. A
	// negative value sends no Access-Control-Max-Age (browsers then keep it
	// 5 seconds); 0 forbids caching. Optional. Default: 0.
	MaxAgeSeconds int
	// AllowCredentials lets pages send cookies and HTTP authentication and
	// read the answer. It cannot be combined with the "*" origin, which
	// would hand every site the user's session. Optional. Default: false.
	AllowCredentials bool
}

// Policy is an API's compiled CORS policy. A nil *Policy is a disabled
// policy: Preflight answers nothing and Decorate adds nothing, so the data
// path can call both unconditionally. A Policy is immutable and safe for
// concurrent use.
//
// An allowed origin is always echoed in Access-Control-Allow-Origin, never
// answered with "*", as the reference does; so every response of the API
// carries Vary: Origin, and a shared cache does not serve one origin's
// answer to another.
type Policy struct {
	anyOrigin bool
	// origins are the exact origins, lowercased.
	origins []string
	// regexes match a whole origin, ignoring case.
	regexes []*regexp.Regexp

	anyMethod bool
	methods   []string

	anyHeader bool
	// headers are the allowed request headers, lowercased.
	headers []string

	credentials bool

	// Precomputed header values; empty means the header is not sent.
	allowMethods  string
	allowHeaders  string
	exposeHeaders string
	maxAge        string
}

// New compiles a CORS policy. It reports every problem at once: no
// origin or no method, an origin that is not scheme://host[:port], a pattern
// that does not compile, a method or header name that is not an HTTP token,
// and credentials with the "*" origin or "*" exposed headers.
func New(o Options) (*Policy, error) {
	var errs []error
	c := &Policy{credentials: o.AllowCredentials}

	for _, origin := range o.AllowOrigins {
		switch {
		case origin == corsWildcard:
			c.anyOrigin = true
			if o.AllowCredentials {
				errs = append(errs, errors.New(`allow_credentials cannot be combined with the "*" origin: browsers refuse it, and echoing every origin instead would hand any site the user's session; list the origins`))
			}
		case !isOriginSyntax(origin):
			errs = append(errs, fmt.Errorf(`%q is not an origin: write scheme://host[:port] without a path, or "null"`, origin))
		default:
			c.origins = corsAppendUnique(c.origins, strings.ToLower(origin))
		}
	}
	for _, p := range o.AllowOriginRegex {
		re, err := compileOriginRegex(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("allow_origin_regex %q: %w", p, err))
			continue
		}
		c.regexes = append(c.regexes, re)
	}
	if len(o.AllowOrigins) == 0 && len(o.AllowOriginRegex) == 0 {
		errs = append(errs, errors.New("no origin is allowed: give allow_origins or allow_origin_regex"))
	}

	if len(o.AllowMethods) == 0 {
		errs = append(errs, errors.New("no method is allowed: give allow_methods"))
	}
	for _, m := range o.AllowMethods {
		switch {
		case m == corsWildcard:
			c.anyMethod = true
		case !IsToken(m):
			errs = append(errs, fmt.Errorf("%q is not an HTTP method", m))
		default:
			c.methods = corsAppendUnique(c.methods, m)
		}
	}
	c.allowMethods = strings.Join(c.methods, ", ")

	var allowHeaders []string
	for _, h := range o.AllowHeaders {
		switch {
		case h == corsWildcard:
			c.anyHeader = true
		case !IsToken(h):
			errs = append(errs, fmt.Errorf("%q is not a header name", h))
		default:
			if lower := strings.ToLower(h); !corsContains(c.headers, lower) {
				c.headers = append(c.headers, lower)
				allowHeaders = append(allowHeaders, h)
			}
		}
	}
	c.allowHeaders = strings.Join(allowHeaders, ", ")

	var expose []string
	for _, h := range o.ExposeHeaders {
		switch {
		case h == corsWildcard && o.AllowCredentials:
			errs = append(errs, errors.New(`expose_headers "*" exposes every header only without credentials (browsers read it as a header named "*" when allow_credentials is true); list the headers`))
		case h != corsWildcard && !IsToken(h):
			errs = append(errs, fmt.Errorf("%q is not a header name", h))
		default:
			expose = corsAppendUnique(expose, h)
		}
	}
	c.exposeHeaders = strings.Join(expose, ", ")

	if o.MaxAgeSeconds >= 0 {
		c.maxAge = strconv.Itoa(o.MaxAgeSeconds)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("cors: %w", errors.Join(errs...))
	}
	return c, nil
}

// compileOriginRegex compiles an allow_origin_regex entry the way origins
// are matched: the whole origin (as the reference's Pattern.matches), ignoring
// case (scheme and host are case-insensitive).
func compileOriginRegex(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("the pattern is empty")
	}
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	// The pattern compiles alone, so the group around it stays balanced.
	return regexp.Compile(`(?i)^(?:` + pattern + `)$`)
}

// AllowsOrigin reports whether a request's Origin header value is allowed.
// An empty origin (no header) is never allowed, nor is a value holding bytes
// no browser puts in an origin (spaces, controls, non-ASCII).
func (c *Policy) AllowsOrigin(origin []byte) bool {
	if c == nil || len(origin) == 0 {
		return false
	}
	for _, b := range origin {
		if b <= ' ' || b >= 0x7f {
			return false
		}
	}
	if c.anyOrigin {
		return true
	}
	s := string(origin)
	for _, o := range c.origins {
		if ascii.EqualFold(o, s) {
			return true
		}
	}
	for _, re := range c.regexes {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// Preflight answers a CORS preflight: an OPTIONS request carrying Origin and
// Access-Control-Request-Method. It reports whether it answered; on false
// (any other request, or a nil CORS) ctx is untouched and the request takes
// the normal path.
//
// An allowed preflight gets 200 and no body, with Access-Control-Allow-Origin
// (the origin echoed), -Allow-Methods, -Allow-Headers, -Max-Age and
// -Allow-Credentials as configured; "*" for methods or headers is answered
// with what was asked. A refused one (origin, method or a requested header
// not allowed) gets the reference's failure response with status 400 saying
// what was refused, and no CORS header, so the browser does not send the
// actual request. Preflights never reach entrypoints or policies.
func (c *Policy) Preflight(ctx *fasthttp.RequestCtx) bool {
	if c == nil || !ctx.IsOptions() {
		return false
	}
	origin := ctx.Request.Header.Peek(corsOrigin)
	method := ctx.Request.Header.Peek(corsRequestMethod)
	if len(origin) == 0 || len(method) == 0 {
		return false
	}
	h := &ctx.Response.Header
	h.Del(corsVary)
	h.Set(corsVary, corsPreflightVary)

	if !c.AllowsOrigin(origin) {
		corsRefuse(ctx, "origin", origin, "is")
		return true
	}
	if !c.anyMethod && !corsContains(c.methods, string(method)) {
		corsRefuse(ctx, "method", method, "is")
		return true
	}
	var requested []string
	for _, v := range ctx.Request.Header.PeekAll(corsRequestHeaders) {
		for name := range strings.SplitSeq(string(v), ",") {
			if name = strings.Trim(name, " \t"); name != "" {
				requested = append(requested, name)
			}
		}
	}
	if !c.anyHeader {
		for _, name := range requested {
			if !corsContainsFold(c.headers, name) {
				corsRefuse(ctx, "request headers", []byte(strings.Join(requested, ", ")), "are")
				return true
			}
		}
	}

	ctx.Response.ResetBody()
	ctx.SetStatusCode(corsPreflightOKStatus)
	h.SetBytesV(corsAllowOrigin, origin)
	if c.credentials {
		h.Set(corsAllowCredentials, "true")
	}
	// Browsers read "*" literally in a credentialed preflight, and never as
	// covering Authorization: answering with what was asked works always.
	if c.anyMethod {
		h.SetBytesV(corsAllowMethods, method)
	} else {
		h.Set(corsAllowMethods, c.allowMethods)
	}
	switch {
	case c.anyHeader && len(requested) > 0:
		h.Set(corsAllowHeaders, strings.Join(requested, ", "))
	case !c.anyHeader && c.allowHeaders != "":
		h.Set(corsAllowHeaders, c.allowHeaders)
	}
	if c.maxAge != "" {
		h.Set(corsMaxAge, c.maxAge)
	}
	return true
}

// corsRefuse answers a refused preflight with the gateway's failure format.
func corsRefuse(ctx *fasthttp.RequestCtx, what string, value []byte, verb string) {
	msg := fmt.Sprintf("CORS preflight failed: %s '%s' %s not allowed", what, corsEchoable(value), verb)
	reply.Failure(ctx, reply.Accept(ctx), corsPreflightFailedStatus, msg)
}

// Decorate adds the CORS headers to a response of the API, whole or
// streaming, failure or not; it must run before the headers are sent.
// origin is the request's Origin header value (empty when it has none).
//
// Every response gets Vary: Origin (once, whatever Vary already holds). An
// allowed origin also gets Access-Control-Allow-Origin (echoed),
// Access-Control-Allow-Credentials: true when enabled, and
// Access-Control-Expose-Headers when configured. For a missing or refused
// origin those headers are removed, so nothing else can open the API to it.
// Calling Decorate again gives the same headers.
func (c *Policy) Decorate(ctx *fasthttp.RequestCtx, origin []byte) {
	if c == nil {
		return
	}
	h := &ctx.Response.Header
	if !varyNamesOrigin(h.PeekAll(corsVary)) {
		h.Add(corsVary, corsOrigin)
	}
	if !c.AllowsOrigin(origin) {
		h.Del(corsAllowOrigin)
		h.Del(corsAllowCredentials)
		h.Del(corsExposeHeaders)
		return
	}
	h.SetBytesV(corsAllowOrigin, origin)
	if c.credentials {
		h.Set(corsAllowCredentials, "true")
	} else {
		h.Del(corsAllowCredentials)
	}
	if c.exposeHeaders != "" {
		h.Set(corsExposeHeaders, c.exposeHeaders)
	} else {
		h.Del(corsExposeHeaders)
	}
}

// varyNamesOrigin reports whether Vary values already name Origin, or "*",
// which covers it.
func varyNamesOrigin(values [][]byte) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(string(v), ",") {
			t = strings.Trim(t, " \t")
			if t == corsWildcard || ascii.EqualFold(t, corsOrigin) {
				return true
			}
		}
	}
	return false
}

// isOriginSyntax reports whether s is an origin as browsers serialize it:
// "null" (sandboxed documents, file: pages), or scheme "://" host with an
// optional numeric port, and nothing after (no path, not even "/").
func isOriginSyntax(s string) bool {
	if s == "null" {
		return true
	}
	scheme, hostport, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || hostport == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		b := scheme[i]
		letter := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		if !letter && (i == 0 || !(b >= '0' && b <= '9' || b == '+' || b == '-' || b == '.')) {
			return false
		}
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") { // IPv6 literal
		end := strings.IndexByte(hostport, ']')
		if end < 2 {
			return false
		}
		for _, b := range []byte(hostport[1:end]) {
			if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' || b == ':' || b == '.') {
				return false
			}
		}
		host, port = "", hostport[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if port == "" {
				return false
			}
		}
	} else {
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			host, port = hostport[:i], hostport[i+1:]
			if port == "" {
				return false
			}
		}
		if host == "" {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		if b := host[i]; b <= ' ' || b >= 0x7f || strings.IndexByte("/?#@\\:*()[]", b) >= 0 {
			return false
		}
	}
	return true
}

// IsToken reports whether s is an HTTP token (RFC 9110 5.6.2), the syntax
// of method and header names.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}

// corsEchoable makes a client's header value fit for a failure message: at
// most corsMaxEchoed bytes, printable ASCII only.
func corsEchoable(v []byte) string {
	if len(v) > corsMaxEchoed {
		v = v[:corsMaxEchoed]
	}
	b := make([]byte, len(v))
	for i, c := range v {
		if c < ' ' || c >= 0x7f {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

func corsAppendUnique(list []string, s string) []string {
	if corsContains(list, s) {
		return list
	}
	return append(list, s)
}

func corsContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func corsContainsFold(list []string, s string) bool {
	for _, x := range list {
		if ascii.EqualFold(x, s) {
			return true
		}
	}
	return false
}
