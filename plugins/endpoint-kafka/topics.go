package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Attribute names that choose topics (docs/behaviour.md 2.4 and 3, docs/differences.md #5).
// Every spelling the reference or its docs use is accepted.
const (
	attrDynProducerTopics    = dynamicPrefix + "producer.topics"
	attrKafkaProducerTopics  = "gravitee.attribute.kafka.producer.topics"
	attrKafkaConsumerTopics  = "gravitee.attribute.kafka.consumer.topics"
	attrKafkaTopics          = "gravitee.attribute.kafka.topics"
	attrKafkaTopic           = "gravitee.attribute.kafka.topic"
	attrKafkaRecordKey       = "gravitee.attribute.kafka.recordKey"
	attrEndpointRecordKey    = "gravitee.attribute.endpoint.kafka.recordKey"
	attrKafkaGroupID         = "gravitee.attribute.kafka.groupId"
	attrEndpointKafkaGroupID = "gravitee.attribute.endpoint.kafka.groupId"
)

// Lookup orders, highest priority first.
var (
	producerMessageTopicAttrs = []string{attrDynProducerTopics, attrKafkaProducerTopics, attrKafkaTopics, attrKafkaTopic}
	producerContextTopicAttrs = []string{attrKafkaProducerTopics, attrKafkaTopics, attrKafkaTopic}
	consumerContextTopicAttrs = []string{attrKafkaConsumerTopics, attrKafkaTopics, attrKafkaTopic}
	recordKeyAttrs            = []string{attrKafkaRecordKey, attrEndpointRecordKey}
	groupIDAttrs              = []string{attrKafkaGroupID, attrEndpointKafkaGroupID}
)

// toList converts an attribute value to a list the way Gravitee's
// ListUtils.toList does: a string is split on ',' and each part trimmed, a
// string that looks like a JSON array is parsed as one, and a collection is
// copied. Empty entries and duplicates are dropped; order is kept (the
// reference collects into a LinkedHashSet).
func toList(v any) []string {
	var raw []string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		raw = splitListString(x)
	case []byte:
		raw = splitListString(string(x))
	case []string:
		raw = x
	case []any:
		raw = make([]string, 0, len(x))
		for _, e := range x {
			if e != nil {
				raw = append(raw, scalarString(e))
			}
		}
	default:
		raw = []string{scalarString(x)}
	}
	return dedupe(raw)
}

func splitListString(s string) []string {
	t := strings.TrimSpace(s)
	if len(t) >= 2 && t[0] == '[' && t[len(t)-1] == ']' {
		var arr []any
		if err := json.Unmarshal([]byte(t), &arr); err == nil {
			out := make([]string, 0, len(arr))
			for _, e := range arr {
				if e != nil {
					out = append(out, scalarString(e))
				}
			}
			return out
		}
	}
	return strings.Split(s, ",")
}

// scalarString renders a scalar attribute value as text.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	default:
		return fmt.Sprint(x)
	}
}

// dedupe trims entries and drops empty ones and repeats, keeping order.
func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		dup := false
		for _, o := range out {
			if o == s {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// listAttr returns the first non-empty list among the named attributes.
func listAttr(attrs map[string]any, names []string) []string {
	if len(attrs) == 0 {
		return nil
	}
	for _, n := range names {
		if v, ok := attrs[n]; ok {
			if l := toList(v); len(l) > 0 {
				return l
			}
		}
	}
	return nil
}

// stringAttr returns the first non-empty string among the named attributes.
func stringAttr(attrs map[string]any, names []string) (string, bool) {
	if len(attrs) == 0 {
		return "", false
	}
	for _, n := range names {
		if v, ok := attrs[n]; ok && v != nil {
			if s := scalarString(v); s != "" {
				return s, true
			}
		}
	}
	return "", false
}

// evalList evaluates EL in list entries taken from attributes (values that
// policies computed may themselves hold templates, as in the reference).
func evalList(l []string, env el.Env) ([]string, error) {
	var out []string
	for i, s := range l {
		if !el.HasEL(s) {
			if out != nil {
				out = append(out, s)
			}
			continue
		}
		if out == nil {
			out = append(make([]string, 0, len(l)), l[:i]...)
		}
		v, err := el.EvalString(s, env)
		if err != nil {
			return nil, err
		}
		out = append(out, toList(v)...)
	}
	if out == nil {
		return l, nil
	}
	return dedupe(out), nil
}

// consumerTopics resolves the topics of a subscription (docs/behaviour.md 2.4):
// context attributes first, then the evaluated configuration's topics or
// pattern. It returns an error when neither yields anything.
func consumerTopics(c *gateway.Context, cfg *Config) (topics []string, pattern *regexp.Regexp, err error) {
	var attrs map[string]any
	if c != nil {
		attrs = c.Attributes
	}
	if l := listAttr(attrs, consumerContextTopicAttrs); len(l) > 0 {
		env := el.Env{Attributes: attrs}
		if c != nil {
			env.Request = c.Request
		}
		if l, err = evalList(l, env); err != nil {
			return nil, nil, err
		}
		if len(l) > 0 {
			return l, nil, nil
		}
	}
	if len(cfg.Consumer.Topics) > 0 {
		return cfg.Consumer.Topics, nil, nil
	}
	if cfg.Consumer.TopicPattern != "" {
		re, err := compileTopicPattern(cfg.Consumer.TopicPattern)
		if err != nil {
			return nil, nil, err
		}
		return nil, re, nil
	}
	return nil, nil, errNoTopics
}

// errNoTopics is the reference's IllegalStateException text.
var errNoTopics = errors.New("Kafka topics couldn't be loaded from Configuration or Context.")

// compileTopicPattern compiles a topic pattern anchored at both ends: Kafka
// subscribes to the topics the whole name of which matches (Java's
// Matcher.matches).
func compileTopicPattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`\A(?:` + p + `)\z`)
}

// producerTopics resolves the topics one message is published to
// (docs/behaviour.md 3): message attributes, then the batch's context topics
// (computed once per batch by the caller), then the configured topics.
func producerTopics(m *gateway.Message, ctxTopics []string, env el.Env) ([]string, error) {
	if len(m.Attributes) > 0 {
		if l := listAttr(m.Attributes, producerMessageTopicAttrs); len(l) > 0 {
			env.Message = m
			return evalList(l, env)
		}
	}
	return ctxTopics, nil
}

// recordKey returns the record key for a message: a message attribute, then
// a context attribute (docs/behaviour.md 3, docs/differences.md #5). ok is false for no key.
func recordKey(m *gateway.Message, ctxKey string, ctxHasKey bool) (string, bool) {
	if len(m.Attributes) > 0 {
		if k, ok := stringAttr(m.Attributes, recordKeyAttrs); ok {
			return k, true
		}
	}
	return ctxKey, ctxHasKey
}
