package server

import (
	"github.com/sluice-gw/sluice/core/internal/ascii"
	"strconv"
	"strings"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// mediaRange is one element of an Accept header.
type mediaRange struct {
	// typ and sub are lower case ("text", "event-stream").
	typ, sub string
	// q is the quality, 0 to 1; 0 means "not acceptable".
	q float64
}

// parseAccept parses every Accept value into media ranges, in order. Elements
// without a type/subtype are skipped; a malformed q counts as 1, as lenient
// servers treat it.
func parseAccept(values []string) []mediaRange {
	var out []mediaRange
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			fields := strings.Split(part, ";")
			mt := strings.ToLower(strings.TrimSpace(fields[0]))
			typ, sub, ok := strings.Cut(mt, "/")
			typ, sub = strings.TrimSpace(typ), strings.TrimSpace(sub)
			if !ok || typ == "" || sub == "" {
				continue
			}
			r := mediaRange{typ: typ, sub: sub, q: 1}
			for _, p := range fields[1:] {
				k, val, _ := strings.Cut(p, "=")
				if !strings.EqualFold(strings.TrimSpace(k), "q") {
					continue
				}
				if q, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && q >= 0 && q <= 1 {
					r.q = q
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// acceptIncludes reports whether the Accept values name mediaType explicitly
// with a non-zero quality. Wildcards do not count: the reference's SSE
// entrypoint requires text/event-stream itself, so "*/*" (what fetch and
// curl send) goes to http-get instead.
func acceptIncludes(values []string, mediaType string) bool {
	typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mediaType)), "/")
	if !ok {
		return false
	}
	for _, r := range parseAccept(values) {
		if r.typ == typ && r.sub == sub && r.q > 0 {
			return true
		}
	}
	return false
}

// isWebSocketUpgrade reports whether a request asks for a WebSocket (RFC 6455
// 4.1: GET, Connection: Upgrade, Upgrade: websocket).
func isWebSocketUpgrade(method string, connection, upgrade []string) bool {
	return strings.EqualFold(method, "GET") && ascii.HasToken(connection, "upgrade") && ascii.HasToken(upgrade, "websocket")
}

// matchInput is what entrypoint selection looks at.
type matchInput struct {
	method    string
	accept    []string
	websocket bool
}

// matches reports whether an entrypoint's criteria accept the request. A nil
// Match never matches: such entrypoints are not reached by HTTP requests.
func matches(m *pluginv1.Match, in matchInput) bool {
	if m == nil {
		return false
	}
	if len(m.GetMethods()) > 0 {
		ok := false
		for _, meth := range m.GetMethods() {
			if strings.EqualFold(meth, in.method) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.GetAccept() != "" && !acceptIncludes(in.accept, m.GetAccept()) {
		return false
	}
	if m.GetWebsocket() && !in.websocket {
		return false
	}
	return true
}

// selectEntrypoint returns, among the entrypoints whose criteria accept the
// request, the one with the highest criteria count; the first declared wins a
// tie. It returns nil when none matches.
func selectEntrypoint(eps []*EntrypointInstance, in matchInput) *EntrypointInstance {
	var best *EntrypointInstance
	for _, e := range eps {
		if e == nil || !matches(e.Match, in) {
			continue
		}
		if best == nil || e.Match.GetCriteriaCount() > best.Match.GetCriteriaCount() {
			best = e
		}
	}
	return best
}
