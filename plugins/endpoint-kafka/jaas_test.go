package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseJAAS(t *testing.T) {
	tests := map[string]struct {
		in      string
		module  string
		flag    string
		options map[string]string
		err     string
	}{
		"plain double quotes": {
			in:      `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cret";`,
			module:  "org.apache.kafka.common.security.plain.PlainLoginModule",
			flag:    "required",
			options: map[string]string{"username": "alice", "password": "s3cret"},
		},
		"single quotes and connection string": {
			in:     `org.apache.kafka.common.security.plain.PlainLoginModule required username='$ConnectionString' password='Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=a/b+c=';`,
			module: "org.apache.kafka.common.security.plain.PlainLoginModule",
			flag:   "required",
			options: map[string]string{
				"username": "$ConnectionString",
				"password": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=a/b+c=",
			},
		},
		"unquoted dollar value": {
			in:      `PlainLoginModule required username=$ConnectionString password=x=y/z;`,
			module:  "PlainLoginModule",
			flag:    "required",
			options: map[string]string{"username": "$ConnectionString", "password": "x=y/z"},
		},
		"oauth access token": {
			in:      `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token="eyJhbGciOi.eyJzdWIi.sig-_";`,
			module:  "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule",
			flag:    "required",
			options: map[string]string{"access_token": "eyJhbGciOi.eyJzdWIi.sig-_"},
		},
		"no options": {
			in:      `software.amazon.msk.auth.iam.IAMLoginModule required;`,
			module:  "software.amazon.msk.auth.iam.IAMLoginModule",
			flag:    "required",
			options: map[string]string{},
		},
		"many options, newlines, flag case, missing final semicolon": {
			in:     "com.sun.security.auth.module.Krb5LoginModule REQUIRED\n  useKeyTab=true\n  storeKey=true\n  keyTab=\"/etc/security/keytabs/kafka.keytab\"\n  principal=\"kafka/broker@EXAMPLE.COM\"",
			module: "com.sun.security.auth.module.Krb5LoginModule",
			flag:   "required",
			options: map[string]string{
				"useKeyTab": "true", "storeKey": "true",
				"keyTab": "/etc/security/keytabs/kafka.keytab", "principal": "kafka/broker@EXAMPLE.COM",
			},
		},
		"escapes inside quotes": {
			in:      `M optional a="x\"y" b='it\'s' c="C:\\keytab" d="tab\there";`,
			module:  "M",
			flag:    "optional",
			options: map[string]string{"a": `x"y`, "b": "it's", "c": `C:\keytab`, "d": "tab\there"},
		},
		"comments are skipped": {
			in:      "M required /* the user */ username=\"u\" // trailing\n password=\"p\";",
			module:  "M",
			flag:    "required",
			options: map[string]string{"username": "u", "password": "p"},
		},
		"last duplicate wins": {
			in:      `M sufficient k="1" k="2";`,
			module:  "M",
			flag:    "sufficient",
			options: map[string]string{"k": "2"},
		},
		"empty quoted value": {
			in:      `M required password="";`,
			module:  "M",
			flag:    "required",
			options: map[string]string{"password": ""},
		},
		"empty":                   {in: "  ", err: "no login module"},
		"missing flag":            {in: `M username="u";`, err: "control flag"},
		"bad flag":                {in: `M mandatory;`, err: "control flag"},
		"missing equals":          {in: `M required username "u";`, err: "expected '='"},
		"missing value":           {in: `M required username=;`, err: "value not specified"},
		"unterminated quote":      {in: `M required username="u;`, err: "unterminated quoted string"},
		"unterminated comment":    {in: `M required /* x`, err: "unterminated comment"},
		"two modules":             {in: `A required; B required;`, err: "2 login modules"},
		"starts with a semicolon": {in: `; M required;`, err: "class name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseJAAS(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseJAAS(%q) error = %v, want one containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJAAS(%q): %v", tc.in, err)
			}
			if got.Module != tc.module || got.Flag != tc.flag || !maps.Equal(got.Options, tc.options) {
				t.Fatalf("parseJAAS(%q) = %q %q %v, want %q %q %v", tc.in, got.Module, got.Flag, got.Options, tc.module, tc.flag, tc.options)
			}
		})
	}
}
