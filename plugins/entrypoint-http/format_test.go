package main

import (
	"encoding/json"
	"encoding/xml"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

func TestAppendPage(t *testing.T) {
	kafkaMeta := func(offset float64) map[string]any {
		return map[string]any{"topic": "test-topic", "partition": float64(0), "offset": offset, "key": "key", "sourceTimestamp": float64(1700000000000)}
	}
	vector1 := &page{items: []*gateway.Message{
		{Content: []byte("message1"), Metadata: kafkaMeta(0)},
		{Content: []byte("message2"), Metadata: kafkaMeta(1)},
	}}
	vector2 := &page{items: []*gateway.Message{
		{ID: "dGVzdC10b3BpY0AwIzA=", Content: []byte("message1")},
		{ID: "dGVzdC10b3BpY0AwIzE=", Content: []byte("message2")},
	}, nextCursor: "dGVzdC10b3BpY0AwIzE="}
	vector2Empty := &page{nextCursor: "dGVzdC10b3BpY0AwIzI=", limit: "10"}
	withError := &page{
		items: []*gateway.Message{{ID: "a", Content: []byte("m1")}},
		err:   &gateway.Message{ID: "e1", Error: &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_CONNECTION_CLOSED", Message: "Connection closed"}},
	}
	withHeaders := &page{items: []*gateway.Message{{
		Content: []byte(`{"field":"value"}`),
		Headers: gateway.Headers{"header1": {"headerValue1"}, "X-Multi": {"a", "b"}},
	}}}
	tests := map[string]struct {
		format    pageFormat
		mediaType string
		page      *page
		want      string
	}{
		"json vector 1 (auto, no ids, no pagination)": {
			mediaType: mediaJSON, page: vector1,
			want: `{"items":[{"content":"message1"},{"content":"message2"}]}`,
		},
		"json vector 1 with metadata": {
			format: pageFormat{metadataInPayload: true}, mediaType: mediaJSON, page: vector1,
			want: `{"items":[{"content":"message1","metadata":{"sourceTimestamp":1700000000000,"key":"key","offset":0,"partition":0,"topic":"test-topic"}},` +
				`{"content":"message2","metadata":{"sourceTimestamp":1700000000000,"key":"key","offset":1,"partition":0,"topic":"test-topic"}}]}`,
		},
		"json vector 2 (ids and pagination)": {
			mediaType: mediaJSON, page: vector2,
			want: `{"items":[{"id":"dGVzdC10b3BpY0AwIzA=","content":"message1"},{"id":"dGVzdC10b3BpY0AwIzE=","content":"message2"}],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzE="}}`,
		},
		"json vector 2 empty page with limit as a string": {
			mediaType: mediaJSON, page: vector2Empty,
			want: `{"items":[],"pagination":{"nextCursor":"dGVzdC10b3BpY0AwIzI=","limit":"10"}}`,
		},
		"json empty": {
			mediaType: mediaJSON, page: &page{},
			want: `{"items":[]}`,
		},
		"json error": {
			mediaType: mediaJSON, page: withError,
			want: `{"items":[{"id":"a","content":"m1"}],"error":{"id":"e1","content":"Connection closed","metadata":{"key":"FAILURE_ENDPOINT_CONNECTION_CLOSED","statusCode":500}}}`,
		},
		"json headers as arrays, content as a string": {
			format: pageFormat{headersInPayload: true}, mediaType: mediaJSON, page: withHeaders,
			want: `{"items":[{"content":"{\"field\":\"value\"}","headers":{"X-Multi":["a","b"],"header1":["headerValue1"]}}]}`,
		},
		"json headers and metadata present even when empty": {
			format: pageFormat{headersInPayload: true, metadataInPayload: true}, mediaType: mediaJSON,
			page: &page{items: []*gateway.Message{{Content: []byte("x")}}},
			want: `{"items":[{"content":"x","headers":{},"metadata":{}}]}`,
		},
		"xml vector 2": {
			mediaType: mediaXML, page: vector2,
			want: `<response><items><item><id>dGVzdC10b3BpY0AwIzA=</id><content><![CDATA[message1]]></content></item>` +
				`<item><id>dGVzdC10b3BpY0AwIzE=</id><content><![CDATA[message2]]></content></item></items>` +
				`<pagination><nextCursor>dGVzdC10b3BpY0AwIzE=</nextCursor></pagination></response>`,
		},
		"xml empty with limit": {
			mediaType: mediaXML, page: vector2Empty,
			want: `<response><items></items><pagination><nextCursor>dGVzdC10b3BpY0AwIzI=</nextCursor><limit>10</limit></pagination></response>`,
		},
		"xml error, headers and metadata": {
			format: pageFormat{headersInPayload: true, metadataInPayload: true}, mediaType: mediaXML,
			page: &page{
				items: []*gateway.Message{{Content: []byte("a]]>b"), Headers: gateway.Headers{"h": {"1", "2"}}, Metadata: map[string]any{"topic": "t", "partition": float64(3)}}},
				err:   &gateway.Message{Error: &gateway.Failure{Message: "bad <thing>"}},
			},
			want: `<response><items><item><content><![CDATA[a]]]]><![CDATA[>b]]></content><headers><h>1,2</h></headers><metadata><partition>3</partition><topic>t</topic></metadata></item></items>` +
				`<error><content><![CDATA[bad <thing>]]></content><headers></headers><metadata></metadata></error></response>`,
		},
		"text vector 1": {
			mediaType: mediaText, page: vector1,
			want: "items\nitem\ncontent: message1\n\nitem\ncontent: message2\n",
		},
		"text vector 2": {
			mediaType: mediaText, page: vector2,
			want: "items\nitem\nid: dGVzdC10b3BpY0AwIzA=\ncontent: message1\n\nitem\nid: dGVzdC10b3BpY0AwIzE=\ncontent: message2\n\npagination\nnextCursor: dGVzdC10b3BpY0AwIzE=",
		},
		"text empty with limit": {
			mediaType: mediaText, page: vector2Empty,
			want: "items\n\npagination\nnextCursor: dGVzdC10b3BpY0AwIzI=\nlimit: 10",
		},
		"text error": {
			mediaType: mediaText, page: withError,
			want: "items\nitem\nid: a\ncontent: m1\n\nerror\nid: e1\ncontent: Connection closed\nmetadata: {key=FAILURE_ENDPOINT_CONNECTION_CLOSED, statusCode=500}\n",
		},
		"text headers and metadata as Java maps": {
			format: pageFormat{headersInPayload: true, metadataInPayload: true}, mediaType: mediaText,
			page: &page{items: []*gateway.Message{{Content: []byte("x"), Headers: gateway.Headers{"b": {"1", "2"}, "a": {"3"}},
				Metadata: map[string]any{"topic": "t", "sourceTimestamp": float64(5)}}}},
			want: "items\nitem\ncontent: x\nheaders: {a=[3], b=[1, 2]}\nmetadata: {sourceTimestamp=5, topic=t}\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(tc.format.appendPage(nil, tc.mediaType, tc.page))
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			switch tc.mediaType {
			case mediaJSON:
				if !json.Valid([]byte(got)) {
					t.Fatalf("invalid JSON: %s", got)
				}
			case mediaXML:
				var v any
				if err := xml.Unmarshal([]byte(got), &v); err != nil {
					t.Fatalf("invalid XML (%v): %s", err, got)
				}
			}
		})
	}
}

func TestAppendJSONValue(t *testing.T) {
	tests := map[string]struct {
		v    any
		want string
	}{
		"nested":   {map[string]any{"b": []any{true, nil, 1.5}, "a": "x"}, `{"a":"x","b":[true,null,1.5]}`},
		"large":    {float64(1 << 53), `9007199254740992`},
		"nan":      {nanValue(), `null`},
		"int":      {int32(-3), `-3`},
		"strings":  {[]string{"a"}, `["a"]`},
		"escaping": {"<a&b>\"", `"<a&b>\""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(appendJSONValue(nil, tc.v, 0)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestNegotiate(t *testing.T) {
	tests := map[string]struct {
		accept []string
		want   string // "" for unsupported
	}{
		"no accept":                 {nil, mediaText},
		"empty value":               {[]string{""}, mediaText},
		"json":                      {[]string{"application/json"}, mediaJSON},
		"xml":                       {[]string{"application/xml"}, mediaXML},
		"text":                      {[]string{"text/plain"}, mediaText},
		"wildcard":                  {[]string{"*/*"}, mediaJSON},
		"case and parameters":       {[]string{"Application/JSON; charset=utf-8"}, mediaJSON},
		"first supported wins":      {[]string{"text/html, application/xml, application/json"}, mediaXML},
		"quality beats order":       {[]string{"application/xml;q=0.5, text/plain;q=0.9"}, mediaText},
		"quality across values":     {[]string{"application/xml;q=0.2", "application/json;q=0.3"}, mediaJSON},
		"ties keep order":           {[]string{"text/plain;q=0.8,application/json;q=0.8"}, mediaText},
		"supported beats wildcard":  {[]string{"*/*, application/xml"}, mediaXML},
		"browser default":           {[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, mediaXML},
		"wildcard first after sort": {[]string{"text/html;q=0.1, */*"}, mediaJSON},
		"unsupported":               {[]string{"text/html"}, ""},
		"unsupported subtype range": {[]string{"application/*"}, ""},
		"q=0 is not acceptable":     {[]string{"application/json;q=0"}, ""},
		"q=0 skipped":               {[]string{"application/json;q=0, text/plain"}, mediaText},
		"invalid q counts as 1":     {[]string{"application/xml;q=x"}, mediaXML},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := negotiate(tc.accept)
			if tc.want == "" {
				if ok {
					t.Fatalf("got %q, want unsupported", got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, ok, tc.want)
			}
		})
	}
}
