package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// PluginRef is the core's view of one supervised plugin process; see
// flow.PluginRef. The plugin host's plugins satisfy it.
type PluginRef = flow.PluginRef

// PolicyInstance is one configured policy in a flow phase.
type PolicyInstance = flow.PolicyInstance

// API is one deployed API: what the router, the entrypoint selection and the
// exchange engine need, built by cmd/sluice from the configuration and the
// plugin host. Every instance must already be configured in its plugin.
type API struct {
	// Name is the API block's name; it is the api_id plugins see.
	Name string
	// ContextPath is the path prefix the API serves (e.g. "/demo"). It is
	// matched on path-segment boundaries; a trailing slash is ignored.
	ContextPath string
	// Entrypoints are the API's entrypoints, in declaration order (which
	// breaks ties between equal match counts).
	Entrypoints []*EntrypointInstance
	// Endpoint is the API's endpoint; nil means the API cannot publish or
	// subscribe.
	Endpoint *EndpointInstance
	// Flows are the API's policies, per phase, in execution order.
	Flows Flows
	// CORS is the API's CORS policy; nil means CORS is off (no preflight
	// answer, no Access-Control-* header).
	CORS *CORS
	// Plans authenticate the API's requests before any plugin is called;
	// nil is keyless.
	Plans *plan.Authenticator
	// MaxRequestBodySize bounds a request body (413 beyond); 0 takes
	// Options.MaxRequestBodySize.
	MaxRequestBodySize int
}

// Flows are an API's policies per phase, in execution order (flow blocks in
// declaration order, policies within a block in order).
type Flows struct {
	// Request runs once per request, before the entrypoint is connected.
	Request []*PolicyInstance
	// Response is not supported by protocol v1 (it has no response-phase
	// call); Deploy rejects APIs that declare any.
	Response []*PolicyInstance
	// Publish runs on every batch a client publishes.
	Publish []*PolicyInstance
	// Subscribe runs on every batch delivered to a client.
	Subscribe []*PolicyInstance
}

// EntrypointInstance is one configured entrypoint of an API.
type EntrypointInstance struct {
	// Type is the entrypoint type (e.g. "sse").
	Type string
	// InstanceID addresses the configured instance in the plugin.
	InstanceID string
	// Plugin is the process serving the type.
	Plugin PluginRef
	// Match is the type's match criteria from its metadata. An entrypoint
	// without one is never chosen for an HTTP request (e.g. webhook).
	Match *pluginv1.Match
}

// EndpointInstance is the configured endpoint of an API.
type EndpointInstance struct {
	// Type is the endpoint type (e.g. "kafka").
	Type string
	// Name is the endpoint block's name (e.g. "default").
	Name string
	// InstanceID addresses the configured instance in the plugin.
	InstanceID string
	// Plugin is the process serving the type.
	Plugin PluginRef
	// QoS are the levels the endpoint type serves; a subscription asking for
	// another level fails. Empty means any.
	QoS []string
}

// normalizeContextPath gives a context path one spelling: a leading slash, no
// trailing slash, "/" for the root.
func normalizeContextPath(p string) string {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// validate reports everything wrong with a deployment at once.
func validate(apis []*API) error {
	var errs []error
	names := map[string]bool{}
	paths := map[string]string{}
	for i, a := range apis {
		if a == nil {
			errs = append(errs, fmt.Errorf("api #%d is nil", i))
			continue
		}
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("api #%d has no name", i))
		} else if names[a.Name] {
			errs = append(errs, fmt.Errorf("api %q is declared twice", a.Name))
		}
		names[a.Name] = true
		cp := normalizeContextPath(a.ContextPath)
		if other, ok := paths[cp]; ok {
			errs = append(errs, fmt.Errorf("api %q: context path %q is already used by api %q; give each API its own context_path", a.Name, cp, other))
		} else {
			paths[cp] = a.Name
		}
		if len(a.Entrypoints) == 0 {
			errs = append(errs, fmt.Errorf("api %q has no entrypoint; declare at least one entrypoint block", a.Name))
		}
		for j, e := range a.Entrypoints {
			if e == nil || e.Plugin == nil {
				errs = append(errs, fmt.Errorf("api %q: entrypoint #%d has no plugin", a.Name, j))
			}
		}
		if a.Endpoint != nil && a.Endpoint.Plugin == nil {
			errs = append(errs, fmt.Errorf("api %q: endpoint %q has no plugin", a.Name, a.Endpoint.Name))
		}
		if len(a.Flows.Response) > 0 {
			errs = append(errs, fmt.Errorf("api %q: response-phase policies are not supported by plugin protocol v1; move them to the request, publish or subscribe phase", a.Name))
		}
		for phase, ps := range map[string][]*PolicyInstance{
			flow.PhaseRequest: a.Flows.Request, flow.PhasePublish: a.Flows.Publish, flow.PhaseSubscribe: a.Flows.Subscribe,
		} {
			for j, p := range ps {
				if p == nil || p.Plugin == nil {
					errs = append(errs, fmt.Errorf("api %q: %s policy #%d has no plugin", a.Name, phase, j))
				}
			}
		}
	}
	return errors.Join(errs...)
}
