package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

func mustInstance(t *testing.T, json string) *instance {
	t.Helper()
	cfg, err := decodeConfig([]byte(json))
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.validate(); d.HasErrors() {
		t.Fatal(d.Err())
	}
	inst, err := newInstance("i", "api", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestEvaluateStaticIsShared(t *testing.T) {
	inst := mustInstance(t, `{"bootstrap_servers":"b:1","consumer":{"enabled":true,"topics":["t"]}}`)
	a, err := inst.evaluate(&gateway.Context{Attributes: map[string]any{"unrelated": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if a != inst.static {
		t.Fatal("a configuration without EL or overrides was evaluated again")
	}
}

func TestEvaluate(t *testing.T) {
	base := `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_SSL","sasl":{"mechanism":"OAUTHBEARER",
		"jaas_config":"M required access_token=\"{#context.attributes['gravitee.attribute.kafka.oauthbearer.token']}\";"}},
		"producer":{"enabled":true,"topics":["p"]},
		"consumer":{"enabled":true,"topics":["t","{#request.headers['X-Topic'][0]}"],"auto_offset_reset":"{#request.headers['X-AutoOffsetReset'][0]}"}}`
	tests := map[string]struct {
		headers gateway.Headers
		attrs   map[string]any
		check   func(t *testing.T, c *Config)
		invalid string
	}{
		// docs/behaviour.md 7.4: a valid value after EL works...
		"EL offset reset earliest": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"earliest"}, "X-Topic": {"u"}},
			check: func(t *testing.T, c *Config) {
				if c.Consumer.AutoOffsetReset != "earliest" || !reflect.DeepEqual(c.Consumer.Topics, []string{"t", "u"}) {
					t.Fatalf("got %q %v", c.Consumer.AutoOffsetReset, c.Consumer.Topics)
				}
			},
		},
		// ...and an invalid one is the request-level Invalid configuration.
		"EL offset reset invalid": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"constraint_violation"}},
			invalid: "auto_offset_reset",
		},
		"token from context": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}},
			attrs:   map[string]any{"gravitee.attribute.kafka.oauthbearer.token": "tok-1"},
			check: func(t *testing.T, c *Config) {
				if c.Security.SASL.JAASConfig != `M required access_token="tok-1";` {
					t.Fatalf("jaas = %q", c.Security.SASL.JAASConfig)
				}
			},
		},
		"attribute overrides then EL": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}, "X-B": {"other:9092"}},
			attrs: map[string]any{
				"gravitee.attributes.endpoint.kafka.bootstrapServers":                  "{#request.headers['X-B'][0]}",
				"gravitee.attributes.endpoint.kafka.consumer.topics":                   "x, y",
				"gravitee.attributes.endpoint.kafka.producer.topics":                   `["q1","q2"]`,
				"gravitee.attributes.endpoint.kafka.consumer.autoOffsetReset":          "EARLIEST",
				"gravitee.attributes.endpoint.kafka.consumer.encodeMessageId":          false,
				"gravitee.attributes.endpoint.kafka.consumer.check_topic_existence":    "true",
				"gravitee.attributes.endpoint.kafka.security.sasl.saslMechanism":       "SCRAM_SHA_256",
				"gravitee.attributes.endpoint.kafka.security.sasl.saslJaasConfig":      "M required username=u password=p;",
				"gravitee.attributes.endpoint.kafka.security.ssl.trustStore.type":      "PEM",
				"gravitee.attributes.endpoint.kafka.security.ssl.keystore.keyPassword": "kp",
				"gravitee.attributes.endpoint.kafka.producer.compressionType":          "lz4",
			},
			check: func(t *testing.T, c *Config) {
				want := Config{
					BootstrapServers: "other:9092",
					Security: SecurityConfig{Protocol: "SASL_SSL", SASL: SASLConfig{Mechanism: "SCRAM-SHA-256", JAASConfig: "M required username=u password=p;"},
						SSL: SSLConfig{Truststore: StoreConfig{Type: "PEM"}, Keystore: StoreConfig{KeyPassword: "kp"}}},
					Producer: ProducerConfig{Enabled: true, Topics: []string{"q1", "q2"}, CompressionType: "lz4"},
					Consumer: ConsumerConfig{Enabled: true, Topics: []string{"x", "y"}, AutoOffsetReset: "earliest", CheckTopicExistence: true},
				}
				f := false
				want.Consumer.EncodeMessageID = &f
				if !reflect.DeepEqual(*c, want) {
					t.Fatalf("got  %+v\nwant %+v", *c, want)
				}
			},
		},
		"enum attribute is not EL-evaluated": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}},
			attrs:   map[string]any{"gravitee.attributes.endpoint.kafka.security.protocol": "{#'SSL'}"},
			invalid: "security.protocol",
		},
		"boolean attribute must be boolean": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}},
			attrs:   map[string]any{"gravitee.attributes.endpoint.kafka.consumer.enabled": "yes"},
			invalid: "consumer.enabled",
		},
		"EL failure": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}},
			attrs:   map[string]any{"gravitee.attributes.endpoint.kafka.bootstrapServers": "{#nosuchroot.x}"},
			invalid: "bootstrap_servers",
		},
		"msk iam needs sasl_ssl after evaluation": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}},
			attrs: map[string]any{
				"gravitee.attributes.endpoint.kafka.security.protocol":           "SASL_PLAINTEXT",
				"gravitee.attributes.endpoint.kafka.security.sasl.saslMechanism": "AWS_MSK_IAM",
			},
			invalid: "SASL_SSL",
		},
		"bad pattern after evaluation": {
			headers: gateway.Headers{"X-AutoOffsetReset": {"latest"}},
			attrs:   map[string]any{"gravitee.attributes.endpoint.kafka.consumer.topicPattern": "a("},
			invalid: "topic_pattern",
		},
	}
	inst := mustInstance(t, base)
	if inst.static != nil {
		t.Fatal("a configuration with EL was treated as static")
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := tc.headers.Clone()
			if h.Get("X-Topic") == "" {
				h.Add("X-Topic", "u")
			}
			c := &gateway.Context{Request: &gateway.Request{Headers: h}, Attributes: tc.attrs}
			got, err := inst.evaluate(c)
			if tc.invalid != "" {
				if err == nil || !strings.Contains(err.Error(), tc.invalid) {
					t.Fatalf("error = %v, want one naming %q", err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
	// Evaluation never writes to the configured instance.
	if inst.cfg.BootstrapServers != "b:1" || len(inst.cfg.Consumer.Topics) != 2 || inst.cfg.Consumer.EncodeMessageID != nil {
		t.Fatalf("instance configuration modified: %+v", inst.cfg)
	}
}
