package config

import (
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultReloadDebounce is how long the file watcher waits after the last
// change before it reloads. Editors and deployment tools write a file in
// several steps (truncate, write, rename; a certificate, then its key);
// half a second lets them finish without making an operator wait.
const DefaultReloadDebounce = 500 * time.Millisecond

// Reload is the gateway { reload } block: when the gateway reloads its
// configuration besides SIGHUP. It is read at start-up only.
type Reload struct {
	// Watch reloads when the configuration file, or a file it reads
	// (file(), the gateway's TLS files, a jwt plan's jwks_file), changes
	// on disk, exactly as SIGHUP does. Optional. Default: false, so a
	// half-edited file on a production host is never picked up by itself;
	// turn it on where files are replaced whole (a container's mounted
	// configuration, a deployment tool).
	Watch bool
	// Debounce is how long the watcher waits for the files to stop
	// changing before it reloads. Optional. Default: DefaultReloadDebounce.
	Debounce time.Duration
}

// DefaultReload is the reload behaviour of a file without a reload block:
// SIGHUP only.
func DefaultReload() Reload {
	return Reload{Debounce: DefaultReloadDebounce}
}

// loadReload decodes gateway { reload } into f.Gateway.Reload.
func loadReload(f *File, where string, body hcl.Body) hcl.Diagnostics {
	content, diags := body.Content(schemaOf([]string{"watch", "debounce_ms"}))
	diags = prefixed(where, diags)
	if content == nil {
		return diags
	}
	if a := content.Attributes["watch"]; a != nil {
		b, ok, d := evalBool(where, a.Expr, f.eval)
		diags = append(diags, d...)
		if ok {
			f.Gateway.Reload.Watch = b
		}
	}
	n, ok, d := evalBounded(where, "debounce_ms", content.Attributes["debounce_ms"], f.eval, 1)
	diags = append(diags, d...)
	if ok {
		f.Gateway.Reload.Debounce = time.Duration(n) * time.Millisecond
	}
	return diags
}

// readSet collects the paths file() was asked for while a file loaded. It is
// safe for concurrent use, since plugin blocks may be decoded concurrently.
type readSet struct {
	mu    sync.Mutex
	paths []string
}

// add notes p. A nil set notes nothing.
func (r *readSet) add(p string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.paths, p) {
		r.paths = append(r.paths, p)
	}
}

// list returns the noted paths.
func (r *readSet) list() []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.paths)
}

// Sources returns the absolute paths of the files the configuration was
// made from, sorted: the file itself, every file file() was asked for
// (also one that was missing), the gateway's TLS files and the jwt plans'
// jwks_file. These are the files whose change a reload picks up, so the
// gateway's file watcher watches them. Files a plugin opens itself (the
// Kafka endpoint's truststore location) are not among them.
func (f *File) Sources() []string {
	var out []string
	add := func(p string) {
		if p == "" {
			return
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	add(f.Path)
	for _, p := range f.reads.list() {
		add(p)
	}
	if t := f.Gateway.TLS; t != nil {
		add(t.CertFile)
		add(t.KeyFile)
		add(t.ClientCAFile)
	}
	for _, a := range f.APIs {
		for _, p := range a.Plans {
			if p.JWT != nil {
				add(p.JWT.JWKSFile)
			}
		}
	}
	slices.Sort(out)
	return out
}
