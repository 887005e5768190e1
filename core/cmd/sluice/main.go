// Command sluice is the Sluice gateway: it loads gateway.hcl, starts the plugin
// processes and the embedded broker, and serves the APIs.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-gw/sluice/core/internal/config"
	"github.com/sluice-gw/sluice/core/internal/pluginhost"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

const usage = `usage: sluice <command> [arguments]

commands:
  run FILE        start the gateway with the configuration FILE
  validate FILE   check FILE; prints every error with file:line:col, exits non-zero on any error
  plugins [DIR...]
                  list the plugins in the DIRs (default bin/plugins), where each
                  comes from and the types it provides
  plugin new KIND NAME [DIR]
                  scaffold a Go module for a new plugin (KIND policy, entrypoint or endpoint)
  version         print the version
  help            print this help

Run 'sluice <command> --help' for the details of a command.
`

// commandHelp is what 'sluice <command> --help' prints, one entry per
// command, so no command mistakes --help for a file name.
var commandHelp = map[string]string{
	"run": `usage: sluice run FILE

Starts the gateway with the configuration FILE (HCL): the embedded broker if
the file has a dev_kafka block, the plugin processes, the data-path listener
(gateway.listen) and the admin listener (gateway.admin_listen: /health,
/ready, /metrics, /apis, /plugins). It serves until SIGINT or SIGTERM.

SIGHUP reloads FILE: the APIs are swapped atomically; a file with errors is
rejected whole, its diagnostics are logged and the running APIs keep serving.
listen, admin_listen, plugin_dir(s), dev_kafka and log are read at start-up
only.

Logging is set by gateway { log { format, level, access_log } } in FILE;
SLUICE_LOG_LEVEL=debug overrides the level.
`,
	"validate": `usage: sluice validate FILE

Checks FILE: its HCL, and each plugin block against the schema of the plugin
that provides it (the plugins in gateway.plugin_dirs, or plugin_dir, are
started to learn their schemas). Prints every diagnostic with file:line:col and exits 1 on any
error, 0 when the file is valid.
`,
	"plugins": `usage: sluice plugins [DIR...]

Lists the plugin binaries (sluice-plugin-*) in the DIRs, default bin/plugins,
with their kind, version, the directory each comes from and the types they
provide. The DIRs are searched in order, as the gateway searches
plugin_dirs: the first binary of a name is the plugin, and a binary of the
same name in a later DIR is listed as shadowed (the gateway does not start
it). Each binary is asked to describe itself; no gRPC connection is made.
Exits 1 if a binary does not answer or a DIR cannot be read.
`,
	"plugin": pluginNewHelp,
	"version": `usage: sluice version

Prints the version of sluice and of the plugin protocol it speaks.
`,
	"help": usage,
}

// wantsHelp reports whether args ask for help rather than name a file.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if h, ok := commandHelp[args[0]]; ok && wantsHelp(args[1:]) {
		fmt.Fprint(stdout, h)
		return 0
	}
	switch args[0] {
	case "run":
		if len(args) != 2 {
			fmt.Fprint(stderr, commandHelp["run"])
			return 2
		}
		return runGateway(args[1], stderr)
	case "validate":
		if len(args) != 2 {
			fmt.Fprint(stderr, commandHelp["validate"])
			return 2
		}
		return validate(args[1], stdout, stderr)
	case "plugins":
		dirs := args[1:]
		if len(dirs) == 0 {
			dirs = []string{"bin/plugins"}
		}
		return listPlugins(dirs, stdout, stderr)
	case "plugin":
		return pluginCommand(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "sluice %s (plugin protocol v1)\n", version)
		return 0
	case "help", "--help", "-h":
		if len(args) > 1 {
			if h, ok := commandHelp[args[1]]; ok {
				fmt.Fprint(stdout, h)
				return 0
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// newLogger returns the gateway's logger as gateway { log } asks:
// slog's text or JSON, one record a line, on w. SLUICE_LOG_LEVEL overrides
// the level, so a running setup can be debugged without editing its file.
func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	level := slog.LevelInfo
	name := cfg.Level
	if env := os.Getenv("SLUICE_LOG_LEVEL"); env != "" {
		name = env
	}
	switch name {
	case config.LogLevelDebug:
		level = slog.LevelDebug
	case config.LogLevelWarn:
		level = slog.LevelWarn
	case config.LogLevelError:
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logDiagnostics writes each diagnostic as one record, so a log collector
// keeps a rejected reload's reasons together instead of as loose lines of a
// multi-line text block.
func logDiagnostics(log *slog.Logger, diags hcl.Diagnostics) {
	for _, d := range config.SortedDiagnostics(diags) {
		if d == nil {
			continue
		}
		level := slog.LevelError
		if d.Severity == hcl.DiagWarning {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("summary", d.Summary)}
		if d.Detail != "" {
			attrs = append(attrs, slog.String("detail", d.Detail))
		}
		if r := d.Subject; r != nil {
			attrs = append(attrs, slog.String("file", r.Filename), slog.Int("line", r.Start.Line), slog.Int("column", r.Start.Column))
		}
		log.LogAttrs(context.Background(), level, "configuration diagnostic", attrs...)
	}
}

// validate loads FILE, starts the plugins it needs to learn their schemas,
// and prints every diagnostic.
func validate(path string, stdout, stderr io.Writer) int {
	loader := config.NewLoader()
	// A file with structural errors still gets its plugin blocks checked,
	// so one run reports every error.
	f, diags := loader.Load(path)
	if f == nil {
		loader.WriteDiagnostics(stderr, diags, false)
		return 1
	}
	host := pluginhost.New(pluginhost.Options{Dirs: f.Gateway.PluginDirs, Pins: f.Gateway.Pins, Logger: newLogger(io.Discard, config.DefaultLog())})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startErr := host.Start(ctx)
	if startErr != nil {
		// The gateway would start without these plugins; a check must not pass.
		fmt.Fprintf(stderr, "sluice: %v\n", startErr)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		host.Close(closeCtx)
	}()
	diags = append(diags, loader.Decode(ctx, f, host)...)
	if len(diags) > 0 {
		loader.WriteDiagnostics(stderr, diags, false)
	}
	if diags.HasErrors() || startErr != nil {
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid (%d APIs)\n", path, len(f.APIs))
	return 0
}

// describeOutput is what a plugin binary prints for `describe`.
type describeOutput struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Types   []struct {
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
		QoS     []string `json:"qos"`
	} `json:"types"`
}

// listPlugins asks each binary to describe itself, without starting gRPC.
// It finds them as the gateway does (pluginhost.Discover), so what it lists
// is what `sluice run` with plugin_dirs = dirs would start.
func listPlugins(dirs []string, stdout, stderr io.Writer) int {
	bins, errs := pluginhost.Discover(dirs)
	status := 0
	for _, err := range errs {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		status = 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUGIN\tKIND\tVERSION\tDIR\tTYPES")
	var shadowed []string
	for _, b := range bins {
		dir := filepath.Dir(b.Path)
		for _, s := range b.Shadows {
			shadowed = append(shadowed, fmt.Sprintf("%s in %s is shadowed by the one in %s and not started", filepath.Base(s), filepath.Dir(s), dir))
		}
		if b.Err != nil {
			fmt.Fprintf(tw, "%s\t?\t?\t%s\terror: %v\n", b.Name, dir, b.Err)
			status = 1
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, b.Path, "describe").Output()
		cancel()
		var d describeOutput
		if err == nil {
			err = json.Unmarshal(out, &d)
		}
		if err != nil {
			fmt.Fprintf(tw, "%s\t?\t?\t%s\terror: %v\n", b.Name, dir, err)
			status = 1
			continue
		}
		var types []string
		for _, t := range d.Types {
			s := t.Name
			if len(t.Aliases) > 0 {
				s += " (" + strings.Join(t.Aliases, ", ") + ")"
			}
			if len(t.QoS) > 0 {
				s += " qos=" + strings.Join(t.QoS, "|")
			}
			types = append(types, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.Kind, d.Version, dir, strings.Join(types, "; "))
	}
	tw.Flush()
	for _, line := range shadowed {
		fmt.Fprintln(stdout, line)
	}
	return status
}
