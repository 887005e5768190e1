package config

import (
	"fmt"
	"github.com/sluice-gw/sluice/core/internal/cors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// corsHCL is the cors block. Attributes are expressions so that each list
// entry can be reported on its own line.
type corsHCL struct {
	Enabled          hcl.Expression `hcl:"enabled,optional"`
	AllowOrigins     hcl.Expression `hcl:"allow_origins,optional"`
	AllowOriginRegex hcl.Expression `hcl:"allow_origin_regex,optional"`
	AllowMethods     hcl.Expression `hcl:"allow_methods,optional"`
	AllowHeaders     hcl.Expression `hcl:"allow_headers,optional"`
	ExposeHeaders    hcl.Expression `hcl:"expose_headers,optional"`
	MaxAgeSeconds    hcl.Expression `hcl:"max_age_seconds,optional"`
	AllowCredentials hcl.Expression `hcl:"allow_credentials,optional"`
}

// corsWildcard in a cors list means any origin, method or header.
const corsWildcard = "*"

// browserNormalizedMethods are the methods fetch() upper-cases whatever the
// page wrote; a preflight never asks for them in another case, so
// allow_methods = ["get"] could never match.
var browserNormalizedMethods = []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}

// loadCORS decodes an api's cors block. The block is checked even when
// enabled = false, so turning it on later does not reveal old mistakes; it
// is then returned as nil.
func loadCORS(where string, shell *shellHCL, eval *hcl.EvalContext) (*CORS, hcl.Diagnostics) {
	var h corsHCL
	// An unsupported argument leaves the others decoded: check them too.
	diags := prefixed(where, gohcl.DecodeBody(shell.Body, eval, &h))
	c := &CORS{Options: cors.Options{MaxAgeSeconds: -1}, Range: shell.DefRange}

	enabled, ok, d := evalBool(where, h.Enabled, eval)
	diags = append(diags, d...)
	if !ok && !d.HasErrors() {
		enabled = true // absent or null
	}
	credentials, _, d := evalBool(where, h.AllowCredentials, eval)
	diags = append(diags, d...)
	c.AllowCredentials = credentials

	origins, ranges, _, d := evalStringList(where, h.AllowOrigins, eval)
	diags = append(diags, d...)
	originsBroken := d.HasErrors()
	for i, o := range origins {
		if o == corsWildcard {
			if credentials {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  where + `: allow_credentials with the "*" origin`,
					Detail: `Browsers refuse credentialed answers allowed for every origin, and allowing credentials from any site ` +
						`would let every site act with the user's session. List the origins that may send credentials, ` +
						`or set allow_credentials = false.`,
					Subject: ranges[i].Ptr(),
				})
			}
			c.AllowOrigins = append(c.AllowOrigins, o)
			continue
		}
		if msg := checkOrigin(o); msg != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid origin %q", where, o),
				Detail:   msg,
				Subject:  ranges[i].Ptr(),
			})
			continue
		}
		c.AllowOrigins = append(c.AllowOrigins, o)
	}

	patterns, ranges, _, d := evalStringList(where, h.AllowOriginRegex, eval)
	diags = append(diags, d...)
	originsBroken = originsBroken || d.HasErrors()
	for i, p := range patterns {
		msg := ""
		if p == "" {
			msg = "A pattern must not be empty."
		} else if _, err := regexp.Compile(p); err != nil {
			msg = fmt.Sprintf("Not a Go (RE2) regular expression: %s.", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		if msg != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid allow_origin_regex %q", where, p),
				Detail:   msg,
				Subject:  ranges[i].Ptr(),
			})
			continue
		}
		c.AllowOriginRegex = append(c.AllowOriginRegex, p)
	}
	if len(origins) == 0 && len(patterns) == 0 && !originsBroken {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": No allowed origin",
			Detail: `Name the origins browsers may call this API from, e.g. allow_origins = ["https://app.example.com"], ` +
				`or patterns in allow_origin_regex; remove the cors block to turn CORS off.`,
			Subject: shell.DefRange.Ptr(),
		})
	}

	methods, ranges, present, d := evalStringList(where, h.AllowMethods, eval)
	diags = append(diags, d...)
	if present && len(methods) == 0 && !d.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": allow_methods is empty",
			Detail:   fmt.Sprintf("No preflight could succeed. List the methods (e.g. [\"GET\", \"POST\"]), or remove allow_methods for the default %s.", quoteList(DefaultCORSMethods)),
			Subject:  h.AllowMethods.Range().Ptr(),
		})
	}
	for i, m := range methods {
		var msg string
		switch up := strings.ToUpper(m); {
		case m == corsWildcard:
		case !cors.IsToken(m):
			msg = `A method is an HTTP token, e.g. "GET", or "*" for any method.`
		case up != m && contains(browserNormalizedMethods, up):
			msg = fmt.Sprintf("Did you mean %q? Methods are case-sensitive, and browsers send %s in upper case.", up, up)
		}
		if msg != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid method %q", where, m),
				Detail:   msg,
				Subject:  ranges[i].Ptr(),
			})
			continue
		}
		c.AllowMethods = append(c.AllowMethods, m)
	}
	if !present {
		c.AllowMethods = append([]string(nil), DefaultCORSMethods...)
	}

	c.AllowHeaders, d = headerList(where, "allow_headers", h.AllowHeaders, eval, false)
	diags = append(diags, d...)
	c.ExposeHeaders, d = headerList(where, "expose_headers", h.ExposeHeaders, eval, credentials)
	diags = append(diags, d...)

	maxAge, ok, d := evalWholeNumber(where, "max_age_seconds", h.MaxAgeSeconds, eval)
	diags = append(diags, d...)
	if ok {
		c.MaxAgeSeconds = maxAge
	}

	if !enabled {
		return nil, diags
	}
	return c, diags
}

// headerList decodes allow_headers or expose_headers: header names or "*".
// In expose_headers with credentials, "*" is refused: browsers then read it
// as a header named "*".
func headerList(where, name string, expr hcl.Expression, eval *hcl.EvalContext, credentials bool) ([]string, hcl.Diagnostics) {
	values, ranges, _, diags := evalStringList(where, expr, eval)
	var out []string
	for i, v := range values {
		var msg string
		switch {
		case v == corsWildcard && credentials:
			msg = `With allow_credentials = true browsers read "*" as a header named "*", not as every header; list the headers pages may read.`
		case v == corsWildcard:
		case !cors.IsToken(v):
			msg = `A header name is an HTTP token, e.g. "Last-Event-ID", or "*" for any.`
		}
		if msg != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid %s entry %q", where, name, v),
				Detail:   msg,
				Subject:  ranges[i].Ptr(),
			})
			continue
		}
		out = append(out, v)
	}
	return out, diags
}

// checkOrigin returns why o is not an origin as browsers send it in the
// Origin header (scheme://host[:port], or "null"), or "".
func checkOrigin(o string) string {
	const form = `An origin is scheme://host[:port], e.g. "https://app.example.com" or "http://localhost:3000".`
	if o == "null" {
		return ""
	}
	scheme, rest, hasSep := strings.Cut(o, "://")
	// An IPv6 literal is the only place "[" and "]" belong.
	ipv6 := strings.HasPrefix(rest, "[") && strings.Contains(rest, "]")
	unbracketed := rest
	if ipv6 {
		unbracketed = rest[strings.IndexByte(rest, ']')+1:]
	}
	if strings.ContainsAny(scheme+unbracketed, "*()[]|\\^$") {
		return `allow_origins holds exact origins or "*"; put patterns in allow_origin_regex, which is matched against ` +
			`the whole origin, e.g. allow_origin_regex = ["https://[a-z0-9-]+\\.example\\.com"].`
	}
	if !hasSep || rest == "" || !isScheme(scheme) {
		return form
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		if i == 0 {
			return form
		}
		return fmt.Sprintf("An origin has no path, query or fragment (not even a trailing \"/\"); write %q.", scheme+"://"+rest[:i])
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		return fmt.Sprintf("An origin has no user name or password; write %q.", scheme+"://"+rest[i+1:])
	}
	for _, r := range rest {
		if r > 0x7e {
			return "Write the host in its ASCII form, as browsers send it (an internationalized name in punycode, xn--...)."
		}
		if r <= ' ' {
			return "An origin holds no spaces or control characters."
		}
	}
	host, port, hasPort := rest, "", false
	if ipv6 {
		end := strings.IndexByte(rest, ']')
		host = rest[1:end]
		if after := rest[end+1:]; after != "" {
			if after[0] != ':' {
				return form
			}
			port, hasPort = after[1:], true
		}
		for i := 0; i < len(host); i++ {
			if b := host[i]; !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' || b == ':' || b == '.') {
				return form
			}
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port, hasPort = rest[:i], rest[i+1:], true
	}
	if host == "" || !ipv6 && strings.Contains(host, ":") {
		return form
	}
	if hasPort && port == "" {
		return `The port is missing after ":"; give it, or remove the ":".`
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port[0] == '+' || port[0] == '-' {
			return fmt.Sprintf("The port %q is not a number from 0 to 65535.", port)
		}
	}
	return ""
}

// isScheme reports whether s is a URL scheme (RFC 3986 3.1).
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		letter := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		if !letter && (i == 0 || !(b >= '0' && b <= '9' || b == '+' || b == '-' || b == '.')) {
			return false
		}
	}
	return true
}

// evalStringList evaluates an optional list(string) attribute. ranges holds
// each entry's range (the whole expression's when the value is not written
// as a list literal). present is false when the attribute is absent or
// null.
func evalStringList(where string, expr hcl.Expression, eval *hcl.EvalContext) (values []string, ranges []hcl.Range, present bool, diags hcl.Diagnostics) {
	if expr == nil {
		return nil, nil, false, nil
	}
	v, diags := expr.Value(eval)
	diags = prefixed(where, diags)
	if diags.HasErrors() || v.IsNull() {
		return nil, nil, false, diags
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || !lv.IsWhollyKnown() {
		msg := "a list of strings is required"
		if err != nil {
			msg = err.Error()
		}
		return nil, nil, true, append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     where + ": Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value: %s, e.g. [\"a\", \"b\"].", msg),
			Subject:     expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: eval,
		})
	}
	var elems []hclsyntax.Expression
	if tc, ok := expr.(*hclsyntax.TupleConsExpr); ok && len(tc.Exprs) == lv.LengthInt() {
		elems = tc.Exprs
	}
	i := 0
	for it := lv.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		rng := expr.Range()
		if elems != nil {
			rng = elems[i].Range()
		}
		if ev.IsNull() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  where + ": Null list entry",
				Detail:   "A list entry must be a string.",
				Subject:  rng.Ptr(),
			})
			continue
		}
		values = append(values, ev.AsString())
		ranges = append(ranges, rng)
	}
	return values, ranges, true, diags
}

// evalBool evaluates an optional bool attribute; absent or null is false
// with ok false.
func evalBool(where string, expr hcl.Expression, eval *hcl.EvalContext) (b, ok bool, diags hcl.Diagnostics) {
	if expr == nil {
		return false, false, nil
	}
	v, diags := expr.Value(eval)
	diags = prefixed(where, diags)
	if diags.HasErrors() || v.IsNull() {
		return false, false, diags
	}
	bv, err := convert.Convert(v, cty.Bool)
	if err != nil || !bv.IsKnown() || bv.IsNull() {
		msg := "a bool is required"
		if err != nil {
			msg = err.Error()
		}
		return false, false, append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     where + ": Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value: %s.", msg),
			Subject:     expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: eval,
		})
	}
	return bv.True(), true, diags
}

// evalWholeNumber evaluates an optional attribute holding a whole number
// from 0 to math.MaxInt32.
func evalWholeNumber(where, name string, expr hcl.Expression, eval *hcl.EvalContext) (n int, ok bool, diags hcl.Diagnostics) {
	if expr == nil {
		return 0, false, nil
	}
	v, diags := expr.Value(eval)
	diags = prefixed(where, diags)
	if diags.HasErrors() || v.IsNull() {
		return 0, false, diags
	}
	nv, err := convert.Convert(v, cty.Number)
	if err != nil || !nv.IsKnown() || nv.IsNull() {
		msg := "a number is required"
		if err != nil {
			msg = err.Error()
		}
		return 0, false, append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     where + ": Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value: %s.", msg),
			Subject:     expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: eval,
		})
	}
	bf := nv.AsBigFloat()
	i, acc := bf.Int64()
	var msg string
	switch {
	case bf.Sign() < 0:
		msg = fmt.Sprintf("%s must not be negative; leave it out to send no Access-Control-Max-Age.", name)
	case !bf.IsInt() || acc != big.Exact || i > math.MaxInt32:
		msg = fmt.Sprintf("%s is a whole number of seconds from 0 to %d.", name, math.MaxInt32)
	}
	if msg != "" {
		return 0, false, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: Invalid %s %s", where, name, bf.Text('f', -1)),
			Detail:   msg,
			Subject:  expr.Range().Ptr(),
		})
	}
	return int(i), true, diags
}
