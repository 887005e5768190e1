package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

func TestDecodeGet(t *testing.T) {
	defaults := &getConfig{QoS: "auto", LimitCount: 500, LimitDurationMs: 5000}
	tests := map[string]struct {
		json    string
		want    *getConfig
		wantErr string
	}{
		"empty":    {json: `{}`, want: defaults},
		"no value": {json: ``, want: defaults},
		"all set": {
			json: `{"qos":"at-least-once","messages_limit_count":10,"messages_limit_duration_ms":0,"headers_in_payload":true,"metadata_in_payload":true}`,
			want: &getConfig{QoS: "at-least-once", LimitCount: 10, HeadersInPayload: true, MetadataInPayload: true},
		},
		"none refused":        {json: `{"qos":"none"}`, wantErr: `qos: unsupported qos "none"; the http-get entrypoint accepts auto, at-most-once, at-least-once`},
		"negative count":      {json: `{"messages_limit_count":-1}`, wantErr: "messages_limit_count: messages_limit_count must be at least 0"},
		"fractional duration": {json: `{"messages_limit_duration_ms":1.5}`, wantErr: "must be a whole number"},
		"wrong type":          {json: `{"headers_in_payload":"yes"}`, wantErr: `headers_in_payload: invalid value "yes": expected a bool, got a JSON string`},
		"unknown":             {json: `{"limit":1}`, wantErr: `unsupported attribute or block "limit"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodeGet([]byte(tc.json))
			check(t, cfg, diags, tc.want, tc.wantErr)
		})
	}
}

func TestDecodePost(t *testing.T) {
	tests := map[string]struct {
		json    string
		want    *postConfig
		wantErr string
	}{
		"defaults":        {json: `{}`, want: &postConfig{QoS: "auto"}},
		"headers":         {json: `{"qos":"none","request_headers_to_message":true}`, want: &postConfig{QoS: "none", RequestHeadersToMessage: true}},
		"at-* refused":    {json: `{"qos":"at-least-once"}`, wantErr: `the http-post entrypoint accepts none, auto`},
		"not an object":   {json: `"x"`, wantErr: "not a JSON object"},
		"null attributes": {json: `{"qos":null,"request_headers_to_message":null}`, want: &postConfig{QoS: "auto"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodePost([]byte(tc.json))
			check(t, cfg, diags, tc.want, tc.wantErr)
		})
	}
}

func check[C any](t *testing.T, cfg *C, diags lifecycle.Diagnostics, want *C, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err := diags.Err(); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("got %v, want an error containing %q", err, wantErr)
		}
		if cfg != nil {
			t.Fatalf("config returned with errors: %+v", cfg)
		}
		return
	}
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestDecodeWebhook(t *testing.T) {
	tests := map[string]struct {
		json    string
		check   func(t *testing.T, c *webhookConfig)
		wantErr string
	}{
		"defaults": {
			json: `{}`,
			check: func(t *testing.T, c *webhookConfig) {
				if c.QoS != "auto" || c.ConnectTimeout != 3*time.Second || c.ReadTimeout != 10*time.Second ||
					c.IdleTimeout != time.Minute || c.MaxConnections != 5 || !c.InterruptOnServerError ||
					!c.InterruptOnException || c.proxy != nil {
					t.Fatalf("%+v", c)
				}
			},
		},
		"ordered qos keeps its connections for partitions": {
			json: `{"qos":"at-least-once","http":{"max_concurrent_connections":10}}`,
			check: func(t *testing.T, c *webhookConfig) {
				if c.MaxConnections != 10 {
					t.Fatalf("max connections %d", c.MaxConnections)
				}
			},
		},
		"proxy": {
			json: `{"proxy":{"enabled":true,"type":"SOCKS5","host":"proxy","port":1080,"username":"u","password":"p"}}`,
			check: func(t *testing.T, c *webhookConfig) {
				if c.proxy == nil {
					t.Fatalf("%+v", c)
				}
			},
		},
		"callback moved to the subscription": {json: `{"callback_url":"http://h/"}`, wantErr: "callback_url"},
		"too many connections":               {json: `{"http":{"max_concurrent_connections":21}}`, wantErr: "http.max_concurrent_connections: max_concurrent_connections must be at most 20"},
		"socks4":                             {json: `{"proxy":{"enabled":true,"type":"SOCKS4","host":"p","port":1}}`, wantErr: "proxy.type: SOCKS4 proxies are not supported"},
		"proxy without host":                 {json: `{"proxy":{"enabled":true}}`, wantErr: "proxy: an enabled proxy needs a host and a port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodeWebhook([]byte(tc.json))
			if tc.wantErr != "" {
				if err := diags.Err(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Err())
			}
			tc.check(t, cfg)
		})
	}
}

func TestDecodeSubscription(t *testing.T) {
	tests := map[string]struct {
		json    string
		check   func(t *testing.T, c *subscriptionConfig)
		wantErr string
	}{
		"defaults": {
			json: `{"callback_url":"https://example.com/hook"}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if c.Retry.MaxAttempts != 1 || c.tls != nil || c.Auth.Type != "" || c.DLQ != "" {
					t.Fatalf("%+v", c)
				}
			},
		},
		"headers, retry, dlq": {
			json: `{"callback_url":"http://h/","header":[{"name":"A","value":"1"}],` +
				`"retry":{"retry_option":"Retry On Fail","retry_strategy":"EXPONENTIAL","max_attempts":4,"initial_delay_seconds":2,"max_delay_seconds":20},` +
				`"dlq":{"endpoint":"dead"}}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if !reflect.DeepEqual(c.Headers, [][2]string{{"A", "1"}}) || c.DLQ != "dead" ||
					c.Retry != (retryPolicy{MaxAttempts: 4, Exponential: true, InitialDelay: 2 * time.Second, MaxDelay: 20 * time.Second}) {
					t.Fatalf("%+v", c)
				}
			},
		},
		"no retry ignores the other retry options": {
			json: `{"callback_url":"http://h/","retry":{"retry_option":"No Retry","max_attempts":4}}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if c.Retry.MaxAttempts != 1 {
					t.Fatalf("%+v", c.Retry)
				}
			},
		},
		"oauth2": {
			json: `{"callback_url":"http://h/","auth":{"type":"oauth2","oauth2":{"endpoint":"http://id/token","client_id":"c","client_secret":"s","scopes":["a","b"]}}}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if c.Auth.TokenURL != "http://id/token" || c.Auth.ClientID != "c" || c.Auth.Secret != "s" || !reflect.DeepEqual(c.Auth.Scopes, []string{"a", "b"}) {
					t.Fatalf("%+v", c.Auth)
				}
			},
		},
		"basic": {
			json: `{"callback_url":"http://h/","auth":{"type":"basic","basic":{"username":"u","password":"p"}}}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if c.Auth.Username != "u" || c.Auth.Password != "p" {
					t.Fatalf("%+v", c.Auth)
				}
			},
		},
		"tls trust all": {
			json: `{"callback_url":"https://h/","ssl":{"trust_all":true}}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if c.tls == nil || !c.tls.InsecureSkipVerify || c.tls.VerifyPeerCertificate != nil {
					t.Fatalf("%+v", c.tls)
				}
			},
		},
		"tls without host check still verifies the chain": {
			json: `{"callback_url":"https://h/","ssl":{"hostname_verifier":false}}`,
			check: func(t *testing.T, c *subscriptionConfig) {
				if c.tls == nil || c.tls.VerifyPeerCertificate == nil {
					t.Fatalf("%+v", c.tls)
				}
			},
		},
		"missing callback":       {json: `{}`, wantErr: "callback_url: callback_url is required"},
		"bad callback scheme":    {json: `{"callback_url":"ftp://h/"}`, wantErr: `must be an absolute http:// or https:// URL`},
		"relative callback":      {json: `{"callback_url":"/hook"}`, wantErr: `must be an absolute`},
		"header without name":    {json: `{"callback_url":"http://h/","header":[{"name":"A","value":"1"},{"name":" ","value":"2"}]}`, wantErr: "header.1.name: a header needs a name"},
		"jks refused":            {json: `{"callback_url":"https://h/","ssl":{"truststore":{"type":"JKS","content":"AAAA"}}}`, wantErr: "ssl.truststore.type: JKS stores are not supported"},
		"truststore not pem":     {json: `{"callback_url":"https://h/","ssl":{"truststore":{"type":"PEM","content":"bm90IHBlbQ=="}}}`, wantErr: "holds no PEM certificate"},
		"keystore half":          {json: `{"callback_url":"https://h/","ssl":{"keystore":{"type":"PEM","cert_content":"x"}}}`, wantErr: "ssl.keystore"},
		"unknown retry strategy": {json: `{"callback_url":"http://h/","retry":{"retry_strategy":"RANDOM"}}`, wantErr: `retry.retry_strategy: unsupported retry_strategy "RANDOM"`},
		"auth block missing":     {json: `{"callback_url":"http://h/","auth":{"type":"token"}}`, wantErr: `auth type "token" needs a token block`},
		"oauth2 bad endpoint":    {json: `{"callback_url":"http://h/","auth":{"type":"oauth2","oauth2":{"endpoint":"id/token","client_id":"c","client_secret":"s"}}}`, wantErr: "auth.oauth2.endpoint"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := decodeSubscription([]byte(tc.json))
			if tc.wantErr != "" {
				if err := diags.Err(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Err())
			}
			tc.check(t, cfg)
		})
	}
}

func TestMetadataAndValidate(t *testing.T) {
	h := plugintest.Start(t, New())
	md := h.Metadata(t)
	byName := map[string]lifecycle.TypeInfo{}
	for _, ty := range md.Types {
		byName[ty.Name] = ty
	}
	get, post, hook := byName["http-get"], byName["http-post"], byName["webhook"]
	if get.Match == nil || !reflect.DeepEqual(get.Match.Methods, []string{"GET"}) || get.Match.CriteriaCount != 1 ||
		!reflect.DeepEqual(get.QoS, []string{"auto", "at-most-once", "at-least-once"}) {
		t.Fatalf("http-get %+v %+v", get, get.Match)
	}
	if post.Match == nil || !reflect.DeepEqual(post.Match.Methods, []string{"POST"}) || post.Match.CriteriaCount != 1 ||
		!reflect.DeepEqual(post.QoS, []string{"none", "auto"}) {
		t.Fatalf("http-post %+v %+v", post, post.Match)
	}
	if hook.Match == nil || hook.Match.CriteriaCount != 0 || len(hook.QoS) != 4 {
		t.Fatalf("webhook %+v %+v", hook, hook.Match)
	}
	if d := h.Validate(t, "sse", nil); !d.HasErrors() {
		t.Fatal("want an error for a type this plugin does not provide")
	}
	if d := h.Validate(t, "webhook", map[string]any{"qos": "x"}); !d.HasErrors() || strings.Join(d[0].Path, ".") != "qos" {
		t.Fatalf("diagnostics %+v", d)
	}
}
