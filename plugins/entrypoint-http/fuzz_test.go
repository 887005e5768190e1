package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

// fuzzPage builds a page from fuzzed parts: the content, ids, header names
// and values and metadata all come from Kafka records or clients.
func fuzzPage(id string, content []byte, hname, hvalue, mkey, mvalue string, num float64, withErr bool, cursor, limit string) *page {
	m := &gateway.Message{ID: id, Content: content,
		Headers:  gateway.Headers{hname: {hvalue, mvalue}},
		Metadata: map[string]any{mkey: mvalue, "offset": num, "nested": map[string]any{mkey: []any{num, mvalue}}},
	}
	p := &page{items: []*gateway.Message{m, {Content: content}}, nextCursor: cursor, limit: limit}
	if withErr {
		p.err = &gateway.Message{ID: id, Error: &gateway.Failure{Status: 500, Key: mkey, Message: mvalue}}
	}
	return p
}

func addPageSeeds(f *testing.F) {
	f.Add("dGVzdEAwIzA=", []byte(`{"a":1}`), "X-H", "v", "key", "k", 3.0, false, "c", "10", true, true)
	f.Add("", []byte("]]>\x00<&>\"\\\xff\xfe\u2028"), "a b", "<x>", "1k", "\x01", 1e300, true, "<c>", "&", true, true)
	f.Add("\n", []byte(""), "", "", "", "", -0.5, true, "", "", false, false)
}

// FuzzAppendJSON checks that a GET page in JSON is always valid JSON and
// carries each content as the client sent it (invalid UTF-8 bytes turn into
// U+FFFD, as any JSON decoder would read them).
func FuzzAppendJSON(f *testing.F) {
	addPageSeeds(f)
	f.Fuzz(func(t *testing.T, id string, content []byte, hname, hvalue, mkey, mvalue string, num float64, withErr bool, cursor, limit string, headers, metadata bool) {
		p := fuzzPage(id, content, hname, hvalue, mkey, mvalue, num, withErr, cursor, limit)
		out := pageFormat{headersInPayload: headers, metadataInPayload: metadata}.appendJSON(nil, p)
		var got struct {
			Items []struct {
				ID      *string             `json:"id"`
				Content string              `json:"content"`
				Headers map[string][]string `json:"headers"`
			} `json:"items"`
			Error      map[string]any    `json:"error"`
			Pagination map[string]string `json:"pagination"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if len(got.Items) != 2 || got.Items[0].Content != string([]rune(string(content))) {
			t.Fatalf("items %+v from %q", got.Items, out)
		}
		if (got.Error != nil) != withErr || (got.Pagination != nil) != (cursor != "") {
			t.Fatalf("error/pagination presence wrong in %q", out)
		}
	})
}

// FuzzAppendXML checks that a GET page in XML is always a well-formed
// document, whatever the records hold, and that its content comes back.
func FuzzAppendXML(f *testing.F) {
	addPageSeeds(f)
	f.Fuzz(func(t *testing.T, id string, content []byte, hname, hvalue, mkey, mvalue string, num float64, withErr bool, cursor, limit string, headers, metadata bool) {
		p := fuzzPage(id, content, hname, hvalue, mkey, mvalue, num, withErr, cursor, limit)
		out := pageFormat{headersInPayload: headers, metadataInPayload: metadata}.appendXML(nil, p)
		d := xml.NewDecoder(bytes.NewReader(out))
		var contents []string
		var inContent bool
		var text strings.Builder
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("malformed XML %q: %v", out, err)
			}
			switch x := tok.(type) {
			case xml.StartElement:
				inContent = x.Name.Local == "content"
				text.Reset()
			case xml.CharData:
				if inContent {
					text.Write(x)
				}
			case xml.EndElement:
				if x.Name.Local == "content" {
					contents = append(contents, text.String())
				}
				inContent = false
			}
		}
		if len(contents) < 2 || contents[1] != xmlSafe(string(content)) {
			t.Fatalf("contents %q from %q, want %q", contents, out, xmlSafe(string(content)))
		}
	})
}

// xmlSafe is what content becomes in XML: characters XML 1.0 cannot carry
// (invalid UTF-8, most control characters, U+FFFE/U+FFFF) are replaced by
// U+FFFD, and a parser normalises line ends to LF.
func xmlSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !isXMLChar(r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(b.String())
}

// FuzzAppendText checks the text/plain page never panics and always carries
// each content.
func FuzzAppendText(f *testing.F) {
	addPageSeeds(f)
	f.Fuzz(func(t *testing.T, id string, content []byte, hname, hvalue, mkey, mvalue string, num float64, withErr bool, cursor, limit string, headers, metadata bool) {
		p := fuzzPage(id, content, hname, hvalue, mkey, mvalue, num, withErr, cursor, limit)
		out := pageFormat{headersInPayload: headers, metadataInPayload: metadata}.appendText(nil, p)
		if !bytes.HasPrefix(out, []byte("items\nitem\n")) || !bytes.Contains(out, append([]byte("content: "), content...)) {
			t.Fatalf("text page %q lacks its content %q", out, content)
		}
	})
}
