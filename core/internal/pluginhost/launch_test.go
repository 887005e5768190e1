package pluginhost

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

func TestPluginEnv(t *testing.T) {
	tests := map[string]struct {
		in   []string
		want []string
	}{
		"allow-list and prefixes": {
			in: []string{
				"PATH=/bin", "HOME=/root", "TMPDIR=/t", "TZ=UTC", "SSL_CERT_FILE=/ca.pem", "SSL_CERT_DIR=/ca",
				"SLUICE_X=1", "KAFKA_BROKERS=b:9092", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=s", "AWS_SESSION_TOKEN=t",
			},
			want: []string{
				"PATH=/bin", "HOME=/root", "TMPDIR=/t", "TZ=UTC", "SSL_CERT_FILE=/ca.pem", "SSL_CERT_DIR=/ca",
				"SLUICE_X=1", "KAFKA_BROKERS=b:9092", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=s", "AWS_SESSION_TOKEN=t",
			},
		},
		"everything else stays out": {
			in:   []string{"DATABASE_PASSWORD=x", "PLUGIN_MIN_PORT=1", "USER=root", "PATHX=1", "sluice_lower=1", "GOFLAGS=-x"},
			want: nil,
		},
		"the magic cookie is left to go-plugin": {
			in:   []string{"SLUICE_PLUGIN_MAGIC_COOKIE=forged", "SLUICE_OK=1"},
			want: []string{"SLUICE_OK=1"},
		},
		"malformed entries are dropped": {
			in:   []string{"PATH", "=x", "HOME="},
			want: []string{"HOME="},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := pluginEnv(tc.in)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParsePin(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	tests := map[string]struct {
		pin string
		ok  bool
	}{
		"lower hex":    {hex64, true},
		"upper hex":    {strings.ToUpper(hex64), true},
		"spaces":       {" " + hex64 + "\n", true},
		"short":        {hex64[:62], false},
		"long":         {hex64 + "00", false},
		"not hex":      {strings.Repeat("zz", 32), false},
		"empty":        {"", false},
		"with prefix":  {"sha256:" + hex64, false},
		"odd length":   {hex64[:63], false},
		"sha1 digest":  {strings.Repeat("ab", 20), false},
		"sha512 sized": {strings.Repeat("ab", 64), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := parsePin(tc.pin)
			if (err == nil) != tc.ok {
				t.Fatalf("parsePin(%q): %v", tc.pin, err)
			}
			if tc.ok && len(b) != 32 {
				t.Errorf("len %d", len(b))
			}
			if !tc.ok && !strings.Contains(err.Error(), "is not 64 hex digits") {
				t.Errorf("error %q does not say what is wrong", err)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"sluice-plugin-endpoint-kafka":   0o755,
		"sluice-plugin-entrypoint-sse":   0o700,
		"sluice-plugin-policy-a-b":       0o755,
		"sluice-plugin-policy":           0o755,
		"sluice-plugin-policy-":          0o755,
		"sluice-plugin-gadget-x":         0o755,
		"sluice-plugin-endpoint-private": 0o600,
		"other-binary":                   0o755,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sluice-plugin-policy-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, errs := discover([]string{dir}, map[string]string{"endpoint-kafka": strings.Repeat("0", 64), "policy-gone": strings.Repeat("0", 64)})

	want := map[string]struct {
		kind lifecycle.Kind
		pin  bool
		err  string
	}{
		"endpoint-kafka":   {kind: lifecycle.KindEndpoint, pin: true},
		"entrypoint-sse":   {kind: lifecycle.KindEntrypoint},
		"policy-a-b":       {kind: lifecycle.KindPolicy},
		"policy":           {err: "the name must be sluice-plugin-<kind>-<name>"},
		"policy-":          {err: "the name must be sluice-plugin-<kind>-<name>"},
		"gadget-x":         {err: "the name must be sluice-plugin-<kind>-<name>"},
		"endpoint-private": {kind: lifecycle.KindEndpoint, err: "not executable; run chmod +x on it"},
	}
	if len(got) != len(want) {
		t.Errorf("got %d candidates, want %d: %+v", len(got), len(want), got)
	}
	for _, c := range got {
		w, ok := want[c.name]
		if !ok {
			t.Errorf("unexpected candidate %q", c.name)
			continue
		}
		if c.kind != w.kind || (c.pin != nil) != w.pin || c.path != filepath.Join(dir, BinaryPrefix+c.name) {
			t.Errorf("%s: %+v", c.name, c)
		}
		if (c.err == nil) != (w.err == "") || (c.err != nil && !strings.Contains(c.err.Error(), w.err)) {
			t.Errorf("%s: error %v, want %q", c.name, c.err, w.err)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "plugin policy-gone: a sha256 pin is set but") {
		t.Errorf("errs: %v", errs)
	}
}

// Directories are searched in order: the first binary of a name is the
// plugin, even a broken one, and the later ones are listed as shadowed; a
// directory that cannot be read is reported without hiding the others.
func TestDiscoverSearchesDirsInOrder(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")
	for path, mode := range map[string]os.FileMode{
		filepath.Join(first, "sluice-plugin-policy-mine"):      0o755,
		filepath.Join(first, "sluice-plugin-policy-broken"):    0o644,
		filepath.Join(second, "sluice-plugin-policy-mine"):     0o755,
		filepath.Join(second, "sluice-plugin-policy-broken"):   0o755,
		filepath.Join(second, "sluice-plugin-endpoint-kafka"):  0o755,
		filepath.Join(second, "sluice-plugin-entrypoint-only"): 0o755,
	} {
		if err := os.WriteFile(path, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	got, errs := discover([]string{first, missing, second}, map[string]string{"endpoint-kafka": strings.Repeat("0", 64)})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "plugin directory: open "+missing) {
		t.Errorf("errs: %v", errs)
	}
	want := map[string]struct {
		dir     string
		shadows []string
		err     string
	}{
		"policy-mine":     {dir: first, shadows: []string{filepath.Join(second, "sluice-plugin-policy-mine")}},
		"policy-broken":   {dir: first, shadows: []string{filepath.Join(second, "sluice-plugin-policy-broken")}, err: "not executable"},
		"endpoint-kafka":  {dir: second},
		"entrypoint-only": {dir: second},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d candidates, want %d: %+v", len(got), len(want), got)
	}
	for _, c := range got {
		w, ok := want[c.name]
		if !ok {
			t.Errorf("unexpected candidate %q", c.name)
			continue
		}
		if c.path != filepath.Join(w.dir, BinaryPrefix+c.name) || !slices.Equal(c.shadows, w.shadows) {
			t.Errorf("%s: path %s shadows %v, want in %s shadowing %v", c.name, c.path, c.shadows, w.dir, w.shadows)
		}
		if (c.err == nil) != (w.err == "") || (c.err != nil && !strings.Contains(c.err.Error(), w.err)) {
			t.Errorf("%s: error %v, want %q", c.name, c.err, w.err)
		}
		if c.name == "endpoint-kafka" && c.pin == nil {
			t.Errorf("the pin of a plugin found in a later directory was not applied")
		}
	}
}
