// Package pluginhost discovers, launches, supervises and stops plugin
// processes.
//
// Plugins are binaries named sluice-plugin-<kind>-<name> in a list of
// directories searched in order: the first directory holding a binary of a
// name provides that plugin, and later ones of the same name are shadowed
// (logged, never started). The host launches each once with hashicorp/go-plugin (gRPC only, AutoMTLS, no
// host environment but an allow-list, optional sha256 pin), reads its
// metadata, and from then on:
//
//  1. Clients hands out the running process's gRPC clients, or fails at once
//     with ErrUnavailable while the plugin is down.
//  2. Configure records every accepted instance.
//  3. When a process ends unexpectedly, the supervisor marks the plugin down,
//     restarts it with exponential backoff (200 ms doubling to 10 s, reset
//     after 30 s up), reads the metadata again, configures every recorded
//     instance again in order, marks it up and runs the OnRestart callbacks.
//  4. Close stops supervision first, then drains every plugin, stops it with
//     go-plugin's Kill under a deadline and SIGKILLs what is left.
//
// Plugins are forked with Pdeathsig=SIGKILL from a goroutine locked to its OS
// thread, so the kernel kills them when the core dies, even by SIGKILL.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// BinaryPrefix starts the name of every plugin binary.
const BinaryPrefix = "sluice-plugin-"

// DefaultStartTimeout bounds a plugin's start (handshake and metadata) when
// Options.StartTimeout is zero.
const DefaultStartTimeout = 10 * time.Second

var (
	// ErrUnavailable is returned, wrapped with the plugin's name, while a
	// plugin is down; the server answers 503 for it.
	ErrUnavailable = errors.New("plugin unavailable")
	// ErrUnknownType is returned when no plugin provides a type.
	ErrUnknownType = errors.New("unknown plugin type")
	// ErrChecksumMismatch is returned when a binary does not match its pin.
	ErrChecksumMismatch = errors.New("plugin binary does not match its sha256 pin")
)

// Options configure a Host.
type Options struct {
	// Dir is the directory holding the plugin binaries: shorthand for Dirs
	// with one entry. Set Dir or Dirs, not both.
	Dir string
	// Dirs are the directories holding plugin binaries, searched in order:
	// a binary's name found in an earlier directory wins over the same name
	// in a later one, so an operator can keep third-party plugins out of
	// the shipped folder and still override a shipped one deliberately.
	Dirs []string
	// MetricsDir, when set, is where plugins write their Prometheus metrics:
	// each plugin is told its own file, <MetricsDir>/<name>.prom, in the
	// environment variable sdk/metrics.FileEnv, so the file's name says which
	// plugin wrote it. Optional. Default: plugins are told nothing.
	MetricsDir string
	// Pins maps a plugin's name (e.g. "endpoint-kafka") to the sha256 of its
	// binary as 64 hex digits. A pinned binary that does not match is not
	// started. Optional. Default: no pins.
	Pins map[string]string
	// Logger receives the host's logs and the plugins' log lines, the latter
	// with the attribute plugin=<name>. Optional. Default: slog.Default().
	Logger *slog.Logger
	// StartTimeout bounds each start: handshake, metadata, and each
	// re-configuration after a restart. Optional. Default: 10s.
	StartTimeout time.Duration
	// ObserveRPC is told the duration of every unary call the core makes to
	// a plugin (Configure, the request phase, ...), with the plugin's name
	// and the method's short name. Streams are left out: their duration is
	// the life of a client's request. Optional. Default: nothing observed.
	ObserveRPC func(plugin, method string, d time.Duration)
}

// Host runs the plugin processes of one plugin directory.
type Host struct {
	opts Options
	log  *slog.Logger

	// closeCtx ends when Close begins; it aborts launches in progress.
	closeCtx    context.Context
	closeCancel context.CancelFunc
	closeOnce   sync.Once
	// startMu is held by Start throughout, so Close waits for it.
	startMu sync.Mutex

	mu      sync.Mutex
	started bool
	closed  bool
	plugins []*Plugin

	index atomic.Pointer[typeIndex]
}

// New returns a Host; nothing runs until Start.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Host{opts: opts, log: opts.Logger, closeCtx: ctx, closeCancel: cancel}
	h.index.Store(&typeIndex{})
	return h
}

// Start discovers every plugin binary in Dirs (or Dir) and launches each once,
// concurrently, reading its metadata. A plugin that fails to start, and any
// problem with the directory's contents or the pins, is reported in the
// returned error (one line per problem); the other plugins are started and
// supervised all the same. ctx bounds the launches only, not the plugins'
// lives. Start may be called once.
func (h *Host) Start(ctx context.Context) error {
	h.startMu.Lock()
	defer h.startMu.Unlock()
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return errors.New("plugin host: Start after Close")
	case h.started:
		h.mu.Unlock()
		return errors.New("plugin host: Start called twice")
	}
	h.started = true
	h.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.closeCtx, cancel)()

	dirs := h.opts.Dirs
	if h.opts.Dir != "" {
		if len(dirs) > 0 {
			return errors.New("plugin host: both Dir and Dirs are set")
		}
		dirs = []string{h.opts.Dir}
	}
	candidates, errs := discover(dirs, h.opts.Pins)
	for _, c := range candidates {
		for _, other := range c.shadows {
			// Expected when an operator overrides a shipped plugin, a
			// mistake otherwise: worth a line either way, not an error.
			h.log.Warn("plugin binary shadowed by one in an earlier plugin directory; it is not started",
				"plugin", c.name, "started", c.path, "shadowed", other)
		}
	}

	results := make([]error, len(candidates))
	plugins := make([]*Plugin, len(candidates))
	var wg sync.WaitGroup
	for i, c := range candidates {
		if c.err != nil {
			results[i] = c.err
			continue
		}
		p := newPlugin(h, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			proc, meta, err := p.launch(ctx)
			if err != nil {
				p.spawn.stop()
				results[i] = fmt.Errorf("plugin %s (%s): %w", c.name, c.path, err)
				return
			}
			if meta.GetName() != c.name {
				p.log.Warn("plugin reports another name than its binary's; the binary's name is used",
					"reported", meta.GetName())
			}
			p.log.Info("plugin started", "pid", proc.pid, "version", meta.GetVersion(), "types", len(meta.GetTypes()))
			p.install(proc, meta)
			plugins[i] = p
		}()
	}
	wg.Wait()

	h.mu.Lock()
	for i, p := range plugins {
		if p != nil {
			h.plugins = append(h.plugins, p)
		} else {
			errs = append(errs, results[i])
		}
	}
	sort.Slice(h.plugins, func(i, j int) bool { return h.plugins[i].name < h.plugins[j].name })
	h.mu.Unlock()

	errs = append(errs, h.rebuildIndex()...)
	return errors.Join(errs...)
}

// Plugins returns the started plugins sorted by name.
func (h *Host) Plugins() []*Plugin {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Plugin(nil), h.plugins...)
}

// Lookup finds the plugin providing a type of a kind, by the type's name or
// one of its aliases, and the type's description.
func (h *Host) Lookup(kind lifecycle.Kind, typ string) (*Plugin, *pluginv1.TypeInfo, bool) {
	e, ok := h.index.Load().types[kind][typ]
	if !ok {
		return nil, nil, false
	}
	return e.plugin, e.info, true
}

// TypeInfo describes a type of a kind, found by name or alias.
func (h *Host) TypeInfo(kind lifecycle.Kind, typ string) (*pluginv1.TypeInfo, bool) {
	_, ti, ok := h.Lookup(kind, typ)
	return ti, ok
}

// KnownTypes lists the names (not aliases) of the types of a kind, sorted,
// for messages such as "unknown endpoint type; known types: kafka, mock".
func (h *Host) KnownTypes(kind lifecycle.Kind) []string {
	return append([]string(nil), h.index.Load().names[kind]...)
}

// Validate asks the plugin providing a type whether a configuration block is
// valid. It returns the plugin's diagnostics; the error is for a type nobody
// provides or a plugin that could not answer.
func (h *Host) Validate(ctx context.Context, kind lifecycle.Kind, typ string, configJSON []byte) ([]*pluginv1.Diagnostic, error) {
	p, ti, ok := h.Lookup(kind, typ)
	if !ok {
		known := h.KnownTypes(kind)
		if len(known) == 0 {
			return nil, fmt.Errorf("%w: no %s plugin is installed to provide type %q", ErrUnknownType, kind, typ)
		}
		return nil, fmt.Errorf("%w: %s type %q is not provided by any plugin; known %s types: %s",
			ErrUnknownType, kind, typ, kind, strings.Join(known, ", "))
	}
	c, err := p.Clients()
	if err != nil {
		return nil, err
	}
	resp, err := c.Plugin.ValidateConfig(ctx, &pluginv1.ValidateConfig_Request{Type: ti.GetName(), ConfigJson: configJSON})
	if err != nil {
		return nil, fmt.Errorf("plugin %s: validate %s %q: %w", p.name, kind, typ, err)
	}
	return resp.GetDiagnostics(), nil
}

// Close stops every plugin: supervision first (so stopping triggers no
// restart), then, for all plugins at once, Drain with ctx's deadline (10 s
// when ctx has none), go-plugin's Kill bounded by a few seconds, and SIGKILL
// of the process if it is still there. It returns once every process has
// been reaped. Close aborts a Start in progress and may be called more than
// once.
func (h *Host) Close(ctx context.Context) {
	h.closeOnce.Do(func() {
		h.closeCancel()
		h.startMu.Lock()
		defer h.startMu.Unlock()
		h.mu.Lock()
		h.closed = true
		plugins := h.plugins
		h.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range plugins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.close(ctx)
			}()
		}
		wg.Wait()
	})
}

// typeIndex maps kind and type name or alias to the providing plugin.
type typeIndex struct {
	types map[lifecycle.Kind]map[string]typeEntry
	names map[lifecycle.Kind][]string
}

type typeEntry struct {
	plugin *Plugin
	info   *pluginv1.TypeInfo
}

// rebuildIndex indexes the types of every plugin's current metadata. When two
// plugins claim a name, the first by plugin name keeps it; the conflicts are
// returned (and logged when the rebuild follows a restart).
func (h *Host) rebuildIndex() []error {
	idx := &typeIndex{
		types: map[lifecycle.Kind]map[string]typeEntry{},
		names: map[lifecycle.Kind][]string{},
	}
	var errs []error
	for _, p := range h.Plugins() {
		meta := p.Metadata()
		kind := p.kind
		if idx.types[kind] == nil {
			idx.types[kind] = map[string]typeEntry{}
		}
		for _, ti := range meta.GetTypes() {
			if ti.GetName() == "" {
				errs = append(errs, fmt.Errorf("plugin %s: a type has no name; it is ignored", p.name))
				continue
			}
			for i, n := range append([]string{ti.GetName()}, ti.GetAliases()...) {
				if prev, dup := idx.types[kind][n]; dup {
					if prev.plugin != p || prev.info != ti {
						errs = append(errs, fmt.Errorf("plugin %s: %s type %q is already provided by plugin %s; remove one of the two plugins",
							p.name, kind, n, prev.plugin.name))
					}
					continue
				}
				idx.types[kind][n] = typeEntry{plugin: p, info: ti}
				if i == 0 {
					idx.names[kind] = append(idx.names[kind], n)
				}
			}
		}
	}
	for _, names := range idx.names {
		sort.Strings(names)
	}
	h.index.Store(idx)
	return errs
}

// candidate is a binary found in a plugin directory, or a problem with one.
type candidate struct {
	name string
	path string
	kind lifecycle.Kind
	pin  []byte
	err  error
	// shadows are the paths of binaries of the same name in later
	// directories, which this one hides.
	shadows []string
}

var kinds = map[string]lifecycle.Kind{
	string(lifecycle.KindEndpoint):   lifecycle.KindEndpoint,
	string(lifecycle.KindEntrypoint): lifecycle.KindEntrypoint,
	string(lifecycle.KindPolicy):     lifecycle.KindPolicy,
}

// discover lists the plugin binaries of dirs, searched in order: the first
// file of a name is the candidate, even when it is unusable (a broken binary
// must be fixed, not silently replaced by an older one further down the
// list). Files without the prefix and directories are ignored; a prefixed
// file that cannot be a plugin is reported, as are a directory that cannot be
// read and a pin for a plugin that is in none of them.
func discover(dirs []string, pins map[string]string) ([]candidate, []error) {
	if len(dirs) == 0 {
		return nil, []error{errors.New("plugin directory: not set")}
	}
	var out []candidate
	var errs []error
	byName := map[string]int{}
	var searched []string
	for _, dir := range dirs {
		if dir == "" {
			errs = append(errs, errors.New("plugin directory: not set"))
			continue
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin directory %s: %w", dir, err))
			continue
		}
		searched = append(searched, abs)
		entries, err := os.ReadDir(abs)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin directory: %w", err))
			continue
		}
		for _, e := range entries {
			c, ok := candidateOf(abs, e.Name(), pins)
			if !ok {
				continue
			}
			if i, dup := byName[c.name]; dup {
				out[i].shadows = append(out[i].shadows, c.path)
				continue
			}
			byName[c.name] = len(out)
			out = append(out, c)
		}
	}
	pinned := make([]string, 0, len(pins))
	for name := range pins {
		pinned = append(pinned, name)
	}
	sort.Strings(pinned)
	for _, name := range pinned {
		if _, ok := byName[name]; !ok {
			errs = append(errs, fmt.Errorf("plugin %s: a sha256 pin is set but %s has no %s%s binary", name,
				strings.Join(searched, ", "), BinaryPrefix, name))
		}
	}
	return out, errs
}

// Binary is a plugin binary found by Discover.
type Binary struct {
	// Name is the plugin's name, the binary's without BinaryPrefix.
	Name string
	// Path is the binary's absolute path.
	Path string
	// Shadows are the paths of the binaries of the same name in later
	// directories, which are not started.
	Shadows []string
	// Err says why the binary cannot be started (a bad name, not
	// executable), or is nil.
	Err error
}

// Discover lists the plugin binaries of dirs as Start would find them,
// without starting any, for tools that show what a gateway would run.
func Discover(dirs []string) ([]Binary, []error) {
	cands, errs := discover(dirs, nil)
	out := make([]Binary, 0, len(cands))
	for _, c := range cands {
		out = append(out, Binary{Name: c.name, Path: c.path, Shadows: c.shadows, Err: c.err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errs
}

// candidateOf checks one directory entry; ok is false for an entry that is
// not a plugin at all (no prefix, or a directory).
func candidateOf(dir, file string, pins map[string]string) (candidate, bool) {
	if !strings.HasPrefix(file, BinaryPrefix) {
		return candidate{}, false
	}
	c := candidate{name: strings.TrimPrefix(file, BinaryPrefix), path: filepath.Join(dir, file)}
	kindName, rest, _ := strings.Cut(c.name, "-")
	kind, ok := kinds[kindName]
	if !ok || rest == "" {
		c.err = fmt.Errorf("plugin %s (%s): the name must be %s<kind>-<name> with kind endpoint, entrypoint or policy",
			c.name, c.path, BinaryPrefix)
		return c, true
	}
	c.kind = kind
	info, err := os.Stat(c.path)
	switch {
	case err != nil:
		c.err = fmt.Errorf("plugin %s: %w", c.name, err)
	case info.IsDir():
		return candidate{}, false
	case !info.Mode().IsRegular():
		c.err = fmt.Errorf("plugin %s (%s): not a regular file", c.name, c.path)
	case info.Mode().Perm()&0o111 == 0:
		c.err = fmt.Errorf("plugin %s (%s): not executable; run chmod +x on it", c.name, c.path)
	}
	if pin, ok := pins[c.name]; ok && c.err == nil {
		c.pin, err = parsePin(pin)
		if err != nil {
			c.err = fmt.Errorf("plugin %s: %w", c.name, err)
		}
	}
	return c, true
}
