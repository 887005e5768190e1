package main

import (
	"testing"

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
// copied, and the answer the core gives once it is published is 202 with an
// empty body. The failure answers are the core's (httpfailure.Response).
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
	if tf := p.Publish.ThenFinish; tf == nil || tf.Status != 202 || len(tf.Headers) != 0 || len(tf.Body) != 0 {
		t.Fatalf("then finish %+v, want 202 with no headers and no body", tf)
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
