package main

import (
	"context"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
)

// connectPost publishes the request body as one message (content = body,
// headers = a copy of the request headers when configured, no id). The core
// answers 202 with an empty body once the endpoint accepted it, or the
// publish failure with its status (503 when it has none) in the gateway's
// failure format: nothing is left for the entrypoint to do, so the exchange
// costs one round trip to this plugin.
func (p *Plugin) connectPost(ctx context.Context, cfg *postConfig, req *gateway.Request, conn entrypoint.Conn) error {
	msg := &gateway.Message{Content: req.Body}
	if msg.Content == nil {
		msg.Content = []byte{}
	}
	if cfg.RequestHeadersToMessage {
		msg.Headers = req.Headers.Clone()
	}
	return instances.Quiet(ctx, conn.PublishThenFinish([]*gateway.Message{msg}, entrypoint.Finish{Status: 202}))
}
