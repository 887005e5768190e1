package main

import (
	"context"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
)

// connectPost publishes the request body as one message (content = body,
// headers = a copy of the request headers when configured, no id) and
// answers 202 with an empty body once the endpoint accepted it. A publish
// failure answers with the failure's status (503 when it has none) and
// message, as text or as the gateway's JSON failure body.
func (p *Plugin) connectPost(ctx context.Context, cfg *postConfig, req *gateway.Request, conn entrypoint.Conn) error {
	msg := &gateway.Message{Content: req.Body}
	if msg.Content == nil {
		msg.Content = []byte{}
	}
	if cfg.RequestHeadersToMessage {
		msg.Headers = req.Headers.Clone()
	}
	batch, err := conn.Publish([]*gateway.Message{msg})
	if err != nil {
		return instances.Quiet(ctx, err)
	}
	events := conn.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev.Kind {
			case entrypoint.Published:
				if ev.BatchID != batch {
					continue
				}
				if ev.Failure != nil {
					return instances.Quiet(ctx, conn.Finish(failureFinish(req, ev.Failure, 503)))
				}
				return instances.Quiet(ctx, conn.Finish(entrypoint.Finish{Status: 202}))
			case entrypoint.EndpointFailure:
				return instances.Quiet(ctx, conn.Finish(failureFinish(req, ev.Failure, 503)))
			case entrypoint.End:
				if ev.ClientGone {
					return nil
				}
				return instances.Quiet(ctx, conn.Finish(failureFinish(req, &gateway.Failure{
					Status: 503, Message: "The endpoint stopped before accepting the message", Retriable: true,
				}, 503)))
			}
		}
	}
}
