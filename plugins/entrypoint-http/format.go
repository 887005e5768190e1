package main

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
	"github.com/sluice-gw/sluice/sdk/javafmt"
)

// Media types HTTP GET can answer with.
const (
	mediaJSON = "application/json"
	mediaXML  = "application/xml"
	mediaText = "text/plain"
)

// page is what one HTTP GET returns.
type page struct {
	// items are the delivered data messages, in order.
	items []*gateway.Message
	// err is the last error message delivered, if any; earlier ones are
	// dropped, as in the reference.
	err *gateway.Message
	// nextCursor, when not empty, adds pagination.
	nextCursor string
	// limit is the raw `limit` query parameter, echoed in pagination.
	limit string
}

// pageFormat says which optional parts items carry.
type pageFormat struct {
	headersInPayload  bool
	metadataInPayload bool
}

// appendPage renders p in the negotiated media type.
func (f pageFormat) appendPage(b []byte, mediaType string, p *page) []byte {
	switch mediaType {
	case mediaJSON:
		return f.appendJSON(b, p)
	case mediaXML:
		return f.appendXML(b, p)
	default:
		return f.appendText(b, p)
	}
}

// appendJSON renders
// {"items":[...][,"error":{...}][,"pagination":{"nextCursor":"..."[,"limit":"..."]}]}
// exactly as the reference concatenates it: content is always a JSON string,
// headers are arrays, limit is a string.
func (f pageFormat) appendJSON(b []byte, p *page) []byte {
	b = append(b, `{"items":[`...)
	for i, m := range p.items {
		if i > 0 {
			b = append(b, ',')
		}
		b = f.appendJSONItem(b, m, m.Content)
	}
	b = append(b, ']')
	if p.err != nil {
		b = append(b, `,"error":`...)
		e := errorItem(p.err)
		b = f.forError(e).appendJSONItem(b, e, []byte(errorText(p.err)))
	}
	if p.nextCursor != "" {
		b = append(b, `,"pagination":{"nextCursor":`...)
		b = httpfailure.AppendJSONString(b, p.nextCursor)
		if p.limit != "" {
			b = append(b, `,"limit":`...)
			b = httpfailure.AppendJSONString(b, p.limit)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func (f pageFormat) appendJSONItem(b []byte, m *gateway.Message, content []byte) []byte {
	b = append(b, '{')
	if m.ID != "" {
		b = append(b, `"id":`...)
		b = httpfailure.AppendJSONString(b, m.ID)
		b = append(b, ',')
	}
	b = append(b, `"content":`...)
	b = httpfailure.AppendJSONBytes(b, content)
	if f.headersInPayload {
		b = append(b, `,"headers":{`...)
		for i, name := range slices.Sorted(maps.Keys(m.Headers)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = httpfailure.AppendJSONString(b, name)
			b = append(b, ':', '[')
			for j, v := range m.Headers[name] {
				if j > 0 {
					b = append(b, ',')
				}
				b = httpfailure.AppendJSONString(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if f.metadataInPayload {
		b = append(b, `,"metadata":`...)
		b = appendJSONValue(b, mapOrEmpty(m.Metadata), 0)
	}
	return append(b, '}')
}

// appendXML renders
// <response><items><item>...</item>...</items>[<error>...</error>][<pagination>...</pagination>]</response>.
// Unlike the reference, text is escaped, a "]]>" inside content is split
// across two CDATA sections, characters XML cannot carry become U+FFFD and
// element names are made valid (see appendXMLName), so the document always
// parses.
func (f pageFormat) appendXML(b []byte, p *page) []byte {
	b = append(b, "<response><items>"...)
	for _, m := range p.items {
		b = f.appendXMLItem(b, "item", m, string(m.Content))
	}
	b = append(b, "</items>"...)
	if p.err != nil {
		e := errorItem(p.err)
		b = f.forError(e).appendXMLItem(b, "error", e, errorText(p.err))
	}
	if p.nextCursor != "" {
		b = append(b, "<pagination><nextCursor>"...)
		b = appendXMLText(b, p.nextCursor)
		b = append(b, "</nextCursor>"...)
		if p.limit != "" {
			b = append(b, "<limit>"...)
			b = appendXMLText(b, p.limit)
			b = append(b, "</limit>"...)
		}
		b = append(b, "</pagination>"...)
	}
	return append(b, "</response>"...)
}

func (f pageFormat) appendXMLItem(b []byte, tag string, m *gateway.Message, content string) []byte {
	b = append(b, '<')
	b = append(b, tag...)
	b = append(b, '>')
	if m.ID != "" {
		b = append(b, "<id>"...)
		b = appendXMLText(b, m.ID)
		b = append(b, "</id>"...)
	}
	b = append(b, "<content><![CDATA["...)
	b = append(b, strings.ReplaceAll(xmlChars(content), "]]>", "]]]]><![CDATA[>")...)
	b = append(b, "]]></content>"...)
	if f.headersInPayload {
		b = append(b, "<headers>"...)
		for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
			b = appendXMLElement(b, name, strings.Join(m.Headers[name], ","))
		}
		b = append(b, "</headers>"...)
	}
	if f.metadataInPayload {
		b = append(b, "<metadata>"...)
		for _, k := range javafmt.Keys(m.Metadata) {
			b = appendXMLElement(b, k, javafmt.String(m.Metadata[k]))
		}
		b = append(b, "</metadata>"...)
	}
	b = append(b, "</"...)
	b = append(b, tag...)
	return append(b, '>')
}

func appendXMLElement(b []byte, name, text string) []byte {
	b = append(b, '<')
	b = appendXMLName(b, name)
	b = append(b, '>')
	b = appendXMLText(b, text)
	b = append(b, "</"...)
	b = appendXMLName(b, name)
	return append(b, '>')
}

// appendXMLName appends a header name or metadata key as an element name.
// Kafka record headers can be named anything, and a name that is not an XML
// name ("1st", "a b", "") would make the whole page unparsable, so every
// byte outside [A-Za-z0-9._-] becomes '_' and a name that does not start
// with a letter or '_' gets a leading '_'. Ordinary names ("X-Request-Id",
// "sourceTimestamp") are unchanged. ':' is replaced too, so no name is read
// as a namespace prefix.
func appendXMLName(b []byte, name string) []byte {
	if name == "" || !isXMLNameStart(name[0]) {
		b = append(b, '_')
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isXMLNameStart(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

func isXMLNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// appendXMLText appends s as escaped character data, with the characters
// XML 1.0 cannot carry replaced (see xmlChars).
func appendXMLText(b []byte, s string) []byte {
	s = xmlChars(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// xmlChars returns s with every invalid UTF-8 byte and every character XML
// 1.0 forbids even escaped (most C0 controls, U+FFFE, U+FFFF) replaced by
// U+FFFD: one such byte in a record would otherwise make the whole page
// unparsable. It returns s itself when there is nothing to replace.
func xmlChars(s string) string {
	for i, r := range s {
		if r == utf8.RuneError || !isXMLChar(r) {
			var b strings.Builder
			b.Grow(len(s) + 8)
			b.WriteString(s[:i])
			for _, r := range s[i:] {
				if !isXMLChar(r) {
					r = utf8.RuneError
				}
				b.WriteRune(r)
			}
			return b.String()
		}
	}
	return s
}

// isXMLChar is XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// appendText renders the reference's text/plain form:
//
//	items
//	item
//	id: X
//	content: C
//	headers: {h=[v]}
//	metadata: {k=v}
//
//	item
//	...
//
//	error
//	...
//
//	pagination
//	nextCursor: X
//	limit: N
func (f pageFormat) appendText(b []byte, p *page) []byte {
	b = append(b, "items\n"...)
	for i, m := range p.items {
		if i > 0 {
			b = append(b, '\n')
		}
		b = f.appendTextItem(b, "item", m, string(m.Content))
	}
	if p.err != nil {
		b = append(b, '\n')
		e := errorItem(p.err)
		b = f.forError(e).appendTextItem(b, "error", e, errorText(p.err))
	}
	if p.nextCursor != "" {
		b = append(b, "\npagination\nnextCursor: "...)
		b = append(b, p.nextCursor...)
		if p.limit != "" {
			b = append(b, "\nlimit: "...)
			b = append(b, p.limit...)
		}
	}
	return b
}

func (f pageFormat) appendTextItem(b []byte, tag string, m *gateway.Message, content string) []byte {
	b = append(b, tag...)
	b = append(b, '\n')
	if m.ID != "" {
		b = append(b, "id: "...)
		b = append(b, m.ID...)
		b = append(b, '\n')
	}
	b = append(b, "content: "...)
	b = append(b, content...)
	b = append(b, '\n')
	if f.headersInPayload {
		b = append(b, "headers: {"...)
		for i, name := range slices.Sorted(maps.Keys(m.Headers)) {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, name...)
			b = append(b, "=["...)
			b = append(b, strings.Join(m.Headers[name], ", ")...)
			b = append(b, ']')
		}
		b = append(b, "}\n"...)
	}
	if f.metadataInPayload {
		b = append(b, "metadata: {"...)
		for i, k := range javafmt.Keys(m.Metadata) {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, k...)
			b = append(b, '=')
			b = append(b, javafmt.String(m.Metadata[k])...)
		}
		b = append(b, "}\n"...)
	}
	return b
}

// forError is the format of the error item e: its metadata shows whenever it
// has any, since it carries the failure's key (docs/behaviour.md 2.9), which is how a
// client tells a bad configuration from a lost connection.
func (f pageFormat) forError(e *gateway.Message) pageFormat {
	f.metadataInPayload = f.metadataInPayload || len(e.Metadata) > 0
	return f
}

// errorItem returns the error message with the failure's key and status in
// its metadata, as the reference's error messages carry them.
func errorItem(m *gateway.Message) *gateway.Message {
	if m.Error == nil {
		return m
	}
	out := *m
	out.Metadata = make(map[string]any, len(m.Metadata)+2)
	for k, v := range m.Metadata {
		out.Metadata[k] = v
	}
	if m.Error.Key != "" {
		out.Metadata["key"] = m.Error.Key
	}
	if m.Error.Status != 0 {
		out.Metadata["statusCode"] = m.Error.Status
	}
	return &out
}

// errorText is what an error message tells the client: the failure's text,
// or the content when the failure has none.
func errorText(m *gateway.Message) string {
	if m.Error != nil && m.Error.Message != "" {
		return m.Error.Message
	}
	return string(m.Content)
}

func mapOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// appendJSONValue writes metadata values as JSON. Whole numbers are written
// as integers: metadata crosses the wire as JSON numbers, so partitions and
// offsets arrive as float64 and must not turn into 1.7e+12.
func appendJSONValue(b []byte, v any, depth int) []byte {
	if depth > 32 {
		return append(b, "null"...)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return httpfailure.AppendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case float64:
		return appendNumber(b, x)
	case float32:
		return appendNumber(b, float64(x))
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case []byte:
		return httpfailure.AppendJSONString(b, string(x))
	case map[string]any:
		b = append(b, '{')
		for i, k := range javafmt.Keys(x) {
			if i > 0 {
				b = append(b, ',')
			}
			b = httpfailure.AppendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONValue(b, x[k], depth+1)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONValue(b, e, depth+1)
		}
		return append(b, ']')
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, rv.Uint(), 10)
	case reflect.Slice, reflect.Array:
		b = append(b, '[')
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONValue(b, rv.Index(i).Interface(), depth+1)
		}
		return append(b, ']')
	}
	return httpfailure.AppendJSONString(b, fmt.Sprint(v))
}

// appendNumber writes a JSON number as the reference does (javafmt), and
// null for what JSON cannot hold.
func appendNumber(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...) // JSON has no NaN or infinity
	}
	return javafmt.AppendNumber(b, f)
}
