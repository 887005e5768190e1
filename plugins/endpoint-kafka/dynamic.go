package main

import (
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// dynamicPrefix starts the context attributes that override configuration
// fields per request (docs/behaviour.md 1.6): the prefix followed by the field path.
const dynamicPrefix = "gravitee.attributes.endpoint.kafka."

// configField describes one configuration field for dynamic evaluation.
// Exactly one accessor is set.
type configField struct {
	// path is the HCL attribute path, for diagnostics.
	path []string
	// names are the attribute suffixes that override the field: the
	// reference's JSON path first, then the HCL path.
	names []string
	str   func(*Config) *string
	list  func(*Config) *[]string
	flag  func(*Config) *bool
	// enum fields take attribute values as they are and never hold EL,
	// like Java enums in the reference's evaluator.
	enum bool
}

// configFields lists every field of Config. The reference names come from
// its JSON schema; trustStore/keyStore casing is unverified there, so both
// spellings are accepted.
var configFields = []configField{
	{path: p("bootstrap_servers"), names: n("bootstrapServers", "bootstrap_servers"), str: func(c *Config) *string { return &c.BootstrapServers }},
	{path: p("security", "protocol"), names: n("security.protocol"), enum: true, str: func(c *Config) *string { return &c.Security.Protocol }},
	{path: p("security", "sasl", "mechanism"), names: n("security.sasl.saslMechanism", "security.sasl.mechanism"), enum: true, str: func(c *Config) *string { return &c.Security.SASL.Mechanism }},
	{path: p("security", "sasl", "jaas_config"), names: n("security.sasl.saslJaasConfig", "security.sasl.jaas_config"), str: func(c *Config) *string { return &c.Security.SASL.JAASConfig }},
	{path: p("security", "ssl", "truststore", "type"), names: store("trust", "type"), enum: true, str: func(c *Config) *string { return &c.Security.SSL.Truststore.Type }},
	{path: p("security", "ssl", "truststore", "location"), names: store("trust", "location"), str: func(c *Config) *string { return &c.Security.SSL.Truststore.Location }},
	{path: p("security", "ssl", "truststore", "certificates"), names: store("trust", "certificates"), str: func(c *Config) *string { return &c.Security.SSL.Truststore.Certificates }},
	{path: p("security", "ssl", "truststore", "password"), names: store("trust", "password"), str: func(c *Config) *string { return &c.Security.SSL.Truststore.Password }},
	{path: p("security", "ssl", "keystore", "type"), names: store("key", "type"), enum: true, str: func(c *Config) *string { return &c.Security.SSL.Keystore.Type }},
	{path: p("security", "ssl", "keystore", "location"), names: store("key", "location"), str: func(c *Config) *string { return &c.Security.SSL.Keystore.Location }},
	{path: p("security", "ssl", "keystore", "password"), names: store("key", "password"), str: func(c *Config) *string { return &c.Security.SSL.Keystore.Password }},
	{path: p("security", "ssl", "keystore", "key"), names: store("key", "key"), str: func(c *Config) *string { return &c.Security.SSL.Keystore.Key }},
	{path: p("security", "ssl", "keystore", "key_password"), names: append(store("key", "keyPassword"), store("key", "key_password")...), str: func(c *Config) *string { return &c.Security.SSL.Keystore.KeyPassword }},
	{path: p("security", "ssl", "keystore", "certificate_chain"), names: append(store("key", "certificateChain"), store("key", "certificate_chain")...), str: func(c *Config) *string { return &c.Security.SSL.Keystore.CertificateChain }},
	{path: p("producer", "enabled"), names: n("producer.enabled"), flag: func(c *Config) *bool { return &c.Producer.Enabled }},
	{path: p("producer", "topics"), names: n("producer.topics"), list: func(c *Config) *[]string { return &c.Producer.Topics }},
	{path: p("producer", "compression_type"), names: n("producer.compressionType", "producer.compression_type"), enum: true, str: func(c *Config) *string { return &c.Producer.CompressionType }},
	{path: p("consumer", "enabled"), names: n("consumer.enabled"), flag: func(c *Config) *bool { return &c.Consumer.Enabled }},
	{path: p("consumer", "topics"), names: n("consumer.topics"), list: func(c *Config) *[]string { return &c.Consumer.Topics }},
	{path: p("consumer", "topic_pattern"), names: n("consumer.topicPattern", "consumer.topic_pattern", "consumer.topics.pattern"), str: func(c *Config) *string { return &c.Consumer.TopicPattern }},
	{path: p("consumer", "auto_offset_reset"), names: n("consumer.autoOffsetReset", "consumer.auto_offset_reset"), str: func(c *Config) *string { return &c.Consumer.AutoOffsetReset }},
	{path: p("consumer", "encode_message_id"), names: n("consumer.encodeMessageId", "consumer.encode_message_id"), flag: func(c *Config) *bool {
		if c.Consumer.EncodeMessageID == nil {
			v := true
			c.Consumer.EncodeMessageID = &v
		}
		return c.Consumer.EncodeMessageID
	}},
	{path: p("consumer", "check_topic_existence"), names: n("consumer.checkTopicExistence", "consumer.check_topic_existence"), flag: func(c *Config) *bool { return &c.Consumer.CheckTopicExistence }},
	{path: p("consumer", "remove_confluent_header"), names: n("consumer.removeConfluentHeader", "consumer.remove_confluent_header"), flag: func(c *Config) *bool { return &c.Consumer.RemoveConfluentHeader }},
}

func p(parts ...string) []string { return parts }

// n prefixes attribute suffixes with dynamicPrefix.
func n(suffixes ...string) []string {
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = dynamicPrefix + s
	}
	return out
}

// store names a trust or key store field under its accepted spellings.
func store(kind, field string) []string {
	return n("security.ssl."+kind+"Store."+field, "security.ssl."+kind+"store."+field)
}

// templates holds the compiled EL of one instance's configuration, by
// index in configFields.
type templates struct {
	str  map[int]*el.Template
	list map[int][]*el.Template
}

// compileTemplates compiles every EL value of cfg. It reports whether any
// field holds EL.
func compileTemplates(cfg *Config) (templates, bool, error) {
	t := templates{str: map[int]*el.Template{}, list: map[int][]*el.Template{}}
	any := false
	for i, f := range configFields {
		switch {
		case f.str != nil && !f.enum:
			if s := *f.str(cfg); el.HasEL(s) {
				tm, err := el.Compile(s)
				if err != nil {
					return t, false, fmt.Errorf("%s: %w", strings.Join(f.path, "."), err)
				}
				t.str[i] = tm
				any = true
			}
		case f.list != nil:
			l := *f.list(cfg)
			var tms []*el.Template
			for j, s := range l {
				if !el.HasEL(s) {
					continue
				}
				tm, err := el.Compile(s)
				if err != nil {
					return t, false, fmt.Errorf("%s: %w", strings.Join(f.path, "."), err)
				}
				if tms == nil {
					tms = make([]*el.Template, len(l))
				}
				tms[j] = tm
			}
			if tms != nil {
				t.list[i] = tms
				any = true
			}
		}
	}
	return t, any, nil
}

// hasOverrides reports whether any context attribute overrides configuration.
func hasOverrides(attrs map[string]any) bool {
	for k := range attrs {
		if strings.HasPrefix(k, dynamicPrefix) {
			return true
		}
	}
	return false
}

// evaluate returns the configuration for one request: context attributes
// named gravitee.attributes.endpoint.kafka.<path> replace fields, then EL
// is evaluated, then the result is validated (docs/behaviour.md 1.6). Any failure
// is the request-level 500 "Invalid configuration". When nothing is dynamic
// the instance's pre-evaluated configuration is returned as is.
func (inst *instance) evaluate(c *gateway.Context) (*Config, error) {
	var attrs map[string]any
	if c != nil {
		attrs = c.Attributes
	}
	overrides := hasOverrides(attrs)
	if !overrides && inst.static != nil {
		return inst.static, nil
	}
	env := el.Env{Attributes: attrs, API: inst.apiEnv}
	if c != nil {
		env.Request = c.Request
	}
	cfg := inst.cfg.clone()
	for i, f := range configFields {
		var v any
		found := false
		if overrides {
			for _, name := range f.names {
				if x, ok := attrs[name]; ok && x != nil {
					v, found = x, true
					break
				}
			}
		}
		var err error
		switch {
		case f.str != nil:
			err = evalString(f, f.str(cfg), v, found, inst.tmpl.str[i], env)
		case f.list != nil:
			err = evalListField(f.list(cfg), v, found, inst.tmpl.list[i], env)
		case f.flag != nil && found:
			err = setFlag(f.flag(cfg), v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(f.path, "."), err)
		}
	}
	if err := cfg.checkEvaluated(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func evalString(f configField, dst *string, v any, found bool, tm *el.Template, env el.Env) error {
	var err error
	switch {
	case found:
		*dst = scalarString(v)
		if !f.enum && el.HasEL(*dst) {
			*dst, err = el.EvalString(*dst, env)
		}
	case tm != nil:
		*dst, err = tm.EvalString(env)
	}
	return err
}

func evalListField(dst *[]string, v any, found bool, tms []*el.Template, env el.Env) error {
	if found {
		l, err := evalList(toList(v), env)
		if err != nil {
			return err
		}
		*dst = l
		return nil
	}
	if tms == nil {
		return nil
	}
	out := make([]string, 0, len(*dst))
	for j, s := range *dst {
		if tms[j] == nil {
			out = append(out, s)
			continue
		}
		r, err := tms[j].EvalString(env)
		if err != nil {
			return err
		}
		out = append(out, toList(r)...)
	}
	*dst = dedupe(out)
	return nil
}

// setFlag sets a boolean field from an attribute. The reference requires a
// Boolean; the text "true" or "false" is accepted too, since policies that
// compute attributes with EL produce text.
func setFlag(dst *bool, v any) error {
	switch x := v.(type) {
	case bool:
		*dst = x
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			return fmt.Errorf("%q is not a boolean", x)
		}
	default:
		return fmt.Errorf("%v is not a boolean", v)
	}
	return nil
}
