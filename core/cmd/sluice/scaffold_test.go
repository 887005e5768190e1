package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A new plugin's go directive is the sdk's, so it never asks for an older Go
// than the sdk needs (the build would fail) or a newer one than needed.
func TestScaffoldGoVersionIsTheSDKs(t *testing.T) {
	b, err := os.ReadFile("../../../sdk/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil || string(m[1]) != scaffoldGoVersion {
		t.Fatalf("sdk/go.mod says go %q, scaffoldGoVersion is %s", m, scaffoldGoVersion)
	}
}

// plugin new writes the module with the names and versions asked for, and
// refuses a directory that already holds something. (e2e's
// TestPluginScaffoldOutOfTree builds and tests what it writes.)
func TestPluginNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mine")
	var out, errb bytes.Buffer
	if code := run([]string{"plugin", "new", "policy", "add-tenant", dir, "--module", "example.org/x", "--sdk-version=v0.2.0"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for file, want := range map[string]string{
		"go.mod":         "module example.org/x\n\ngo " + scaffoldGoVersion + "\n\nrequire github.com/sluice-gw/sluice/sdk v0.2.0\n",
		"main.go":        "func main() { serve.Serve(New()) }",
		"policy.go":      `Name:    "policy-add-tenant", // the binary is sluice-plugin-policy-add-tenant`,
		"policy_test.go": "plugintest.Start(t, New())",
		"README.md":      `policy "add-tenant" {`,
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q:\n%s", file, want, b)
		}
	}
	errb.Reset()
	if code := run([]string{"plugin", "new", "policy", "other", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "is not empty") {
		t.Errorf("a non-empty directory: exit %d, stderr %q", code, errb.String())
	}
	for _, args := range [][]string{
		{"plugin", "new", "gadget", "x", t.TempDir()},
		{"plugin", "new", "policy", "Bad_Name", t.TempDir()},
		{"plugin", "new", "policy"},
		{"plugin", "new", "policy", "x", "--bogus", "1"},
	} {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}
