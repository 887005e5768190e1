// Package config loads the gateway's HCL file (docs/hcl.md).
//
// Loading happens in two stages, so that `sluice validate` and the gateway
// report every problem at once:
//
//  1. Load reads the file's structure: the gateway and dev_kafka blocks, the
//     APIs, their plans, flows and phases. Plugin blocks (entrypoints,
//     endpoints, policies) keep their bodies undecoded, because only the
//     plugin that provides a type knows its schema.
//  2. Decode decodes each plugin block against the schema its plugin
//     declares, checks enumerations, turns the values into JSON and asks the
//     plugin to validate them. Diagnostics the plugin returns name an
//     attribute path, which is mapped back onto the source range.
//
// Every diagnostic names the place it belongs to (`api "orders" > endpoint
// "kafka" "default": ...`), and one Loader owns the hclparse.Parser for every
// file so WriteDiagnostics can print source snippets.
package config

import (
	"context"
	"github.com/sluice-gw/sluice/core/internal/cors"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Defaults applied when the file leaves a setting out.
const (
	// DefaultListen is the public listener's address.
	DefaultListen = "127.0.0.1:8082"
	// DefaultAdminListen is the admin listener's address (/health, /ready,
	// /metrics, /apis, /plugins).
	DefaultAdminListen = "127.0.0.1:18082"
	// DefaultPluginDir is where plugin binaries live, relative to the config
	// file's directory.
	DefaultPluginDir = "bin/plugins"
	// DefaultDevKafkaListen is the embedded broker's address.
	DefaultDevKafkaListen = "127.0.0.1:9092"
	// DefaultDevKafkaDataDir is where the embedded broker keeps its data,
	// relative to the config file's directory.
	DefaultDevKafkaDataDir = ".sluice/kafka"
	// PlanKeyless is the plan an API without a plan block gets.
	PlanKeyless = plan.TypeKeyless
)

// The policy phases a flow may hold, in the order the gateway runs them for a
// request that publishes and subscribes: request before the entrypoint is
// opened, response once the endpoint connected and before the response
// headers are written, then publish and subscribe per batch of messages.
const (
	PhaseRequest   = "request"
	PhaseResponse  = "response"
	PhasePublish   = "publish"
	PhaseSubscribe = "subscribe"
)

// Phases lists every phase a flow may hold, in the order diagnostics mention
// them.
var Phases = []string{PhaseRequest, PhaseResponse, PhasePublish, PhaseSubscribe}

// File is one loaded configuration file.
type File struct {
	// Path is the file's path as given to Load; diagnostics use it.
	Path string
	// Gateway holds the gateway block, with defaults filled in.
	Gateway Gateway
	// DevKafka holds the dev_kafka block; nil when the file has none.
	DevKafka *DevKafka
	// APIs are the api blocks in file order.
	APIs []*API

	// dir is the absolute directory of the file; file() and relative paths
	// resolve against it.
	dir string
	// eval is the evaluation context shared by both stages, so plugin blocks
	// see the same functions as the rest of the file.
	eval *hcl.EvalContext
	// reads notes the files file() was asked for (Sources).
	reads *readSet
}

// Gateway is the gateway block.
type Gateway struct {
	// Listen is the public listener's host:port. Optional. Default: 127.0.0.1:8082.
	Listen string
	// AdminListen is the admin listener's host:port. Optional. Default: 127.0.0.1:18082.
	AdminListen string
	// PluginDirs are the absolute directories searched for plugin binaries,
	// in order: the first holding a binary of a name provides that plugin.
	// The file sets them with plugin_dirs, or one with plugin_dir (never
	// both); a relative value resolves against the file's directory.
	// Optional. Default: [bin/plugins].
	PluginDirs []string
	// Pins maps a plugin name (e.g. "endpoint-kafka") to the lowercase hex
	// sha256 its binary must have. Optional. Default: no pins.
	Pins map[string]string
	// TLS serves the public listener over HTTPS. Optional. Default: nil,
	// plain HTTP.
	TLS *TLS
	// Limits bound what one client can take; every field has its default
	// filled in.
	Limits Limits
	// Log is the gateway { log } block, with defaults filled in.
	Log Log
	// Reload is the gateway { reload } block, with defaults filled in.
	Reload Reload
}

// DevKafka is the dev_kafka block: the embedded Kafka-compatible broker.
type DevKafka struct {
	// Listen is the broker's host:port. Optional. Default: 127.0.0.1:9092.
	Listen string
	// DataDir is the absolute directory the broker persists to; a relative
	// value in the file resolves against the file's directory. Optional.
	// Default: .sluice/kafka.
	DataDir string
	// Topics maps a topic name to its partition count; they are created at
	// start-up. Optional. Default: none.
	Topics map[string]int
}

// API is one api block.
type API struct {
	// Name is the block's label, unique in the file.
	Name string
	// ContextPath is the path prefix the API serves, unique in the file.
	ContextPath string
	// Plans are the plan blocks in file order; a keyless plan when the API
	// has none.
	Plans []plan.Config
	// MaxRequestBodyBytes bounds a request body (413 beyond). Optional.
	// Default: the gateway's limits { max_request_body_bytes }.
	MaxRequestBodyBytes int
	// Entrypoints are the entrypoint blocks in file order.
	Entrypoints []*PluginBlock
	// Endpoints are the endpoint blocks in file order, with unique names.
	// The first serves the API; the others are named targets (a push
	// subscription's dlq).
	Endpoints []*PluginBlock
	// Push are the subscriptions of the API's push plan, in file order.
	// Optional.
	Push []*PushSubscription
	// Flows are the flow blocks in file order; the gateway runs them in that order.
	Flows []*Flow
	// CORS is the cors block: which browser origins may call the API.
	// Optional. Default: nil, no CORS (no preflight answer, no
	// Access-Control-* header), also when the block says enabled = false.
	CORS *CORS
	// Range is the api block's header, for diagnostics about the whole API.
	Range hcl.Range
}

// CORS is an api's cors block, the reference's HTTP listener cors settings
// (allowOrigin, allowMethods, allowHeaders, exposeHeaders, maxAge,
// allowCredentials) in snake_case, decoded into the options the cors package
// takes. Load has validated every value and filled the defaults, which
// differ from the zero Options: AllowMethods defaults to
// DefaultCORSMethods, MaxAgeSeconds to -1 (no Access-Control-Max-Age).
type CORS struct {
	cors.Options
	// Range is the cors block's header.
	Range hcl.Range
}

// DefaultCORSMethods are the methods a cors block without allow_methods
// allows: those the entrypoints serve (GET for SSE, HTTP GET and WebSocket,
// POST for HTTP POST).
var DefaultCORSMethods = []string{"GET", "POST"}

// PluginBlock is an entrypoint, endpoint or policy block, whose body only
// the providing plugin's schema can decode.
type PluginBlock struct {
	// Kind says which kind of plugin provides the type.
	Kind lifecycle.Kind
	// Type is the type label as written in the file (possibly an alias).
	Type string
	// Name is the endpoint's name label; empty for entrypoints and policies.
	Name string
	// Body is the undecoded block body.
	Body hcl.Body
	// Range is the block's header.
	Range hcl.Range
	// ConfigJSON is the decoded body as a JSON object; Decode sets it when
	// the body matched the type's schema.
	ConfigJSON []byte
	// Where names the block for diagnostics, e.g.
	// `api "demo" > endpoint "kafka" "default"`.
	Where string

	// Disabled is a policy block's enabled = false meta-argument: the step
	// is checked but never runs. Optional. Default: false.
	Disabled bool
	// Condition is a request-phase policy block's condition meta-argument,
	// compiled: the step runs for a request only when it is true.
	// Optional. Default: nil, always.
	Condition *el.Template
	// MessageCondition is a publish- or subscribe-phase policy block's
	// message_condition meta-argument, compiled: only the messages for
	// which it is true go to the plugin. Optional. Default: nil, every
	// message.
	MessageCondition *el.Template

	// typeRange is the type label's range, where an unknown type is reported.
	typeRange hcl.Range
}

// Flow is one flow block: its selectors and policies per phase.
type Flow struct {
	// Name is the flow's label.
	Name string
	// Selector is the compiled path, path_operator, methods and condition;
	// the zero Selector (no selector) always runs the flow.
	Selector flow.Selector
	// Range is the flow block's header.
	Range hcl.Range
	// Phases maps a phase name ("request", "response", "publish",
	// "subscribe") to its
	// policies in file order; a phase the flow does not mention has no
	// entry. A rejected response block has none either.
	Phases map[string][]*PluginBlock
}

// Schemas is what the plugin host provides to stage 2: each type's schema,
// and the plugin's own validation.
type Schemas interface {
	// TypeInfo returns a type's description; aliases are resolved by the
	// implementation.
	TypeInfo(kind lifecycle.Kind, typ string) (*pluginv1.TypeInfo, bool)
	// KnownTypes lists the types of a kind, for "did you mean" and "known
	// types" in diagnostics.
	KnownTypes(kind lifecycle.Kind) []string
	// Validate asks the providing plugin whether a decoded block is valid.
	// An error means the plugin could not be asked.
	Validate(ctx context.Context, kind lifecycle.Kind, typ string, configJSON []byte) ([]*pluginv1.Diagnostic, error)
}
