package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// scaffoldSDKVersion is the sdk release a new plugin requires: the newest
// sdk/vX.Y.Z tag this sluice was built against. Raise it with each sdk
// release (docs/plugins.md, "Releasing the sdk").
const scaffoldSDKVersion = "v0.1.0"

// scaffoldGoVersion is the go directive of a new plugin's go.mod: the sdk's
// own, since a module cannot require a newer Go than it declares. A test
// keeps it equal to sdk/go.mod's.
const scaffoldGoVersion = "1.26.8"

//go:embed scaffold
var scaffoldFS embed.FS

const pluginNewHelp = `usage: sluice plugin new KIND NAME [DIR] [--module PATH] [--sdk-version VERSION]

Writes a Go module for a new plugin to DIR (default ./sluice-plugin-KIND-NAME):
go.mod requiring github.com/sluice-gw/sluice/sdk, main.go, the plugin with its
configuration schema, a test through sdk/plugintest, and a README in the
shape of the shipped plugins'. The module builds and its test passes as
written; edit it from there.

KIND is policy (a policy that sets a context attribute in the request
phase). NAME is the type operators write, lowercase letters, digits and
dashes (policy "NAME" { ... }); the binary is sluice-plugin-KIND-NAME.

  --module PATH          the module path (default example.com/sluice-plugin-KIND-NAME)
  --sdk-version VERSION  the sdk release to require (default ` + scaffoldSDKVersion + `)

Then, in DIR: go mod tidy && go test ./... && go build. Outside a Sluice
checkout set GOWORK=off. DIR must not exist or be empty.
`

// scaffoldName is a plugin or type name: it becomes part of a file name and
// an HCL label, so it stays plain.
var scaffoldName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// scaffoldData fills the templates.
type scaffoldData struct {
	Name       string // the type name, NAME
	PluginName string // KIND-NAME, the metadata name
	Binary     string // sluice-plugin-KIND-NAME
	Module     string
	SDKVersion string
	GoVersion  string
}

// pluginCommand runs `sluice plugin SUBCOMMAND ...`; new is the only one.
func pluginCommand(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, pluginNewHelp)
		return 0
	}
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprint(stderr, pluginNewHelp)
		return 2
	}
	var pos []string
	data := scaffoldData{SDKVersion: scaffoldSDKVersion, GoVersion: scaffoldGoVersion}
	rest := args[1:]
	for len(rest) > 0 {
		a := rest[0]
		rest = rest[1:]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		if !hasValue {
			if len(rest) == 0 {
				fmt.Fprintf(stderr, "sluice plugin new: %s needs a value\n\n%s", a, pluginNewHelp)
				return 2
			}
			value, rest = rest[0], rest[1:]
		}
		switch name {
		case "module":
			data.Module = value
		case "sdk-version":
			data.SDKVersion = value
		default:
			fmt.Fprintf(stderr, "sluice plugin new: unknown flag %s\n\n%s", a, pluginNewHelp)
			return 2
		}
	}
	if len(pos) < 2 || len(pos) > 3 {
		fmt.Fprint(stderr, pluginNewHelp)
		return 2
	}
	kind, name := pos[0], pos[1]
	if _, err := fs.Stat(scaffoldFS, path.Join("scaffold", kind)); err != nil {
		fmt.Fprintf(stderr, "sluice plugin new: no scaffold for kind %q; kinds: policy\n", kind)
		return 2
	}
	if !scaffoldName.MatchString(name) {
		fmt.Fprintf(stderr, "sluice plugin new: name %q must be lowercase letters, digits and single dashes, starting with a letter\n", name)
		return 2
	}
	data.Name = name
	data.PluginName = kind + "-" + name
	data.Binary = "sluice-plugin-" + data.PluginName
	if data.Module == "" {
		data.Module = "example.com/" + data.Binary
	}
	dir := data.Binary
	if len(pos) == 3 {
		dir = pos[2]
	}
	if err := scaffold(kind, dir, data); err != nil {
		fmt.Fprintf(stderr, "sluice plugin new: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (module %s, sdk %s)\nnext: cd %s && go mod tidy && go test ./... && go build -o %s .\n",
		dir, data.Module, data.SDKVersion, dir, data.Binary)
	return 0
}

// scaffold writes the templates of kind into dir. It refuses a dir with
// anything in it, so it never overwrites an author's work.
func scaffold(kind, dir string, data scaffoldData) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty; name a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := path.Join("scaffold", kind)
	entries, err := fs.ReadDir(scaffoldFS, root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, err := fs.ReadFile(scaffoldFS, path.Join(root, e.Name()))
		if err != nil {
			return err
		}
		// [[ ]] delimiters: Go's composite literals are full of {{.
		t, err := template.New(e.Name()).Delims("[[", "]]").Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return err
		}
		out := b.Bytes()
		name := strings.TrimSuffix(e.Name(), ".tmpl")
		if strings.HasSuffix(name, ".go") {
			// The templates are gofmt'ed Go; formatting again catches a
			// substitution that broke the syntax before the author does.
			if out, err = format.Source(out); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}
