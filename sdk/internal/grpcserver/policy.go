package grpcserver

import (
	"context"
	"log/slog"

	"github.com/sluice-gw/sluice/sdk/internal/wire"
	"github.com/sluice-gw/sluice/sdk/policy"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

type policyServer struct {
	pluginv1.UnimplementedPolicyServer
	po  policy.Policy
	log *slog.Logger
}

// OnRequest runs the request or the response phase (the request's phase
// field says which). A *gateway.Failure error becomes the
// interrupt; any other error, or attributes that cannot be encoded, a 500
// interrupt.
func (ps *policyServer) OnRequest(ctx context.Context, req *pluginv1.OnRequest_Request) (*pluginv1.OnRequest_Response, error) {
	var out policy.RequestResult
	if err := ps.po.OnRequest(ctx, wire.RequestPhaseFromWire(req), &out); err != nil {
		if f := failureOf(err, &policyUnknown, ps.log, "on request"); f != nil {
			return &pluginv1.OnRequest_Response{Interrupt: f}, nil
		}
	}
	resp, err := wire.RequestResultToWire(&out)
	if err != nil {
		return &pluginv1.OnRequest_Response{Interrupt: failureOf(err, &policyUnknown, ps.log, "on request")}, nil
	}
	return resp, nil
}

// OnMessages serves the multiplexed message-phase stream like Publish: one
// goroutine and one response per batch.
func (ps *policyServer) OnMessages(stream pluginv1.Policy_OnMessagesServer) error {
	return serveBatches(stream.Context(), stream.Recv, stream.Send, func(ctx context.Context, req *pluginv1.OnMessages_Request) *pluginv1.OnMessages_Response {
		resp := &pluginv1.OnMessages_Response{BatchId: req.GetBatchId()}
		msgs, err := ps.po.OnMessages(ctx, wire.MessagesPhaseFromWire(req))
		if err != nil {
			if f := failureOf(err, &policyUnknown, ps.log, "on messages"); f != nil {
				resp.Interrupt = f
				return resp
			}
		}
		if resp.Messages, err = wire.MessagesToWire(msgs); err != nil {
			resp.Messages = nil
			resp.Interrupt = failureOf(err, &policyUnknown, ps.log, "on messages")
		}
		return resp
	})
}
