package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

func TestToList(t *testing.T) {
	tests := map[string]struct {
		in   any
		want []string
	}{
		"nil":                 {nil, nil},
		"one":                 {"test-topic", []string{"test-topic"}},
		"comma":               {"test-topic,test-topic-attribute", []string{"test-topic", "test-topic-attribute"}},
		"comma and spaces":    {"test-topic-message-attribute, another-topic-override", []string{"test-topic-message-attribute", "another-topic-override"}},
		"json array":          {`["a", "b"]`, []string{"a", "b"}},
		"json array spaced":   {` ["a","b"] `, []string{"a", "b"}},
		"bracketed not json":  {"[a,b]", []string{"[a", "b]"}},
		"empty parts dropped": {"a,, b ,", []string{"a", "b"}},
		"duplicates dropped":  {"a,b,a", []string{"a", "b"}},
		"string slice":        {[]string{"x", " y "}, []string{"x", "y"}},
		"any slice":           {[]any{"x", 3.0, nil}, []string{"x", "3"}},
		"bytes":               {[]byte("p,q"), []string{"p", "q"}},
		"number":              {42.0, []string{"42"}},
		"empty string":        {"", []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := toList(tc.in)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("toList(%#v) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestConsumerTopics(t *testing.T) {
	cfg := &Config{Consumer: ConsumerConfig{Topics: []string{"configured"}}}
	pattern := &Config{Consumer: ConsumerConfig{TopicPattern: "demo-.*"}}
	tests := map[string]struct {
		attrs   map[string]any
		cfg     *Config
		want    []string
		pattern string
		err     error
	}{
		"configured":              {cfg: cfg, want: []string{"configured"}},
		"legacy attribute":        {attrs: map[string]any{"gravitee.attribute.kafka.topics": "test-topic,test-topic-attribute"}, cfg: cfg, want: []string{"test-topic", "test-topic-attribute"}},
		"consumer attribute":      {attrs: map[string]any{"gravitee.attribute.kafka.consumer.topics": `["x","y"]`, "gravitee.attribute.kafka.topics": "z"}, cfg: cfg, want: []string{"x", "y"}},
		"singular legacy":         {attrs: map[string]any{"gravitee.attribute.kafka.topic": "one"}, cfg: cfg, want: []string{"one"}},
		"empty attribute":         {attrs: map[string]any{"gravitee.attribute.kafka.topics": " "}, cfg: cfg, want: []string{"configured"}},
		"attribute with EL":       {attrs: map[string]any{"gravitee.attribute.kafka.topics": "{#request.headers['X-Topic'][0]}"}, cfg: cfg, want: []string{"from-header"}},
		"pattern":                 {cfg: pattern, pattern: `\A(?:demo-.*)\z`},
		"attribute beats pattern": {attrs: map[string]any{"gravitee.attribute.kafka.topics": "a"}, cfg: pattern, want: []string{"a"}},
		"nothing":                 {cfg: &Config{}, err: errNoTopics},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &gateway.Context{Attributes: tc.attrs, Request: &gateway.Request{Headers: gateway.Headers{"X-Topic": {"from-header"}}}}
			got, re, err := consumerTopics(c, tc.cfg)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("topics = %v, want %v", got, tc.want)
			}
			if tc.pattern != "" && (re == nil || re.String() != tc.pattern) {
				t.Fatalf("pattern = %v, want %s", re, tc.pattern)
			}
		})
	}
}

func TestTopicPatternMatchesWholeName(t *testing.T) {
	re, err := compileTopicPattern("demo-.*|other")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"demo-1": true, "other": true, "xdemo-1": false, "others": false} {
		if re.MatchString(name) != want {
			t.Errorf("match %q = %v, want %v", name, !want, want)
		}
	}
	if _, err := compileTopicPattern("a("); err == nil {
		t.Fatal("a( compiled")
	}
}

func TestProducerTopicsAndKey(t *testing.T) {
	ctxTopics := []string{"ctx"}
	tests := map[string]struct {
		attrs map[string]any
		want  []string
	}{
		"context topics":     {nil, []string{"ctx"}},
		"dynamic attribute":  {map[string]any{"gravitee.attributes.endpoint.kafka.producer.topics": "d1, d2", "gravitee.attribute.kafka.topics": "legacy"}, []string{"d1", "d2"}},
		"producer attribute": {map[string]any{"gravitee.attribute.kafka.producer.topics": "p", "gravitee.attribute.kafka.topics": "legacy"}, []string{"p"}},
		"legacy attribute":   {map[string]any{"gravitee.attribute.kafka.topics": "test-topic-message-attribute, another-topic-override"}, []string{"test-topic-message-attribute", "another-topic-override"}},
		"EL from message":    {map[string]any{"gravitee.attribute.kafka.topics": "{#message.headers['T'][0]}"}, []string{"from-message"}},
		"unrelated":          {map[string]any{"other": "x"}, []string{"ctx"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := &gateway.Message{Attributes: tc.attrs, Headers: gateway.Headers{"T": {"from-message"}}}
			got, err := producerTopics(m, ctxTopics, el.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("topics = %v, want %v", got, tc.want)
			}
		})
	}

	keys := map[string]struct {
		attrs    map[string]any
		ctxKey   string
		ctxHas   bool
		want     string
		wantHave bool
	}{
		"none":              {nil, "", false, "", false},
		"context":           {nil, "ck", true, "ck", true},
		"message beats":     {map[string]any{"gravitee.attribute.kafka.recordKey": "mk"}, "ck", true, "mk", true},
		"endpoint spelling": {map[string]any{"gravitee.attribute.endpoint.kafka.recordKey": "ek"}, "", false, "ek", true},
	}
	for name, tc := range keys {
		t.Run("key "+name, func(t *testing.T) {
			got, ok := recordKey(&gateway.Message{Attributes: tc.attrs}, tc.ctxKey, tc.ctxHas)
			if got != tc.want || ok != tc.wantHave {
				t.Fatalf("recordKey = %q, %v; want %q, %v", got, ok, tc.want, tc.wantHave)
			}
		})
	}
}

func TestGroupID(t *testing.T) {
	req := &gateway.Request{ClientIdentifier: "client-1"}
	if g := groupID(&gateway.Context{Request: req, Attributes: map[string]any{"gravitee.attribute.kafka.groupId": "g1"}}); g != "g1" {
		t.Fatalf("groupId attribute: %q", g)
	}
	if g := groupID(&gateway.Context{Request: req, Attributes: map[string]any{"gravitee.attribute.endpoint.kafka.groupId": "g2"}}); g != "g2" {
		t.Fatalf("endpoint groupId attribute: %q", g)
	}
	if g := groupID(&gateway.Context{Request: req, Attributes: map[string]any{"gravitee.attribute.kafka.groupId": ""}}); g != "client-1" {
		t.Fatalf("empty attribute falls back to the client identifier: %q", g)
	}
	a, b := groupID(&gateway.Context{Request: &gateway.Request{}}), groupID(nil)
	if len(a) != 36 || len(b) != 36 || a == b {
		t.Fatalf("random group ids %q %q", a, b)
	}
}
