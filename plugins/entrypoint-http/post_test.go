package main

import (
	"reflect"
	"testing"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

func startPost(t *testing.T, config map[string]any, req *gateway.Request) *plugintest.Exchange {
	t.Helper()
	h := plugintest.Start(t, New())
	if d := h.Configure(t, "post", "http-post", config); d.HasErrors() {
		t.Fatal(d.Err())
	}
	req.Method = "POST"
	return h.Connect(t, "post", &gateway.Context{APIID: "api", Request: req})
}

// Vector 5: the body is the record value byte for byte, request headers are
// copied, and the answer is 202 with an empty body.
func TestPostVector5(t *testing.T) {
	ex := startPost(t, map[string]any{"request_headers_to_message": true}, &gateway.Request{
		Headers: gateway.Headers{"X-Test-Header": {"header-value"}, "Content-Type": {"application/json"}},
		Body:    []byte(`{"field":"value"}`),
	})
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	if len(p.Publish.Messages) != 1 {
		t.Fatalf("published %d messages", len(p.Publish.Messages))
	}
	m := p.Publish.Messages[0]
	if string(m.Content) != `{"field":"value"}` || m.ID != "" || m.Headers.Get("X-Test-Header") != "header-value" {
		t.Fatalf("message %+v", m)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID})
	f := ex.Expect(t, plugintest.ActionFinish, wait)
	if !reflect.DeepEqual(f.Finish, entrypoint.Finish{Status: 202}) {
		t.Fatalf("finish %+v", f.Finish)
	}
	if end := ex.Expect(t, plugintest.ActionEnd, wait); end.Err != nil {
		t.Fatal(end.Err)
	}
}

func TestPostHeadersNotCopiedByDefault(t *testing.T) {
	ex := startPost(t, nil, &gateway.Request{Headers: gateway.Headers{"X-Test-Header": {"v"}}})
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	if m := p.Publish.Messages[0]; len(m.Headers) != 0 || len(m.Content) != 0 {
		t.Fatalf("message %+v", m)
	}
}

func TestPostFailures(t *testing.T) {
	tests := map[string]struct {
		accept   string
		failure  *gateway.Failure
		status   int
		ctype    string
		body     string
		closeHdr bool
	}{
		"policy interrupt 412 as text": {
			failure: &gateway.Failure{Status: 412, Message: "An error occurred"},
			status:  412, ctype: "text/plain", body: "An error occurred",
		},
		"json when accepted": {
			accept:  "application/json",
			failure: &gateway.Failure{Status: 412, Message: "An error occurred"},
			status:  412, ctype: "application/json", body: `{"message":"An error occurred","http_status_code":412}`,
		},
		"no status is 503 and closes": {
			failure: &gateway.Failure{Message: "Broker unavailable"},
			status:  503, ctype: "text/plain", body: "Broker unavailable", closeHdr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := gateway.Headers{}
			if tc.accept != "" {
				h.Add("Accept", tc.accept)
			}
			ex := startPost(t, nil, &gateway.Request{Headers: h, Body: []byte("x")})
			p := ex.Expect(t, plugintest.ActionPublish, wait)
			ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID, Failure: tc.failure})
			f := ex.Expect(t, plugintest.ActionFinish, wait)
			if f.Finish.Status != tc.status || f.Finish.Headers.Get("Content-Type") != tc.ctype || string(f.Finish.Body) != tc.body ||
				(f.Finish.Headers.Get("Connection") == "close") != tc.closeHdr {
				t.Fatalf("finish %d %v %q", f.Finish.Status, f.Finish.Headers, f.Finish.Body)
			}
		})
	}
}

func TestPostIgnoresOtherBatches(t *testing.T) {
	ex := startPost(t, nil, &gateway.Request{Body: []byte("x")})
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID + 1, Failure: &gateway.Failure{Status: 500}})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID})
	if f := ex.Expect(t, plugintest.ActionFinish, wait); f.Finish.Status != 202 {
		t.Fatalf("finish %+v", f.Finish)
	}
}

func TestPostEndpointEndsFirst(t *testing.T) {
	ex := startPost(t, nil, &gateway.Request{Body: []byte("x")})
	ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End})
	if f := ex.Expect(t, plugintest.ActionFinish, wait); f.Finish.Status != 503 {
		t.Fatalf("finish %+v", f.Finish)
	}
}

func TestPostClientGone(t *testing.T) {
	ex := startPost(t, nil, &gateway.Request{Body: []byte("x")})
	ex.Expect(t, plugintest.ActionPublish, wait)
	ex.Send(t, entrypoint.Event{Kind: entrypoint.End, ClientGone: true})
	if a := ex.Next(t, wait); a.Kind != plugintest.ActionEnd || a.Err != nil {
		t.Fatalf("got %v %v", a.Kind, a.Err)
	}
}
