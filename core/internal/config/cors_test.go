package config

import (
	"github.com/sluice-gw/sluice/core/internal/cors"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestCORSBlock(t *testing.T) {
	f := mustLoad(t, "testdata/valid/cors.hcl")
	byName := map[string]*API{}
	for _, a := range f.APIs {
		byName[a.Name] = a
	}
	tests := map[string]struct {
		api  string
		want *CORS
		line int
	}{
		"every attribute": {"browser", &CORS{Options: cors.Options{
			AllowOrigins:     []string{"https://app.example.com", "http://localhost:3000", "http://[::1]:8080", "null"},
			AllowOriginRegex: []string{`https://[a-z0-9-]+\.preview\.example\.com`},
			AllowMethods:     []string{"GET", "POST", "PATCH"},
			AllowHeaders:     []string{"Last-Event-ID", "X-Gravitee-Client-Identifier", "Content-Type"},
			ExposeHeaders:    []string{"X-Gravitee-Transaction-Id", "X-Gravitee-Client-Identifier"},
			MaxAgeSeconds:    3600,
			AllowCredentials: true,
		}}, 8},
		"defaults": {"public", &CORS{Options: cors.Options{
			AllowOrigins:  []string{"*"},
			AllowMethods:  []string{"GET", "POST"},
			MaxAgeSeconds: -1,
		}}, 29},
		"enabled = false": {"off", nil, 0},
		"no block":        {"none", nil, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			api := byName[tt.api]
			if api == nil {
				t.Fatalf("api %q not loaded", tt.api)
			}
			got := api.CORS
			if tt.want == nil {
				if got != nil {
					t.Fatalf("CORS = %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("CORS = nil")
			}
			if got.Range.Start.Line != tt.line {
				t.Errorf("Range starts on line %d, want %d", got.Range.Start.Line, tt.line)
			}
			g := *got
			g.Range = hcl.Range{}
			if !reflect.DeepEqual(&g, tt.want) {
				t.Errorf("CORS:\n got %+v\nwant %+v", &g, tt.want)
			}
		})
	}
	// The default must be a copy: changing one API's methods must not
	// change the next API's default.
	byName["public"].CORS.AllowMethods[0] = "PUT"
	if DefaultCORSMethods[0] != "GET" {
		t.Errorf("DefaultCORSMethods shares its array with a loaded API")
	}
}

func TestCORSJSONSyntax(t *testing.T) {
	path := writeFile(t, t.TempDir(), "gw.json", `{
  "api": {"demo": {
    "context_path": "/demo",
    "entrypoint": {"sse": {}},
    "endpoint": {"kafka": {"default": {"bootstrap_servers": "k:9092"}}},
    "cors": {"allow_origins": ["https://app.example.com"], "max_age_seconds": 60, "allow_credentials": true}
  }}
}`)
	f := mustLoad(t, path)
	want := &CORS{Options: cors.Options{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"GET", "POST"}, MaxAgeSeconds: 60, AllowCredentials: true}}
	got := *f.APIs[0].CORS
	got.Range = hcl.Range{}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("CORS = %+v, want %+v", &got, want)
	}
}

// TestCORSOddShapes feeds malformed cors blocks: each gives an error with
// a source range, and none panics.
func TestCORSOddShapes(t *testing.T) {
	const head = "api \"a\" {\n context_path = \"/\"\n entrypoint \"sse\" {}\n endpoint \"kafka\" \"d\" { bootstrap_servers = \"k\" }\n"
	tests := map[string]struct {
		cors, want string
	}{
		"label":               {`cors "x" { allow_origins = ["*"] }`, "Extraneous label"},
		"attribute":           {`cors = { allow_origins = ["*"] }`, "Unsupported argument"},
		"nested block":        {"cors {\n allow_origins = [\"*\"]\n x {}\n}", "Unsupported block type"},
		"null entry":          {`cors { allow_origins = ["*", null] }`, "Null list entry"},
		"list of lists":       {`cors { allow_origins = [["*"]] }`, "Incorrect attribute value type"},
		"env failure":         {`cors { allow_origins = [env("SLUICE_CONFIG_TEST_DEFINITELY_UNSET")] }`, "is not set"},
		"huge max age":        {"cors {\n allow_origins = [\"*\"]\n max_age_seconds = 1e20\n}", "from 0 to 2147483647"},
		"enabled not a bool":  {"cors {\n allow_origins = [\"*\"]\n enabled = \"on\"\n}", "a bool is required"},
		"methods not a list":  {"cors {\n allow_origins = [\"*\"]\n allow_methods = 5\n}", "Incorrect attribute value type"},
		"credentials via env": {"cors {\n allow_origins = [\"*\"]\n allow_credentials = env(\"SLUICE_CONFIG_TEST_CREDS\", \"true\")\n}", `allow_credentials with the "*" origin`},
	}
	dir := t.TempDir()
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(name, " ", "_")+".hcl", head+tt.cors+"\n}\n")
			l := NewLoader()
			_, diags := loadAndDecode(t, l, path, newFakeSchemas())
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.want) {
				t.Fatalf("want an error containing %q, got:\n%s", tt.want, render(l, diags))
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a range: %s", d.Summary)
				}
			}
		})
	}
}

func TestCheckOrigin(t *testing.T) {
	tests := map[string]struct {
		origin string
		want   string // substring of the reason; "" means valid
	}{
		"https":             {"https://app.example.com", ""},
		"port":              {"http://localhost:3000", ""},
		"ipv4":              {"http://10.0.0.1:8080", ""},
		"ipv6":              {"http://[::1]:8080", ""},
		"ipv6 no port":      {"http://[2001:db8::1]", ""},
		"extension scheme":  {"chrome-extension://abcdefgh", ""},
		"upper case":        {"HTTPS://APP.EXAMPLE.COM", ""},
		"null":              {"null", ""},
		"empty":             {"", "scheme://host[:port]"},
		"no scheme":         {"app.example.com", "scheme://host[:port]"},
		"scheme only":       {"https://", "scheme://host[:port]"},
		"bad scheme":        {"1x://a", "scheme://host[:port]"},
		"trailing slash":    {"https://a.example/", `write "https://a.example"`},
		"path":              {"https://a.example/x/y", `write "https://a.example"`},
		"query":             {"https://a.example?x", `write "https://a.example"`},
		"only a path":       {"https:///x", "scheme://host[:port]"},
		"user info":         {"https://u:p@a.example", `write "https://a.example"`},
		"wildcard host":     {"https://*.example.com", "allow_origin_regex"},
		"regex":             {`https://.*\.example\.com`, "allow_origin_regex"},
		"alternation":       {"https://a.example|https://b.example", "allow_origin_regex"},
		"brackets not ipv6": {"https://a[0-9].example", "allow_origin_regex"},
		"empty port":        {"https://a.example:", "port is missing"},
		"big port":          {"https://a.example:65536", `port "65536"`},
		"signed port":       {"https://a.example:+80", `port "+80"`},
		"letters in port":   {"https://a.example:http", `port "http"`},
		"two colons":        {"https://a:b:80", "scheme://host[:port]"},
		"empty host":        {"https://:80", "scheme://host[:port]"},
		"ipv6 junk":         {"http://[::1]x", "scheme://host[:port]"},
		"ipv6 letters":      {"http://[::g]", "scheme://host[:port]"},
		"space":             {"https://a .example", "no spaces"},
		"unicode host":      {"https://bücher.example", "punycode"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := checkOrigin(tt.origin)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("checkOrigin(%q) = %q, want %q", tt.origin, got, tt.want)
			}
		})
	}
}
