package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/twmb/franz-go/pkg/kfake"
)

// roundTrip publishes one message through instance id and reads it back
// through a subscription; it returns the first failure met.
func roundTrip(t *testing.T, id string, cfg map[string]any) *gateway.Failure {
	t.Helper()
	h, k := startPlugin(t)
	topic := "secure-" + id
	cfg["producer"] = map[string]any{"enabled": true, "topics": []string{topic}}
	cfg["consumer"] = map[string]any{"enabled": true, "topics": []string{topic}, "auto_offset_reset": "earliest"}
	configure(t, h, id, cfg)
	if f := h.Publish(t, id, subCtx("c", nil), &gateway.Message{Content: []byte("secret " + id)}); f != nil {
		return f
	}
	s, _ := subscribe(t, h, endpoint.SubscribeRequest{InstanceID: id, Context: subCtx("g-"+id, nil), QoS: "auto"})
	defer closeAndWait(t, k, s)
	b := s.Next(t, wait)
	if len(b) == 0 {
		t.Fatalf("no message; failure %v", s.Failure())
	}
	if b[0].Error != nil {
		return b[0].Error
	}
	if string(b[0].Content) != "secret "+id {
		t.Fatalf("read %q", b[0].Content)
	}
	return nil
}

func TestSASL(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"secure": 1}, kfake.EnableSASL(), kfake.AllowAutoTopicCreation(),
		kfake.Superuser("PLAIN", "plain-user", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "s256", "pass-256"),
		kfake.Superuser("SCRAM-SHA-512", "s512", "pass=512;/$"))
	jaas := func(module, user, pass string) string {
		return fmt.Sprintf(`%s required username="%s" password='%s';`, module, user, pass)
	}
	const plainModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
	const scramModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
	tests := map[string]struct {
		mechanism, jaas string
		ok              bool
	}{
		"PLAIN":                {"PLAIN", jaas(plainModule, "plain-user", "plain-pass"), true},
		"PLAIN bad password":   {"PLAIN", jaas(plainModule, "plain-user", "wrong"), false},
		"SCRAM-SHA-256":        {"SCRAM-SHA-256", jaas(scramModule, "s256", "pass-256"), true},
		"SCRAM-SHA-256 bad":    {"SCRAM-SHA-256", jaas(scramModule, "s256", "wrong"), false},
		"SCRAM-SHA-512":        {"SCRAM-SHA-512", jaas(scramModule, "s512", "pass=512;/$"), true},
		"SCRAM-SHA-512 bad":    {"SCRAM-SHA-512", jaas(scramModule, "s512", "pass-256"), false},
		"SCRAM unknown user":   {"SCRAM-SHA-256", jaas(scramModule, "nobody", "x"), false},
		"mechanism mismatched": {"SCRAM-SHA-256", jaas(scramModule, "plain-user", "plain-pass"), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := roundTrip(t, strings.ReplaceAll(name, " ", "-"), map[string]any{"bootstrap_servers": c.addrs,
				"security": map[string]any{"protocol": "SASL_PLAINTEXT", "sasl": map[string]any{"mechanism": tc.mechanism, "jaas_config": tc.jaas}}})
			if tc.ok && f != nil {
				t.Fatalf("failure %v", f)
			}
			if !tc.ok && (f == nil || f.Key != "FAILURE_ENDPOINT_CONFIGURATION_INVALID" || f.Message != "Endpoint configuration invalid") {
				t.Fatalf("failure %+v, want FAILURE_ENDPOINT_CONFIGURATION_INVALID", f)
			}
		})
	}
}

func TestSASLSubscribeBadPassword(t *testing.T) {
	t.Parallel()
	c := startCluster(t, map[string]int32{"t": 1}, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "u", "p"))
	h, _ := startPlugin(t)
	configure(t, h, "i", map[string]any{"bootstrap_servers": c.addrs,
		"security": map[string]any{"protocol": "SASL_PLAINTEXT", "sasl": map[string]any{"mechanism": "SCRAM-SHA-256", "jaas_config": `M required username="u" password="bad";`}},
		"consumer": map[string]any{"enabled": true, "topics": []string{"t"}}})
	s := h.Subscribe(t, endpoint.SubscribeRequest{InstanceID: "i", Context: subCtx("g", nil), QoS: "auto"})
	s.Ready(t, wait)
	if f := errorOf(t, s); f.Key != "FAILURE_ENDPOINT_CONFIGURATION_INVALID" {
		t.Fatalf("failure %+v", f)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "broker")
	other := newPKI(t, "other")
	b64 := base64.StdEncoding.EncodeToString
	mutual := startCluster(t, map[string]int32{"secure": 1}, kfake.TLS(p.serverTLS(true)), kfake.AllowAutoTopicCreation())
	oneWay := startCluster(t, map[string]int32{"secure": 1}, kfake.TLS(p.serverTLS(false)), kfake.AllowAutoTopicCreation())
	saslSSL := startCluster(t, map[string]int32{"secure": 1}, kfake.TLS(p.serverTLS(false)), kfake.EnableSASL(), kfake.AllowAutoTopicCreation(),
		kfake.Superuser("SCRAM-SHA-512", "u", "p"))
	tests := map[string]struct {
		c        *cluster
		security map[string]any
		ok       bool
	}{
		"one-way PEM trust": {oneWay, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"type": "PEM", "certificates": string(p.caPEM)}}}, true},
		"one-way untrusted": {oneWay, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"type": "PEM", "certificates": string(other.caPEM)}}}, false},
		"one-way system roots":      {oneWay, map[string]any{"protocol": "SSL"}, false},
		"plaintext to a TLS broker": {oneWay, map[string]any{"protocol": "PLAINTEXT"}, false},
		"mutual PKCS12": {mutual, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"type": "PKCS12", "certificates": b64(p.truststoreP12(t, "tp")), "password": "tp"},
			"keystore":   map[string]any{"type": "PKCS12", "key": b64(p.keystoreP12(t, "kp")), "password": "kp"}}}, true},
		"mutual JKS files": {mutual, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"type": "JKS", "location": writeFile(t, "t.jks", p.truststoreJKS(t, "changeit")), "password": "changeit"},
			"keystore":   map[string]any{"type": "JKS", "location": writeFile(t, "k.jks", p.keystoreJKS(t, "changeit", "keypass")), "password": "changeit", "key_password": "keypass"}}}, true},
		"mutual PEM": {mutual, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"certificates": string(p.caPEM)},
			"keystore":   map[string]any{"type": "PEM", "key": string(p.clientKeyPEM(t)), "certificate_chain": string(p.clientCertPEM())}}}, true},
		"mutual without client certificate": {mutual, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"certificates": string(p.caPEM)}}}, false},
		"mutual with a foreign client certificate": {mutual, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"certificates": string(p.caPEM)},
			"keystore":   map[string]any{"type": "PKCS12", "key": b64(other.keystoreP12(t, "kp")), "password": "kp"}}}, false},
		"unreadable key store": {mutual, map[string]any{"protocol": "SSL", "ssl": map[string]any{
			"truststore": map[string]any{"certificates": string(p.caPEM)},
			"keystore":   map[string]any{"type": "PKCS12", "key": b64(p.keystoreP12(t, "kp")), "password": "wrong"}}}, false},
		"SASL_SSL SCRAM": {saslSSL, map[string]any{"protocol": "SASL_SSL",
			"sasl": map[string]any{"mechanism": "SCRAM-SHA-512", "jaas_config": `ScramLoginModule required username="u" password="p";`},
			"ssl":  map[string]any{"truststore": map[string]any{"certificates": string(p.caPEM)}}}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := roundTrip(t, strings.ReplaceAll(name, " ", "-"), map[string]any{"bootstrap_servers": tc.c.addrs, "security": tc.security})
			if tc.ok && f != nil {
				t.Fatalf("failure %v", f)
			}
			if !tc.ok && (f == nil || f.Key != "FAILURE_ENDPOINT_CONFIGURATION_INVALID") {
				t.Fatalf("failure %+v, want FAILURE_ENDPOINT_CONFIGURATION_INVALID", f)
			}
		})
	}
}

func TestSaramaSecuritySettings(t *testing.T) {
	cfg := func(protocol, mech, jaas, bootstrap string) *Config {
		c := &Config{BootstrapServers: bootstrap, Security: SecurityConfig{Protocol: protocol, SASL: SASLConfig{Mechanism: mech, JAASConfig: jaas}}}
		c.applyDefaults()
		return c
	}
	t.Run("OAUTHBEARER static token", func(t *testing.T) {
		sc, err := newSaramaConfig(cfg("SASL_SSL", "OAUTHBEARER", `OAuthBearerLoginModule required access_token="tok-123";`, "b:1"), "id")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := sc.Net.SASL.TokenProvider.Token()
		if err != nil || tok.Token != "tok-123" || sc.Net.SASL.Mechanism != sarama.SASLTypeOAuth || !sc.Net.TLS.Enable {
			t.Fatalf("token %v %v, mechanism %s", tok, err, sc.Net.SASL.Mechanism)
		}
	})
	t.Run("GSSAPI keytab", func(t *testing.T) {
		t.Setenv("KRB5_CONFIG", "/etc/test-krb5.conf")
		sc, err := newSaramaConfig(cfg("SASL_PLAINTEXT", "GSSAPI",
			`com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab="/k/client.keytab" principal="client@EXAMPLE.COM";`, "b:1"), "id")
		if err != nil {
			t.Fatal(err)
		}
		g := sc.Net.SASL.GSSAPI
		if g.AuthType != sarama.KRB5_KEYTAB_AUTH || g.KeyTabPath != "/k/client.keytab" || g.Username != "client" || g.Realm != "EXAMPLE.COM" ||
			g.ServiceName != "kafka" || g.KerberosConfigPath != "/etc/test-krb5.conf" || sc.Net.SASL.Mechanism != sarama.SASLTypeGSSAPI {
			t.Fatalf("GSSAPI %+v", g)
		}
	})
	t.Run("GSSAPI ticket cache", func(t *testing.T) {
		sc, err := newSaramaConfig(cfg("SASL_PLAINTEXT", "GSSAPI",
			`Krb5LoginModule required useTicketCache=true ticketCache="/tmp/krb5cc" principal="u@R" serviceName="kafka-svc";`, "b:1"), "id")
		if err != nil {
			t.Fatal(err)
		}
		g := sc.Net.SASL.GSSAPI
		if g.AuthType != sarama.KRB5_CCACHE_AUTH || g.CCachePath != "/tmp/krb5cc" || g.ServiceName != "kafka-svc" {
			t.Fatalf("GSSAPI %+v", g)
		}
	})
	t.Run("AWS MSK IAM", func(t *testing.T) {
		sc, err := newSaramaConfig(cfg("SASL_SSL", "AWS_MSK_IAM", `software.amazon.msk.auth.iam.IAMLoginModule required awsProfileName="dev";`,
			"b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"), "id")
		if err != nil {
			t.Fatal(err)
		}
		p, ok := sc.Net.SASL.TokenProvider.(*mskTokenProvider)
		if !ok || p.region != "eu-west-1" || sc.Net.SASL.Mechanism != sarama.SASLTypeOAuth {
			t.Fatalf("provider %#v", sc.Net.SASL.TokenProvider)
		}
	})
	t.Run("SASL errors are configuration errors", func(t *testing.T) {
		for _, c := range []*Config{
			cfg("SASL_PLAINTEXT", "PLAIN", `PlainLoginModule required username="u";`, "b:1"),
			cfg("SASL_PLAINTEXT", "PLAIN", `broken`, "b:1"),
			cfg("SASL_PLAINTEXT", "SCRAM-SHA-256", "", "b:1"),
		} {
			_, err := newSaramaConfig(c, "id")
			if classify(err).Key != "FAILURE_ENDPOINT_CONFIGURATION_INVALID" {
				t.Fatalf("%q: %v", c.Security.SASL.JAASConfig, err)
			}
		}
	})
}

func TestMSKRegion(t *testing.T) {
	tests := map[string]struct {
		bootstrap, env, want string
	}{
		"provisioned": {"b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com:9098,b-2.demo.abc123.c2.kafka.us-east-1.amazonaws.com:9098", "", "us-east-1"},
		"serverless":  {"boot-abc.c1.kafka-serverless.eu-central-1.amazonaws.com:9098", "", "eu-central-1"},
		"china":       {"b-1.x.y.c1.kafka.cn-north-1.amazonaws.com.cn:9098", "", "cn-north-1"},
		"environment": {"broker.internal:9098", "ap-south-1", "ap-south-1"},
		"unknown":     {"broker.internal:9098", "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AWS_REGION", tc.env)
			t.Setenv("AWS_DEFAULT_REGION", "")
			got, err := mskRegion(tc.bootstrap)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("region %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("region %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMSKTokenProviderCaches(t *testing.T) {
	calls := 0
	expiry := time.Now().Add(15 * time.Minute)
	p := &mskTokenProvider{region: "r", gen: func(context.Context) (string, int64, error) {
		calls++
		return fmt.Sprintf("token-%d", calls), expiry.UnixMilli(), nil
	}}
	for range 3 {
		tok, err := p.Token()
		if err != nil || tok.Token != "token-1" {
			t.Fatalf("token %v %v", tok, err)
		}
	}
	expiry = time.Now().Add(30 * time.Second) // next one expires soon
	p.expiry = time.Now()                     // current one expired
	if tok, _ := p.Token(); tok.Token != "token-2" {
		t.Fatalf("expired token reused: %v", tok.Token)
	}
	if tok, _ := p.Token(); tok.Token != "token-3" {
		t.Fatalf("token close to expiry reused: %v", tok.Token)
	}
	p.expiry = time.Time{}
	p.gen = func(context.Context) (string, int64, error) { return "", 0, errors.New("no credentials") }
	if _, err := p.Token(); classify(err).Key != "FAILURE_ENDPOINT_CONFIGURATION_INVALID" {
		t.Fatalf("credential failure classified as %v", classify(err))
	}
}
