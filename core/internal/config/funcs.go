package config

import (
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileFuncSize bounds what file() reads, so a mistaken path (a disk image,
// /dev/zero) fails with a message instead of exhausting memory.
const maxFileFuncSize = 4 << 20

// evalContext returns the functions every expression in a file can call.
// There are no variables: request-time values are EL strings ({#...}), which
// plugins evaluate themselves.
// Every path file() is asked for is noted in reads (nil: not noted), so the
// gateway can watch the files a configuration depends on.
func evalContext(dir string, reads *readSet) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env":  envFunc(),
			"file": fileFunc(dir, reads),
		},
	}
}

// envFunc is env("NAME") or env("NAME", "default"). An unset variable without
// a default is an error rather than an empty string, so a forgotten secret is
// reported at load time instead of becoming an authentication failure later.
func envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the second argument when it is unset.",
		Params: []function.Parameter{
			{Name: "name", Type: cty.String},
		},
		VarParam: &function.Parameter{Name: "default", Type: cty.String},
		Type:     function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(2, "env takes a name and at most one default value")
			}
			name := args[0].AsString()
			if name == "" {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "the environment variable name must not be empty")
			}
			if v, ok := os.LookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.UnknownVal(cty.String), function.NewArgErrorf(0,
				"environment variable %q is not set; set it, or give a default as a second argument: env(%q, \"...\")", name, name)
		},
	})
}

// fileFunc is file("path"): the file's content as a string, with a relative
// path resolved against the config file's directory (not the working
// directory, so the gateway can be started from anywhere). The content is
// returned unchanged, trailing newline included.
func fileFunc(dir string, reads *readSet) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the content of a file, relative to the configuration file's directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "the path must not be empty")
			}
			full := resolvePath(dir, p)
			// Noted before it is read: a file that is missing now is
			// one the operator is about to create.
			reads.add(full)
			st, err := os.Stat(full)
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "cannot read %s: %s", full, unwrapPathError(err))
			}
			if !st.Mode().IsRegular() {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "%s is not a regular file", full)
			}
			if st.Size() > maxFileFuncSize {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "%s is %d bytes; file() reads at most %d", full, st.Size(), maxFileFuncSize)
			}
			b, err := os.ReadFile(full)
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "cannot read %s: %s", full, unwrapPathError(err))
			}
			if !utf8.Valid(b) {
				return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "%s is not UTF-8 text", full)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

// resolvePath makes p absolute against dir unless it already is.
func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// unwrapPathError drops the operation and path that *fs.PathError repeats,
// since the message already names the path.
func unwrapPathError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return fmt.Sprint(err)
}
