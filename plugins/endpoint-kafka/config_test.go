package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

func TestDecodeDefaults(t *testing.T) {
	cfg, err := decodeConfig([]byte(`{"bootstrap_servers":"b:9092","security":null,"producer":null,"consumer":{"enabled":true,"topics":["t"],"encode_message_id":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Security.Protocol != "PLAINTEXT" || cfg.Producer.CompressionType != "none" || cfg.Consumer.AutoOffsetReset != "latest" ||
		!cfg.Consumer.encodeIDs() || cfg.Producer.Enabled || cfg.Consumer.CheckTopicExistence || cfg.Consumer.RemoveConfluentHeader {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	f := false
	cfg.Consumer.EncodeMessageID = &f
	if cfg.Consumer.encodeIDs() {
		t.Fatal("encode_message_id = false ignored")
	}
	if _, err := decodeConfig([]byte(`{"bootstrap_servers":1}`)); err == nil {
		t.Fatal("a number for bootstrap_servers decoded")
	}
}

type diag struct {
	path    string
	summary string
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		json     string
		errors   []diag
		warnings []diag
	}{
		"minimal": {json: `{"bootstrap_servers":"localhost:9092"}`},
		"full valid": {json: `{"bootstrap_servers":"a:1,b:2","security":{"protocol":"SASL_SSL","sasl":{"mechanism":"SCRAM-SHA-512","jaas_config":"org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p\";"}},
			"producer":{"enabled":true,"topics":["t"],"compression_type":"zstd"},"consumer":{"enabled":true,"topic_pattern":"t-.*","auto_offset_reset":"earliest"}}`},
		"missing bootstrap":          {json: `{}`, errors: []diag{{"bootstrap_servers", "required"}}},
		"bad bootstrap is a warning": {json: `{"bootstrap_servers":"wrong"}`, warnings: []diag{{"bootstrap_servers", "host:port"}}},
		"EL bootstrap not checked":   {json: `{"bootstrap_servers":"{#context.attributes['b']}"}`},
		"bad EL":                     {json: `{"bootstrap_servers":"{#request.headers[}"}`, errors: []diag{{"bootstrap_servers", "invalid expression"}}},
		"producer without topics":    {json: `{"bootstrap_servers":"b:1","producer":{"enabled":true}}`, errors: []diag{{"producer.topics", "required"}}},
		"consumer without topics":    {json: `{"bootstrap_servers":"b:1","consumer":{"enabled":true}}`, errors: []diag{{"consumer.topics", "required"}}},
		"consumer with both":         {json: `{"bootstrap_servers":"b:1","consumer":{"enabled":true,"topics":["a"],"topic_pattern":"b"}}`, errors: []diag{{"consumer.topic_pattern", "not both"}}},
		"bad pattern":                {json: `{"bootstrap_servers":"b:1","consumer":{"enabled":true,"topic_pattern":"a(["}}`, errors: []diag{{"consumer.topic_pattern", "regular expression"}}},
		"bad enums": {json: `{"bootstrap_servers":"b:1","security":{"protocol":"TLS","sasl":{"mechanism":"MD5"},"ssl":{"truststore":{"type":"P7"},"keystore":{"type":"X"}}},"producer":{"compression_type":"brotli"},"consumer":{"auto_offset_reset":"middle"}}`,
			errors: []diag{{"security.protocol", "not one of"}, {"security.sasl.mechanism", "not one of"}, {"security.ssl.truststore.type", "not one of"},
				{"security.ssl.keystore.type", "not one of"}, {"producer.compression_type", "not one of"}, {"consumer.auto_offset_reset", "not one of"}}},
		"EL offset reset not checked": {json: `{"bootstrap_servers":"b:1","consumer":{"auto_offset_reset":"{#request.headers['X'][0]}"}}`},
		"sasl without mechanism":      {json: `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_PLAINTEXT"}}`, errors: []diag{{"security.sasl.mechanism", "required"}}},
		"msk iam needs sasl_ssl":      {json: `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_PLAINTEXT","sasl":{"mechanism":"AWS_MSK_IAM"}}}`, errors: []diag{{"security.sasl.mechanism", "SASL_SSL"}}},
		"bad jaas":                    {json: `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_SSL","sasl":{"mechanism":"PLAIN","jaas_config":"PlainLoginModule username=\"u\";"}}}`, errors: []diag{{"security.sasl.jaas_config", "control flag"}}},
		"jaas missing password":       {json: `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_SSL","sasl":{"mechanism":"PLAIN","jaas_config":"PlainLoginModule required username=\"u\";"}}}`, errors: []diag{{"security.sasl.jaas_config", "password"}}},
		"oauth missing token":         {json: `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_SSL","sasl":{"mechanism":"OAUTHBEARER","jaas_config":"M required;"}}}`, errors: []diag{{"security.sasl.jaas_config", "access_token"}}},
		"EL jaas not parsed":          {json: `{"bootstrap_servers":"b:1","security":{"protocol":"SASL_SSL","sasl":{"mechanism":"OAUTHBEARER","jaas_config":"M required access_token=\"{#context.attributes['tok']}\";"}}}`},
		"java enum spelling":          {json: `{"bootstrap_servers":"b:1","security":{"protocol":"sasl_ssl","sasl":{"mechanism":"SCRAM_SHA_256","jaas_config":"M required username=u password=p;"}}}`},
	}
	k := NewKafka(testLogger(t))
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var resp lifecycle.ValidateResponse
			k.Validate(context.Background(), &lifecycle.ValidateRequest{Type: "kafka", ConfigJSON: []byte(tc.json)}, &resp)
			var errs, warns []diag
			for _, d := range resp.Diagnostics {
				x := diag{strings.Join(d.Path, "."), d.Summary}
				if d.Severity == lifecycle.Error {
					errs = append(errs, x)
				} else {
					warns = append(warns, x)
				}
			}
			match := func(kind string, got, want []diag) {
				if len(got) != len(want) {
					t.Fatalf("%s = %v, want %v", kind, got, want)
				}
				for i := range want {
					if got[i].path != want[i].path || !strings.Contains(got[i].summary, want[i].summary) {
						t.Fatalf("%s[%d] = %v, want %v", kind, i, got[i], want[i])
					}
				}
			}
			match("errors", errs, tc.errors)
			match("warnings", warns, tc.warnings)
		})
	}
}

func TestValidateUnknownTypeAndJSON(t *testing.T) {
	k := NewKafka(testLogger(t))
	var resp lifecycle.ValidateResponse
	k.Validate(context.Background(), &lifecycle.ValidateRequest{Type: "rabbit", ConfigJSON: []byte(`{}`)}, &resp)
	if !resp.Diagnostics.HasErrors() {
		t.Fatal("unknown type accepted")
	}
	resp = lifecycle.ValidateResponse{}
	k.Validate(context.Background(), &lifecycle.ValidateRequest{Type: "kafka", ConfigJSON: []byte(`{`)}, &resp)
	if !resp.Diagnostics.HasErrors() {
		t.Fatal("broken JSON accepted")
	}
	var cresp lifecycle.ConfigureResponse
	k.Configure(context.Background(), &lifecycle.ConfigureRequest{InstanceID: "i", Type: "kafka", ConfigJSON: []byte(`{}`)}, &cresp)
	if !cresp.Diagnostics.HasErrors() {
		t.Fatal("invalid configuration configured")
	}
	if _, err := k.instance("i"); err == nil {
		t.Fatal("an invalid instance was kept")
	}
}

func TestSchemaCoversConfigFields(t *testing.T) {
	// Every dynamically evaluated field must be an attribute of the schema,
	// so operators can set in HCL what attributes can override.
	s := typeSchema()
	has := func(path []string) bool {
		attrs, blocks := s.Attributes, s.Blocks
		for i, p := range path {
			if i == len(path)-1 {
				for _, a := range attrs {
					if a.Name == p {
						return true
					}
				}
				return false
			}
			found := false
			for _, b := range blocks {
				if b.Name == p {
					attrs, blocks, found = b.Schema.Attributes, b.Schema.Blocks, true
					break
				}
			}
			if !found {
				return false
			}
		}
		return false
	}
	for _, f := range configFields {
		if !has(f.path) {
			t.Errorf("schema lacks %v", f.path)
		}
	}
	md := NewKafka(testLogger(t)).Metadata()
	want := []string{"none", "auto", "at-most-once", "at-least-once"}
	if md.Name != "endpoint-kafka" || md.Kind != lifecycle.KindEndpoint || len(md.Types) != 1 || md.Types[0].Name != "kafka" ||
		!reflect.DeepEqual(md.Types[0].QoS, want) || !reflect.DeepEqual(md.Types[0].Modes, []string{"publish", "subscribe"}) {
		t.Fatalf("metadata = %+v", md)
	}
}

// testLogger returns a logger for tests: silent unless -v, and safe to use
// from goroutines that outlive a test.
func testLogger(testing.TB) logger {
	w := io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
