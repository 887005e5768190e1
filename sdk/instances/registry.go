// Package instances holds what every plugin needs around its own logic: the
// registry of configured instances (type check, decoding, Validate,
// Configure, Unconfigure, lookup by instance id), a decoder that turns a
// block's JSON into typed values and diagnostics, and the drain tracker that
// lets a plugin finish its open exchanges before the process stops.
//
// A plugin embeds a *Registry, so its Validate, Configure and Unconfigure
// come from here and the plugin keeps only its Metadata and the calls of its
// kind:
//
//	type Plugin struct {
//		*instances.Registry[*config]
//	}
//
//	func New() *Plugin {
//		return &Plugin{Registry: instances.New(instances.Options[*config]{
//			Types:  []string{"transform-headers"},
//			Decode: func(b instances.Block) (*config, lifecycle.Diagnostics) { return decodeConfig(b.ConfigJSON) },
//		})}
//	}
package instances

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// Block is one configuration block as the core sends it.
type Block struct {
	// InstanceID is the id the core addresses the instance with; empty when
	// the block is only validated.
	InstanceID string
	// APIID is the API the instance belongs to; empty when validating.
	APIID string
	// Type is the type name the operator wrote (a name or an alias).
	Type string
	// ConfigJSON is the block's values as JSON.
	ConfigJSON []byte
}

// Options says how a plugin's blocks become instances of type T.
type Options[T any] struct {
	// Types are the type names and aliases the plugin accepts; a block of
	// any other type is refused with a diagnostic listing them.
	Types []string
	// Decode checks a block and builds its instance. It is called by both
	// Validate and Configure, so it must have no side effects. Any error
	// diagnostic means the block is invalid and the value is discarded.
	Decode func(b Block) (T, lifecycle.Diagnostics)
	// Start, optional, acquires what a configured instance holds
	// (connections, contexts); Configure only. An error leaves the
	// instance unconfigured and the previous one in place.
	Start func(b Block, v T) (T, error)
	// Replaced, optional, is called with the instance a Configure of the
	// same id replaced, after the new one is visible.
	Replaced func(old T)
	// Removed, optional, is called with the instance Unconfigure removed.
	Removed func(old T)
}

// Registry holds the configured instances of a plugin by instance id. It is
// safe for concurrent use: the core configures and serves concurrently.
type Registry[T any] struct {
	opts Options[T]

	mu sync.RWMutex
	m  map[string]T
}

// New returns an empty registry. Options.Types and Options.Decode are
// required.
func New[T any](opts Options[T]) *Registry[T] {
	if len(opts.Types) == 0 || opts.Decode == nil {
		panic("instances.New: Types and Decode are required")
	}
	return &Registry[T]{opts: opts, m: map[string]T{}}
}

// decode checks the type name, then decodes the block.
func (r *Registry[T]) decode(b Block) (T, lifecycle.Diagnostics) {
	if !slices.Contains(r.opts.Types, b.Type) {
		var zero T
		var diags lifecycle.Diagnostics
		diags.Errorf(nil, "unknown type %q: this plugin provides %s", b.Type, quotedList(r.opts.Types))
		return zero, diags
	}
	return r.opts.Decode(b)
}

// Validate decodes a block and reports its diagnostics; nothing is kept.
func (r *Registry[T]) Validate(_ context.Context, req *lifecycle.ValidateRequest, resp *lifecycle.ValidateResponse) {
	_, resp.Diagnostics = r.decode(Block{Type: req.Type, ConfigJSON: req.ConfigJSON})
}

// Configure decodes a block and, when it has no error, starts the instance
// and stores it under the request's instance id, replacing any earlier one.
func (r *Registry[T]) Configure(_ context.Context, req *lifecycle.ConfigureRequest, resp *lifecycle.ConfigureResponse) {
	b := Block{InstanceID: req.InstanceID, APIID: req.APIID, Type: req.Type, ConfigJSON: req.ConfigJSON}
	v, diags := r.decode(b)
	resp.Diagnostics = diags
	if diags.HasErrors() {
		return
	}
	if r.opts.Start != nil {
		var err error
		if v, err = r.opts.Start(b, v); err != nil {
			resp.Diagnostics.Errorf(nil, "%v", err)
			return
		}
	}
	r.mu.Lock()
	old, had := r.m[req.InstanceID]
	r.m[req.InstanceID] = v
	r.mu.Unlock()
	if had && r.opts.Replaced != nil {
		r.opts.Replaced(old)
	}
}

// Unconfigure removes an instance. Work already running with it keeps the
// value it looked up.
func (r *Registry[T]) Unconfigure(_ context.Context, instanceID string) {
	r.mu.Lock()
	old, had := r.m[instanceID]
	delete(r.m, instanceID)
	r.mu.Unlock()
	if had && r.opts.Removed != nil {
		r.opts.Removed(old)
	}
}

// Get returns the instance configured under id.
func (r *Registry[T]) Get(id string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[id]
	return v, ok
}

// Lookup returns the instance configured under id, or an error naming the
// id when there is none (the core called before Configure, or after
// Unconfigure).
func (r *Registry[T]) Lookup(id string) (T, error) {
	if v, ok := r.Get(id); ok {
		return v, nil
	}
	var zero T
	return zero, fmt.Errorf("instance %q is not configured", id)
}

// Range calls f with every configured instance, in no particular order,
// until f returns false. It works on a snapshot: f may call the registry.
func (r *Registry[T]) Range(f func(id string, v T) bool) {
	r.mu.RLock()
	ids := make([]string, 0, len(r.m))
	vs := make([]T, 0, len(r.m))
	for id, v := range r.m {
		ids = append(ids, id)
		vs = append(vs, v)
	}
	r.mu.RUnlock()
	for i, id := range ids {
		if !f(id, vs[i]) {
			return
		}
	}
}

// Len returns the number of configured instances.
func (r *Registry[T]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// quotedList writes names as "a", "b" and "c".
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
