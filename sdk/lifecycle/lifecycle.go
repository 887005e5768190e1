// Package lifecycle defines what every plugin implements, whatever its kind,
// and the metadata a plugin describes itself with.
//
// The lifecycle of a plugin process, as the core drives it:
//
//  1. The core launches the binary and completes the handshake (sdk/serve).
//  2. Metadata is read once; it names the types the plugin provides, their
//     configuration schemas and capabilities.
//  3. Validate is called for each configuration block at load time
//     (`sluice validate` too). It reports diagnostics and changes nothing.
//  4. Configure is called once per API instance of a type, with an instance
//     id the core uses on every later call. It may be called again for the same
//     id after a plugin restart or a reload.
//  5. Streams and calls of the plugin's kind are served (sdk/endpoint,
//     sdk/entrypoint, sdk/policy), concurrently.
//  6. Unconfigure removes an instance; Drain (optional, see Drainer) finishes
//     in-flight work before the core stops the process.
//
// While instances are configured, the core asks a plugin that implements
// HealthChecker (optional) every few seconds whether each instance can serve;
// one that cannot makes the gateway's /ready answer 503.
package lifecycle

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/sdk/schema"
)

// Kind is the kind of plugin.
type Kind string

// The plugin kinds.
const (
	KindEndpoint   Kind = "endpoint"
	KindEntrypoint Kind = "entrypoint"
	KindPolicy     Kind = "policy"
)

// Match tells the core which requests an entrypoint type accepts, so matching
// costs no RPC.
type Match struct {
	// Methods are the accepted HTTP methods; empty means any.
	Methods []string
	// Accept, when set, must be among the request's Accept media types.
	Accept string
	// WebSocket requires a WebSocket upgrade request.
	WebSocket bool
	// CriteriaCount breaks ties: the matching entrypoint with the highest count wins.
	CriteriaCount int
}

// TypeInfo describes one type a plugin provides.
type TypeInfo struct {
	// Name is the type name used in HCL (e.g. "kafka", "sse").
	Name string
	// Aliases are other accepted names.
	Aliases []string
	// Description is one sentence for `sluice plugins`.
	Description string
	// Schema is the configuration schema of the type's HCL block.
	Schema schema.Schema
	// QoS lists accepted QoS levels (entrypoints) or served levels (endpoints).
	QoS []string
	// Match is required for entrypoints.
	Match *Match
	// Modes are "publish" and/or "subscribe" (entrypoints, endpoints).
	Modes []string
	// Phases are the policy phases supported: request, response, publish, subscribe.
	Phases []string
	// Capabilities are free-form feature flags.
	Capabilities []string
}

// Metadata describes a plugin binary.
type Metadata struct {
	// Kind is the plugin kind.
	Kind Kind
	// Name is the plugin's name (e.g. "endpoint-kafka").
	Name string
	// Version is the plugin's own version.
	Version string
	// Types are the types provided.
	Types []TypeInfo
}

// Severity of a diagnostic.
type Severity int

// Diagnostic severities.
const (
	Error Severity = iota + 1
	Warning
)

// Diagnostic reports a configuration problem. Path names the attribute (e.g.
// ["consumer", "auto_offset_reset"]); the core turns it into file:line:col.
type Diagnostic struct {
	// Severity is Error or Warning.
	Severity Severity
	// Summary is one line.
	Summary string
	// Detail says how to fix it.
	Detail string
	// Path is the attribute path within the block.
	Path []string
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.Severity == Error {
			return true
		}
	}
	return false
}

// Errorf appends an error diagnostic about the attribute at path.
func (d *Diagnostics) Errorf(path []string, format string, args ...any) {
	*d = append(*d, Diagnostic{Severity: Error, Summary: fmt.Sprintf(format, args...), Path: path})
}

// Err returns the diagnostics as an error, or nil when there is no error.
func (d Diagnostics) Err() error {
	var msgs []string
	for _, x := range d {
		if x.Severity == Error {
			m := x.Summary
			if len(x.Path) > 0 {
				m = strings.Join(x.Path, ".") + ": " + m
			}
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// ValidateRequest asks whether one configuration block is valid.
type ValidateRequest struct {
	// Type is the type name.
	Type string
	// ConfigJSON is the block's values as JSON.
	ConfigJSON []byte
}

// ValidateResponse carries the validation result.
type ValidateResponse struct {
	// Diagnostics found; none means valid.
	Diagnostics Diagnostics
}

// ConfigureRequest sets up one API instance of a type.
type ConfigureRequest struct {
	// InstanceID addresses the instance on every later call.
	InstanceID string
	// Type is the type name.
	Type string
	// APIID is the API the instance belongs to.
	APIID string
	// ConfigJSON is the block's values as JSON.
	ConfigJSON []byte
}

// ConfigureResponse carries the configuration result.
type ConfigureResponse struct {
	// Diagnostics found; an error leaves the instance unconfigured.
	Diagnostics Diagnostics
}

// Plugin is what every plugin implements; see the package doc for the lifecycle.
type Plugin interface {
	// Metadata describes the plugin. It is called once, early.
	Metadata() Metadata
	// Validate checks a configuration block without side effects.
	Validate(ctx context.Context, req *ValidateRequest, resp *ValidateResponse)
	// Configure creates or replaces an instance.
	Configure(ctx context.Context, req *ConfigureRequest, resp *ConfigureResponse)
	// Unconfigure removes an instance and releases what it holds.
	Unconfigure(ctx context.Context, instanceID string)
}

// Drainer is implemented by plugins that must finish in-flight work before the
// process stops (flush producers, commit offsets).
type Drainer interface {
	// Drain finishes in-flight work before ctx's deadline.
	Drain(ctx context.Context) error
}

// FeatureHealth is the protocol feature (GetMetadata.features) of a plugin
// that answers Plugin.CheckHealth (protocol v1.4). The sdk announces it for a
// plugin that implements HealthChecker.
const FeatureHealth = "health"

// InstanceHealth is whether one configured instance can serve.
type InstanceHealth struct {
	// InstanceID is the instance's id, as given to Configure.
	InstanceID string
	// Ready is true when the instance can serve (for an endpoint: its
	// backend is reachable).
	Ready bool
	// Reason says why the instance is not ready, for operators; the core
	// shows it on /ready. It must hold no secret.
	Reason string
}

// HealthChecker is implemented by plugins whose instances can become unable
// to serve while the process runs (an endpoint whose backend is
// unreachable). The core calls CheckHealth every few seconds with a short
// deadline and reports every instance that is not ready on the admin /ready,
// which then answers 503, so load balancers stop routing to the gateway.
//
// Optional: a plugin without it is not asked, and its instances count as
// ready.
type HealthChecker interface {
	// CheckHealth reports the health of the configured instances. It must
	// answer at once, from state kept up to date in the background (a
	// periodic check with a timeout of its own), and never wait on a
	// backend. An instance it leaves out counts as ready.
	CheckHealth(ctx context.Context) []InstanceHealth
}

// CapabilityBodyOnlyInEL is the type capability of a plugin that reads the
// request body only through EL templates in its configuration
// (#request.content). The core then leaves the body out of the contexts it
// sends to instances whose configuration does not mention request.content,
// so the body crosses to such a plugin only when it is used.
const CapabilityBodyOnlyInEL = "request-body-only-in-el"

// ReadsRequestBody reports whether an instance of a type with capabilities
// caps and configuration configJSON needs the request body in its contexts.
func ReadsRequestBody(caps []string, configJSON []byte) bool {
	for _, c := range caps {
		if c == CapabilityBodyOnlyInEL {
			return bytes.Contains(configJSON, []byte("request.content"))
		}
	}
	return true
}
