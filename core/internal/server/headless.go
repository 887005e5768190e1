package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/core/internal/relay"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// HeadlessSpec is an exchange the core opens itself, with no client socket:
// a push subscription. It goes through the same steps as a request (flow
// selection, request phase, the entrypoint's Connect stream, the endpoint
// subscription and acknowledgements); only the socket is missing.
type HeadlessSpec struct {
	// API is the deployed API's name.
	API string
	// Entrypoint is the entrypoint type that runs the exchange (webhook).
	Entrypoint string
	// ID is the subscription id. It is the client identifier, so the
	// endpoint's consumer group: the same subscription on several gateways
	// shares its partitions.
	ID string
	// Plan is the plan type the subscription belongs to (push).
	Plan string
	// Subscription is the subscription block as JSON, sent in Open.
	Subscription []byte
	// OnWrite, when set, receives the chunks of each Write before its
	// acknowledgement is sent: what the entrypoint frames, with no client
	// to send it to (a webhook writes one delivery report per chunk).
	OnWrite func(chunks [][]byte)
}

// OpenHeadless opens a headless exchange on the deployed API spec.API. It
// fails when the API or its entrypoint is not deployed, or when the plugin
// is down or the request phase refused it.
func (s *Server) OpenHeadless(spec HeadlessSpec) (*relay.Headless, error) {
	var api *API
	for _, a := range s.dep.Load().apis {
		if a.Name == spec.API {
			api = a
			break
		}
	}
	if api == nil {
		return nil, fmt.Errorf("api %q is not deployed", spec.API)
	}
	var ep *EntrypointInstance
	for _, e := range api.Entrypoints {
		if e.Type == spec.Entrypoint {
			ep = e
			break
		}
	}
	if ep == nil {
		return nil, fmt.Errorf("api %q has no %s entrypoint", spec.API, spec.Entrypoint)
	}
	if spec.Subscription == nil {
		spec.Subscription = []byte("{}")
	}
	// The plan.Identity of a request that the plan accepted for subscription
	// spec.ID, with no remote address and no headers.
	id := plan.Identify("", spec.ID, plan.NewRequestID(), "", spec.ID).WithPlan(plan.Result{Plan: spec.Plan, Subscription: spec.ID})
	req := &pluginv1.Request{
		Id:               id.RequestID,
		TransactionId:    id.TransactionID,
		ClientIdentifier: id.ClientID,
		Path:             normalizeContextPath(api.ContextPath),
		ContextPath:      normalizeContextPath(api.ContextPath),
		PathInfo:         "/",
	}
	pctx := &pluginv1.Context{ApiId: api.Name, Request: req, Attributes: id.Attributes(api.Name)}
	sel := flow.Select(api.Flows, pctx)
	req.PathParams = sel.PathParams
	if len(sel.Request) > 0 {
		cctx, cancel := context.WithTimeout(s.base, s.opts.PluginCallTimeout)
		f := s.flows.OnRequest(cctx, sel.Request, pctx)
		cancel()
		if f != nil {
			return nil, errors.New(flow.Normalize(f).GetMessage())
		}
	}
	x, f := s.relay.Open(relay.Request{
		API: api.Name, Entrypoint: ep, Endpoint: api.Endpoint, Targets: api.Targets,
		Context: pctx, Accept: []string{"application/json"}, Flows: sel, Subscription: spec.Subscription,
	})
	if f != nil {
		return nil, errors.New(flow.Normalize(f).GetMessage())
	}
	return x.ServeHeadless(spec.OnWrite), nil
}
