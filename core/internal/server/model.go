package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-gw/sluice/core/internal/cors"
	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/relay"
)

// PluginRef is the core's view of one supervised plugin process; see
// flow.PluginRef. The plugin host's plugins satisfy it.
//
// It and the instance types below are aliases, so the deployment model reads
// as one thing here while each type lives where it is used.
type PluginRef = flow.PluginRef

// PolicyInstance is one configured policy in a flow phase.
type PolicyInstance = flow.PolicyInstance

// API is one deployed API: what the router, the entrypoint selection and the
// relay need, built by cmd/sluice from the configuration and the
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
	// Targets are the API's endpoints by name, the first one (Endpoint)
	// included: the named targets an entrypoint may publish to (a webhook's
	// dead-letter endpoint). Optional.
	Targets map[string]*EndpointInstance
	// Flows are the API's flows in file order; each request runs the
	// steps of the flows flow.Select picks for it.
	Flows flow.Flows
	// CORS is the API's CORS policy; nil means CORS is off (no preflight
	// answer, no Access-Control-* header).
	CORS *cors.Policy
	// Plans authenticate the API's requests before any plugin is called;
	// nil is keyless.
	Plans *plan.Authenticator
	// MaxRequestBodySize bounds a request body (413 beyond); 0 takes
	// Options.MaxRequestBodySize.
	MaxRequestBodySize int
}

// EntrypointInstance is one configured entrypoint of an API; see
// relay.EntrypointInstance. The server reads its Match to choose it.
type EntrypointInstance = relay.EntrypointInstance

// EndpointInstance is a configured endpoint of an API; see
// relay.EndpointInstance.
type EndpointInstance = relay.EndpointInstance

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
		for name, t := range a.Targets {
			if t == nil || t.Plugin == nil {
				errs = append(errs, fmt.Errorf("api %q: endpoint %q has no plugin", a.Name, name))
			}
		}
		for k, fl := range a.Flows {
			if fl == nil {
				errs = append(errs, fmt.Errorf("api %q: flow #%d is nil", a.Name, k))
				continue
			}
			for _, ph := range []struct {
				phase string
				steps []*PolicyInstance
			}{{flow.PhaseRequest, fl.Request}, {flow.PhaseResponse, fl.Response}, {flow.PhasePublish, fl.Publish}, {flow.PhaseSubscribe, fl.Subscribe}} {
				for j, p := range ph.steps {
					if p == nil || p.Plugin == nil {
						errs = append(errs, fmt.Errorf("api %q: flow %q: %s policy #%d has no plugin", a.Name, fl.Name, ph.phase, j))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
