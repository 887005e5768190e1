package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// Enumerations of the configuration (docs/behaviour.md 1).
var (
	protocols        = []string{"PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"}
	mechanisms       = []string{"GSSAPI", "OAUTHBEARER", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"}
	storeTypes       = []string{"NONE", "PEM", "PKCS12", "JKS"}
	compressionTypes = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	offsetResets     = []string{"latest", "earliest", "none"}
)

// Config is the decoded configuration of one `endpoint "kafka"` block. The
// core sends it as JSON with the HCL (snake_case) names.
type Config struct {
	// BootstrapServers is the comma-separated host:port list. Required. EL.
	BootstrapServers string `json:"bootstrap_servers"`
	// Security configures the connection to the brokers. Optional.
	Security SecurityConfig `json:"security"`
	// Producer enables and configures publishing. Optional.
	Producer ProducerConfig `json:"producer"`
	// Consumer enables and configures subscribing. Optional.
	Consumer ConsumerConfig `json:"consumer"`
}

// SecurityConfig is the `security` block.
type SecurityConfig struct {
	// Protocol is PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL. Optional. Default: PLAINTEXT.
	Protocol string `json:"protocol"`
	// SASL configures authentication for the SASL_* protocols. Optional.
	SASL SASLConfig `json:"sasl"`
	// SSL configures TLS for SSL and SASL_SSL. Optional.
	SSL SSLConfig `json:"ssl"`
}

// SASLConfig is the `security.sasl` block.
type SASLConfig struct {
	// Mechanism is GSSAPI, OAUTHBEARER, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	// or AWS_MSK_IAM. Required with SASL_PLAINTEXT and SASL_SSL.
	Mechanism string `json:"mechanism"`
	// JAASConfig is the JAAS login module string (credentials). EL. Optional.
	JAASConfig string `json:"jaas_config"`
}

// SSLConfig is the `security.ssl` block.
type SSLConfig struct {
	// Truststore holds the certificates that authenticate the brokers.
	// Optional. Default: the system roots.
	Truststore StoreConfig `json:"truststore"`
	// Keystore holds the client certificate for mutual TLS. Optional.
	Keystore StoreConfig `json:"keystore"`
}

// StoreConfig is a trust store or key store.
type StoreConfig struct {
	// Type is NONE, PEM, PKCS12 or JKS. Optional. Default: PEM when the
	// content is PEM, JKS otherwise (the reference's default).
	Type string `json:"type"`
	// Location is the path of the store file. Optional.
	Location string `json:"location"`
	// Certificates is inline trust store content: PEM text, or base64 of a
	// PKCS12 or JKS store. Trust stores only. Optional.
	Certificates string `json:"certificates"`
	// Password opens a PKCS12 or JKS store. Optional.
	Password string `json:"password"`
	// Key is the inline private key (PEM), or base64 of a PKCS12 or JKS key
	// store. Key stores only. Optional.
	Key string `json:"key"`
	// KeyPassword decrypts the private key. Optional. Default: Password.
	KeyPassword string `json:"key_password"`
	// CertificateChain is the inline PEM certificate chain that goes with
	// Key. Key stores only. Optional.
	CertificateChain string `json:"certificate_chain"`
}

// ProducerConfig is the `producer` block.
type ProducerConfig struct {
	// Enabled turns publishing on. Optional. Default: false.
	Enabled bool `json:"enabled"`
	// Topics are the topics every message is sent to. Required when enabled. EL.
	Topics []string `json:"topics"`
	// CompressionType is none, gzip, snappy, lz4 or zstd. Optional. Default: none.
	CompressionType string `json:"compression_type"`
}

// ConsumerConfig is the `consumer` block.
type ConsumerConfig struct {
	// Enabled turns subscribing on. Optional. Default: false.
	Enabled bool `json:"enabled"`
	// Topics are the topics consumed. One of Topics and TopicPattern is
	// required when enabled. EL.
	Topics []string `json:"topics"`
	// TopicPattern is a regular expression; every topic whose whole name
	// matches is consumed, including topics created later. EL.
	TopicPattern string `json:"topic_pattern"`
	// AutoOffsetReset is latest, earliest or none: where a group without a
	// committed offset starts. Optional. Default: latest. EL.
	AutoOffsetReset string `json:"auto_offset_reset"`
	// EncodeMessageID base64-encodes message ids and expects base64 cursors.
	// Optional. Default: true.
	EncodeMessageID *bool `json:"encode_message_id"`
	// CheckTopicExistence fails a subscription at once when a topic is
	// missing instead of waiting for it. Optional. Default: false.
	CheckTopicExistence bool `json:"check_topic_existence"`
	// RemoveConfluentHeader strips the 5-byte Confluent schema-registry
	// header from record values. Optional. Default: false.
	RemoveConfluentHeader bool `json:"remove_confluent_header"`
}

// encodeIDs reports the effective encode_message_id.
func (c *ConsumerConfig) encodeIDs() bool { return c.EncodeMessageID == nil || *c.EncodeMessageID }

// typeSchema is the HCL schema of the "kafka" endpoint type.
func typeSchema() schema.Schema {
	str := func(name, desc string, required, isEL bool) schema.Attribute {
		return schema.Attribute{Name: name, Type: schema.String, Required: required, Description: desc, EL: isEL}
	}
	enum := func(name, desc string, values []string, def any) schema.Attribute {
		return schema.Attribute{Name: name, Type: schema.String, Description: desc, Enum: values, Default: def}
	}
	boolean := func(name, desc string, def bool) schema.Attribute {
		return schema.Attribute{Name: name, Type: schema.Bool, Description: desc, Default: def}
	}
	store := func(name string, trust bool) schema.Block {
		attrs := []schema.Attribute{
			enum("type", "Store format: NONE, PEM, PKCS12 or JKS.", storeTypes, nil),
			str("location", "Path of the store file.", false, true),
			str("password", "Password of a PKCS12 or JKS store.", false, true),
		}
		if trust {
			attrs = append(attrs, str("certificates", "Inline content: PEM certificates, or base64 of a PKCS12/JKS store.", false, true))
		} else {
			attrs = append(attrs,
				str("key", "Inline PEM private key, or base64 of a PKCS12/JKS key store.", false, true),
				str("key_password", "Password of the private key (defaults to password).", false, true),
				str("certificate_chain", "Inline PEM certificate chain for key.", false, true))
		}
		desc := "Certificates that authenticate the brokers."
		if !trust {
			desc = "Client certificate and key for mutual TLS."
		}
		return schema.Block{Name: name, Nesting: schema.Single, Description: desc, Schema: schema.Schema{Attributes: attrs}}
	}
	return schema.Schema{
		Attributes: []schema.Attribute{
			str("bootstrap_servers", "Comma-separated host:port list of brokers.", true, true),
		},
		Blocks: []schema.Block{
			{Name: "security", Nesting: schema.Single, Description: "Connection security.", Schema: schema.Schema{
				Attributes: []schema.Attribute{enum("protocol", "Security protocol.", protocols, "PLAINTEXT")},
				Blocks: []schema.Block{
					{Name: "sasl", Nesting: schema.Single, Description: "SASL authentication.", Schema: schema.Schema{Attributes: []schema.Attribute{
						enum("mechanism", "SASL mechanism.", mechanisms, nil),
						str("jaas_config", "JAAS login module string carrying the credentials.", false, true),
					}}},
					{Name: "ssl", Nesting: schema.Single, Description: "TLS stores.", Schema: schema.Schema{Blocks: []schema.Block{
						store("truststore", true), store("keystore", false),
					}}},
				},
			}},
			{Name: "producer", Nesting: schema.Single, Description: "Publishing to Kafka.", Schema: schema.Schema{Attributes: []schema.Attribute{
				boolean("enabled", "Enable publishing.", false),
				{Name: "topics", Type: schema.ListOfString, Description: "Topics every message is sent to.", EL: true},
				enum("compression_type", "Record compression.", compressionTypes, "none"),
			}}},
			{Name: "consumer", Nesting: schema.Single, Description: "Subscribing from Kafka.", Schema: schema.Schema{Attributes: []schema.Attribute{
				boolean("enabled", "Enable subscribing.", false),
				{Name: "topics", Type: schema.ListOfString, Description: "Topics to consume.", EL: true},
				str("topic_pattern", "Regular expression of the topics to consume (whole-name match).", false, true),
				{Name: "auto_offset_reset", Type: schema.String, Description: "Where a group without committed offsets starts.", Enum: offsetResets, Default: "latest", EL: true},
				boolean("encode_message_id", "Base64-encode message ids and expect base64 cursors.", true),
				boolean("check_topic_existence", "Fail at once when a topic does not exist instead of waiting for it.", false),
				boolean("remove_confluent_header", "Strip the 5-byte Confluent schema-registry header from record values.", false),
			}}},
		},
	}
}

// decodeConfig parses the JSON the core sends and applies defaults.
func decodeConfig(raw []byte) (*Config, error) {
	cfg := &Config{}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(cfg); err != nil {
			return nil, err
		}
	}
	cfg.applyDefaults()
	return cfg, nil
}

// applyDefaults fills the documented defaults of absent values.
func (c *Config) applyDefaults() {
	if c.Security.Protocol == "" {
		c.Security.Protocol = "PLAINTEXT"
	}
	if c.Producer.CompressionType == "" {
		c.Producer.CompressionType = "none"
	}
	if c.Consumer.AutoOffsetReset == "" {
		c.Consumer.AutoOffsetReset = "latest"
	}
}

// clone deep-copies the configuration (lists and pointers), so dynamic
// evaluation never writes to the configured instance.
func (c *Config) clone() *Config {
	out := *c
	out.Producer.Topics = append([]string(nil), c.Producer.Topics...)
	out.Consumer.Topics = append([]string(nil), c.Consumer.Topics...)
	if c.Consumer.EncodeMessageID != nil {
		v := *c.Consumer.EncodeMessageID
		out.Consumer.EncodeMessageID = &v
	}
	return &out
}

// validate reports every problem of a configured block. Values holding EL
// are checked at request time instead (checkEvaluated).
func (c *Config) validate() lifecycle.Diagnostics {
	var d lifecycle.Diagnostics
	c.checkTemplates(&d)
	if strings.TrimSpace(c.BootstrapServers) == "" {
		d.Errorf([]string{"bootstrap_servers"}, "bootstrap_servers is required")
	} else if !el.HasEL(c.BootstrapServers) {
		if err := checkBootstrap(c.BootstrapServers); err != nil {
			// A warning, not an error: the reference loads such an API and
			// fails each request with FAILURE_ENDPOINT_CONFIGURATION_INVALID.
			d = append(d, lifecycle.Diagnostic{
				Severity: lifecycle.Warning,
				Summary:  "bootstrap_servers is not a host:port list: " + err.Error(),
				Detail:   "Requests will fail with FAILURE_ENDPOINT_CONFIGURATION_INVALID; write e.g. \"broker1:9092,broker2:9092\".",
				Path:     []string{"bootstrap_servers"},
			})
		}
	}
	c.checkEnums(&d, true)
	c.checkShape(&d)
	if p := c.Consumer.TopicPattern; p != "" && !el.HasEL(p) {
		if _, err := compileTopicPattern(p); err != nil {
			d.Errorf([]string{"consumer", "topic_pattern"}, "topic_pattern is not a valid regular expression: %v", err)
		}
	}
	if j := c.Security.SASL.JAASConfig; j != "" && !el.HasEL(j) && isSASL(normalizeEnum(c.Security.Protocol, protocols)) {
		if _, err := saslSettings(c); err != nil {
			d.Errorf([]string{"security", "sasl", "jaas_config"}, "%v", err)
		}
	}
	c.checkKeyStore(&d)
	return d
}

// checkTemplates reports EL that does not compile, on every string field.
func (c *Config) checkTemplates(d *lifecycle.Diagnostics) {
	for _, f := range configFields {
		if f.str != nil {
			if s := *f.str(c); el.HasEL(s) {
				if _, err := el.Compile(s); err != nil {
					d.Errorf(f.path, "invalid expression: %v", err)
				}
			}
		}
		if f.list != nil {
			for _, s := range *f.list(c) {
				if el.HasEL(s) {
					if _, err := el.Compile(s); err != nil {
						d.Errorf(f.path, "invalid expression: %v", err)
					}
				}
			}
		}
	}
}

// checkEnums reports enumerated values outside their enumeration. With
// skipEL set, values holding EL are left for request time.
func (c *Config) checkEnums(d *lifecycle.Diagnostics, skipEL bool) {
	check := func(path []string, v string, allowed []string, optional bool) {
		if (optional && v == "") || (skipEL && el.HasEL(v)) {
			return
		}
		if normalizeEnum(v, allowed) == "" {
			d.Errorf(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
	}
	check([]string{"security", "protocol"}, c.Security.Protocol, protocols, false)
	check([]string{"security", "sasl", "mechanism"}, c.Security.SASL.Mechanism, mechanisms, true)
	check([]string{"security", "ssl", "truststore", "type"}, c.Security.SSL.Truststore.Type, storeTypes, true)
	check([]string{"security", "ssl", "keystore", "type"}, c.Security.SSL.Keystore.Type, storeTypes, true)
	check([]string{"producer", "compression_type"}, c.Producer.CompressionType, compressionTypes, false)
	check([]string{"consumer", "auto_offset_reset"}, c.Consumer.AutoOffsetReset, offsetResets, false)
}

// checkShape reports combinations the reference's schema forbids.
func (c *Config) checkShape(d *lifecycle.Diagnostics) {
	if c.Producer.Enabled && len(c.Producer.Topics) == 0 {
		d.Errorf([]string{"producer", "topics"}, "producer.topics is required when the producer is enabled")
	}
	if c.Consumer.Enabled {
		switch {
		case len(c.Consumer.Topics) == 0 && c.Consumer.TopicPattern == "":
			d.Errorf([]string{"consumer", "topics"}, "consumer.topics or consumer.topic_pattern is required when the consumer is enabled")
		case len(c.Consumer.Topics) > 0 && c.Consumer.TopicPattern != "":
			d.Errorf([]string{"consumer", "topic_pattern"}, "set either consumer.topics or consumer.topic_pattern, not both")
		}
	}
	proto := normalizeEnum(c.Security.Protocol, protocols)
	mech := normalizeEnum(c.Security.SASL.Mechanism, mechanisms)
	if isSASL(proto) && c.Security.SASL.Mechanism == "" {
		d.Errorf([]string{"security", "sasl", "mechanism"}, "security.sasl.mechanism is required with protocol %s", proto)
	}
	if mech == "AWS_MSK_IAM" && proto != "" && proto != "SASL_SSL" && !el.HasEL(c.Security.Protocol) {
		d.Errorf([]string{"security", "sasl", "mechanism"}, "AWS_MSK_IAM requires protocol SASL_SSL, not %s", proto)
	}
}

// checkEvaluated validates a configuration after dynamic evaluation; any
// problem is the request-level "Invalid configuration" (docs/behaviour.md 1.6).
func (c *Config) checkEvaluated() error {
	var d lifecycle.Diagnostics
	if strings.TrimSpace(c.BootstrapServers) == "" {
		d.Errorf([]string{"bootstrap_servers"}, "bootstrap_servers is empty")
	}
	c.checkEnums(&d, false)
	proto := normalizeEnum(c.Security.Protocol, protocols)
	if isSASL(proto) && c.Security.SASL.Mechanism == "" {
		d.Errorf([]string{"security", "sasl", "mechanism"}, "security.sasl.mechanism is required with protocol %s", proto)
	}
	if normalizeEnum(c.Security.SASL.Mechanism, mechanisms) == "AWS_MSK_IAM" && proto != "SASL_SSL" {
		d.Errorf([]string{"security", "sasl", "mechanism"}, "AWS_MSK_IAM requires protocol SASL_SSL")
	}
	if c.Consumer.TopicPattern != "" {
		if _, err := compileTopicPattern(c.Consumer.TopicPattern); err != nil {
			d.Errorf([]string{"consumer", "topic_pattern"}, "invalid regular expression: %v", err)
		}
	}
	if err := d.Err(); err != nil {
		return err
	}
	c.normalize()
	return nil
}

// normalize rewrites enumerated values to their canonical spelling, so
// equal configurations share producers.
func (c *Config) normalize() {
	c.Security.Protocol = normalizeEnum(c.Security.Protocol, protocols)
	if c.Security.SASL.Mechanism != "" {
		c.Security.SASL.Mechanism = normalizeEnum(c.Security.SASL.Mechanism, mechanisms)
	}
	if t := c.Security.SSL.Truststore.Type; t != "" {
		c.Security.SSL.Truststore.Type = normalizeEnum(t, storeTypes)
	}
	if t := c.Security.SSL.Keystore.Type; t != "" {
		c.Security.SSL.Keystore.Type = normalizeEnum(t, storeTypes)
	}
	c.Producer.CompressionType = normalizeEnum(c.Producer.CompressionType, compressionTypes)
	c.Consumer.AutoOffsetReset = normalizeEnum(c.Consumer.AutoOffsetReset, offsetResets)
}

// normalizeEnum returns the canonical spelling of v in allowed, or "".
// Case is ignored and '_' matches '-', so the Java constant names the
// reference's attributes use (SCRAM_SHA_256, LATEST) are accepted.
func normalizeEnum(v string, allowed []string) string {
	v = strings.TrimSpace(v)
	for _, a := range allowed {
		if strings.EqualFold(a, v) || strings.EqualFold(strings.ReplaceAll(a, "-", "_"), v) {
			return a
		}
	}
	return ""
}

func isSASL(protocol string) bool { return protocol == "SASL_PLAINTEXT" || protocol == "SASL_SSL" }

func isTLS(protocol string) bool { return protocol == "SSL" || protocol == "SASL_SSL" }

// checkBootstrap checks a bootstrap list is made of host:port entries, as
// Java's ClientUtils.parseAndValidateAddresses does.
func checkBootstrap(s string) error {
	_, err := bootstrapAddrs(s)
	return err
}

// bootstrapAddrs splits and checks a bootstrap list.
func bootstrapAddrs(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("invalid url %q in bootstrap servers: %v", a, err)
		}
		if host == "" {
			return nil, fmt.Errorf("invalid url %q in bootstrap servers: no host", a)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("invalid url %q in bootstrap servers: bad port", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bootstrap servers given")
	}
	return out, nil
}
