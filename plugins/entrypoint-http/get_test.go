package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// wait bounds every expectation; it only matters when the plugin misbehaves.
const wait = 10 * time.Second

// getTest is one HTTP GET exchange with a duration limit the test ends.
type getTest struct {
	ex       *plugintest.Exchange
	deadline chan time.Time
}

func startGet(t *testing.T, config map[string]any, headers gateway.Headers, params map[string][]string) *getTest {
	t.Helper()
	p := New()
	gt := &getTest{deadline: make(chan time.Time, 1)}
	p.after = func(time.Duration) (<-chan time.Time, func()) { return gt.deadline, func() {} }
	h := plugintest.Start(t, p)
	if d := h.Configure(t, "get", "http-get", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	if headers == nil {
		headers = gateway.Headers{}
	}
	gt.ex = h.Connect(t, "get", &gateway.Context{APIID: "api", Request: &gateway.Request{Method: "GET", Headers: headers, Params: params}})
	return gt
}

func accept(v ...string) gateway.Headers { return gateway.Headers{"Accept": v} }

// expectPage checks the 200 response, its one write and its acknowledgement.
func (g *getTest) expectPage(t *testing.T, mediaType, body string, ack uint64) {
	t.Helper()
	r := g.ex.Expect(t, plugintest.ActionRespond, wait)
	if r.Respond.Status != 200 || !reflect.DeepEqual(r.Respond.Headers, gateway.Headers{"Content-Type": {mediaType}}) || len(r.Respond.Body) != 0 {
		t.Fatalf("respond %+v", r.Respond)
	}
	w := g.ex.Expect(t, plugintest.ActionWrite, wait)
	if len(w.Write.Chunks) != 1 || string(w.Write.Chunks[0]) != body || w.Write.AckThrough != ack {
		var got []string
		for _, c := range w.Write.Chunks {
			got = append(got, string(c))
		}
		t.Fatalf("write %q ack %d\nwant  %q ack %d", got, w.Write.AckThrough, body, ack)
	}
	if f := g.ex.Expect(t, plugintest.ActionFinish, wait); !reflect.DeepEqual(f.Finish, entrypoint.Finish{}) {
		t.Fatalf("finish %+v", f.Finish)
	}
	if end := g.ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

func (g *getTest) expectSubscribe(t *testing.T, want plugintest.SubscribeAction) {
	t.Helper()
	s := g.ex.Expect(t, plugintest.ActionSubscribe, wait)
	if s.Subscribe != want {
		t.Fatalf("subscribe %+v, want %+v", s.Subscribe, want)
	}
}

func (g *getTest) deliver(t *testing.T, msgs ...*gateway.Message) {
	t.Helper()
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.Deliver, Messages: msgs})
}

func (g *getTest) expectFailure(t *testing.T, status int, contentType, body string) {
	t.Helper()
	f := g.ex.Expect(t, plugintest.ActionFinish, wait)
	if f.Finish.Status != status || f.Finish.Headers.Get("Content-Type") != contentType || string(f.Finish.Body) != body {
		t.Fatalf("finish %d %v %q, want %d %s %q", f.Finish.Status, f.Finish.Headers, f.Finish.Body, status, contentType, body)
	}
}

func msg(content string, tag uint64) *gateway.Message {
	return &gateway.Message{Content: []byte(content), Tag: tag, Metadata: map[string]any{"topic": "test-topic"}}
}

func idMsg(id, content string, tag uint64) *gateway.Message {
	return &gateway.Message{ID: id, Content: []byte(content), Tag: tag}
}

// Vector 1: auto QoS, limit 2, three records: the third is neither returned
// nor acknowledged.
func TestGetVector1(t *testing.T) {
	g := startGet(t, map[string]any{"messages_limit_count": 2, "metadata_in_payload": true}, accept("application/json"), nil)
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 2})
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.Ready})
	g.deliver(t, msg("message1", 1), msg("message2", 2), msg("message3", 3))
	g.expectPage(t, "application/json",
		`{"items":[{"content":"message1","metadata":{"topic":"test-topic"}},{"content":"message2","metadata":{"topic":"test-topic"}}]}`, 2)
}

// Vector 2: at-least-once, ids and pagination.
func TestGetVector2(t *testing.T) {
	g := startGet(t, map[string]any{"qos": "at-least-once", "messages_limit_count": 2}, accept("application/json"), nil)
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "at-least-once", Limit: 2})
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.Ready, Cursor: "dGVzdC10b3BpY0AwIy0x"})
	g.deliver(t, idMsg("dGVzdC10b3BpY0AwIzA=", "message1", 1))
	g.deliver(t, idMsg("dGVzdC10b3BpY0AwIzE=", "message2", 2))
	g.expectPage(t, "application/json",
		`{"items":[{"id":"dGVzdC10b3BpY0AwIzA=","content":"message1"},{"id":"dGVzdC10b3BpY0AwIzE=","content":"message2"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzE="}}`, 2)
}

// Vector 2, GET #3 with ?cursor: nothing left, so the page is empty and the
// cursor is the endpoint's position.
func TestGetVector2EmptyPageResumesFromTheCursor(t *testing.T) {
	g := startGet(t, map[string]any{"qos": "at-most-once"}, accept("application/json"),
		map[string][]string{"cursor": {"dGVzdC10b3BpY0AwIzI="}, "limit": {"10"}})
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "at-most-once", LastID: "dGVzdC10b3BpY0AwIzI=", Limit: 10})
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.Ready, Cursor: "dGVzdC10b3BpY0AwIzI="})
	g.deadline <- time.Now()
	g.expectPage(t, "application/json", `{"items":[],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzI=","limit":"10"}}`, 0)
}

func TestGetAutoIgnoresTheCursorAndHasNoPagination(t *testing.T) {
	g := startGet(t, nil, accept("application/json"), map[string][]string{"cursor": {"x"}})
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 500})
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.Ready, Cursor: "ignored"})
	g.deadline <- time.Now()
	g.expectPage(t, "application/json", `{"items":[]}`, 0)
}

func TestGetFormats(t *testing.T) {
	tests := map[string]struct {
		accept    []string
		mediaType string
		body      string
	}{
		"xml": {[]string{"application/xml"}, "application/xml",
			`<response><items><item><id>a</id><content><![CDATA[m1]]></content></item></items><error><content><![CDATA[Connection closed]]></content></error><pagination><nextCursor>a</nextCursor></pagination></response>`},
		"text by default": {nil, "text/plain", "items\nitem\nid: a\ncontent: m1\n\nerror\ncontent: Connection closed\n\npagination\nnextCursor: a"},
		"json for */*": {[]string{"*/*"}, "application/json",
			`{"items":[{"id":"a","content":"m1"}],"error":{"content":"Connection closed"},"pagination":{"nextCursor":"a"}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := startGet(t, map[string]any{"qos": "at-least-once", "messages_limit_count": 3}, accept(tc.accept...), nil)
			g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "at-least-once", Limit: 3})
			g.deliver(t,
				&gateway.Message{Error: &gateway.Failure{Message: "first error, dropped"}, Tag: 1},
				idMsg("a", "m1", 2),
				&gateway.Message{Error: &gateway.Failure{Message: "Connection closed"}, Tag: 3},
			)
			g.expectPage(t, tc.mediaType, tc.body, 3)
		})
	}
}

func TestGetLimitParameter(t *testing.T) {
	tests := map[string]struct {
		limit     string
		wantLimit int64
	}{
		"lower":      {"1", 1},
		"higher":     {"900", 5},
		"plus sign":  {"+2", 2},
		"empty uses": {"", 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := startGet(t, map[string]any{"messages_limit_count": 5}, accept("application/json"), map[string][]string{"limit": {tc.limit}})
			g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: tc.wantLimit})
		})
	}
}

func TestGetLimitZeroAnswersAtOnce(t *testing.T) {
	g := startGet(t, map[string]any{"qos": "at-least-once"}, accept("application/json"), map[string][]string{"limit": {"0"}, "cursor": {"c"}})
	g.expectPage(t, "application/json", `{"items":[],"pagination":{"nextCursor":"c","limit":"0"}}`, 0)
}

func TestGetBadRequests(t *testing.T) {
	tests := map[string]struct {
		headers   gateway.Headers
		params    map[string][]string
		wantType  string
		wantBody  string
		wantClose bool
	}{
		"unsupported accept": {
			headers: gateway.Headers{"Accept": {"text/html", "image/png"}}, wantType: "text/plain",
			wantBody: "Unsupported accept header: [text/html, image/png]",
		},
		"non-numeric limit": {
			headers: accept("application/json"), params: map[string][]string{"limit": {"ten"}}, wantType: "application/json",
			wantBody: `{"message":"Invalid limit query parameter \"ten\": expected a whole number of messages, 0 or more","http_status_code":400}`,
		},
		"negative limit": {
			params: map[string][]string{"limit": {"-1"}}, wantType: "text/plain",
			wantBody: `Invalid limit query parameter "-1": expected a whole number of messages, 0 or more`,
		},
		"limit beyond int32": {
			params: map[string][]string{"limit": {"3000000000"}}, wantType: "text/plain",
			wantBody: `Invalid limit query parameter "3000000000": expected a whole number of messages, 0 or more`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := startGet(t, nil, tc.headers, tc.params)
			g.expectFailure(t, 400, tc.wantType, tc.wantBody)
		})
	}
}

func TestGetEndpointFailure(t *testing.T) {
	t.Run("before any message: the failure's status", func(t *testing.T) {
		g := startGet(t, nil, accept("application/json"), nil)
		g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 500})
		g.ex.Send(t, entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: &gateway.Failure{Status: 500, Message: "Invalid configuration", RequestLevel: true}})
		g.expectFailure(t, 500, "application/json", `{"message":"Invalid configuration","http_status_code":500}`)
	})
	t.Run("after messages: 200 with the failure as the error", func(t *testing.T) {
		g := startGet(t, nil, accept("application/json"), nil)
		g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 500})
		g.deliver(t, msg("m", 4))
		g.ex.Send(t, entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: &gateway.Failure{Status: 502, Message: "Connection closed"}})
		g.expectPage(t, "application/json", `{"items":[{"content":"m"}],"error":{"content":"Connection closed","metadata":{"statusCode":502}}}`, 4)
	})
}

func TestGetEndpointEndAnswersWithWhatItHas(t *testing.T) {
	g := startGet(t, nil, accept("text/plain"), nil)
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 500})
	g.deliver(t, msg("m", 1))
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.End})
	g.expectPage(t, "text/plain", "items\nitem\ncontent: m\n", 1)
}

func TestGetClientGone(t *testing.T) {
	g := startGet(t, nil, nil, nil)
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 500})
	g.deliver(t, msg("m", 1))
	g.ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if a := g.ex.Next(t, wait); a.Kind != plugintest.ActionEnd || a.Err != nil {
		t.Fatalf("got %v %v, want a clean end without a response", a.Kind, a.Err)
	}
}

func TestGetHeadersInPayload(t *testing.T) {
	g := startGet(t, map[string]any{"headers_in_payload": true, "messages_limit_count": 1}, accept("application/json"), nil)
	g.expectSubscribe(t, plugintest.SubscribeAction{QoS: "auto", Limit: 1})
	g.deliver(t, &gateway.Message{Content: []byte("m"), Headers: gateway.Headers{"header1": {"headerValue1"}}, Tag: 9})
	g.expectPage(t, "application/json", `{"items":[{"content":"m","headers":{"header1":["headerValue1"]}}]}`, 9)
}
