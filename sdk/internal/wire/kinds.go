package wire

import (
	"fmt"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/policy"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// PublishRequestToWire converts one batch to publish.
func PublishRequestToWire(batchID uint64, req *endpoint.PublishRequest) (*pluginv1.Publish_Request, error) {
	c, err := ContextToWire(req.Context)
	if err != nil {
		return nil, err
	}
	msgs, err := MessagesToWire(req.Messages)
	if err != nil {
		return nil, err
	}
	return &pluginv1.Publish_Request{BatchId: batchID, InstanceId: req.InstanceID, Context: c, Messages: msgs}, nil
}

// PublishRequestFromWire converts one batch to publish.
func PublishRequestFromWire(w *pluginv1.Publish_Request) *endpoint.PublishRequest {
	return &endpoint.PublishRequest{
		InstanceID: w.GetInstanceId(),
		Context:    ContextFromWire(w.GetContext()),
		Messages:   MessagesFromWire(w.GetMessages()),
	}
}

// SubscribeStartToWire converts the start of a subscription.
func SubscribeStartToWire(req *endpoint.SubscribeRequest) (*pluginv1.Subscribe_Start, error) {
	c, err := ContextToWire(req.Context)
	if err != nil {
		return nil, err
	}
	return &pluginv1.Subscribe_Start{
		InstanceId: req.InstanceID,
		Context:    c,
		Qos:        req.QoS,
		LastId:     req.LastID,
		Limit:      req.Limit,
	}, nil
}

// SubscribeStartFromWire converts the start of a subscription.
func SubscribeStartFromWire(w *pluginv1.Subscribe_Start) *endpoint.SubscribeRequest {
	return &endpoint.SubscribeRequest{
		InstanceID: w.GetInstanceId(),
		Context:    ContextFromWire(w.GetContext()),
		QoS:        w.GetQos(),
		LastID:     w.GetLastId(),
		Limit:      w.GetLimit(),
	}
}

// OpenToWire converts the opening of an exchange into its Connect request.
func OpenToWire(o *entrypoint.Open) (*pluginv1.Connect_Request, error) {
	c, err := ContextToWire(o.Context)
	if err != nil {
		return nil, err
	}
	return &pluginv1.Connect_Request{Kind: &pluginv1.Connect_Request_Open{
		Open: &pluginv1.Connect_Open{InstanceId: o.InstanceID, Context: c, SubscriptionJson: o.Subscription},
	}}, nil
}

// OpenFromWire converts the opening of an exchange.
func OpenFromWire(w *pluginv1.Connect_Open) *entrypoint.Open {
	return &entrypoint.Open{InstanceID: w.GetInstanceId(), Context: ContextFromWire(w.GetContext()), Subscription: w.GetSubscriptionJson()}
}

// EventToWire converts an event for an entrypoint into its Connect request.
func EventToWire(ev entrypoint.Event) (*pluginv1.Connect_Request, error) {
	r := &pluginv1.Connect_Request{}
	switch ev.Kind {
	case entrypoint.Inbound:
		frames := make([]*pluginv1.Connect_Frame, len(ev.Frames))
		for i, f := range ev.Frames {
			frames[i] = &pluginv1.Connect_Frame{Data: f.Data, Text: f.Text}
		}
		r.Kind = &pluginv1.Connect_Request_Inbound{Inbound: &pluginv1.Connect_Inbound{Frames: frames}}
	case entrypoint.Deliver:
		msgs, err := MessagesToWire(ev.Messages)
		if err != nil {
			return nil, err
		}
		r.Kind = &pluginv1.Connect_Request_Deliver{Deliver: &pluginv1.Connect_Deliver{Messages: msgs}}
	case entrypoint.Published:
		r.Kind = &pluginv1.Connect_Request_Published{Published: &pluginv1.Connect_Published{
			BatchId: ev.BatchID, Failure: FailureToWire(ev.Failure),
		}}
	case entrypoint.Ready:
		r.Kind = &pluginv1.Connect_Request_Ready{Ready: &pluginv1.Connect_Ready{Cursor: ev.Cursor}}
	case entrypoint.EndpointFailure:
		f := FailureToWire(ev.Failure)
		if f == nil {
			return nil, fmt.Errorf("endpoint failure event without a failure")
		}
		r.Kind = &pluginv1.Connect_Request_EndpointFailure{EndpointFailure: f}
	case entrypoint.End:
		r.Kind = &pluginv1.Connect_Request_End{End: &pluginv1.Connect_End{ClientGone: ev.ClientGone, Stopping: ev.Stopping}}
	default:
		return nil, fmt.Errorf("unknown event kind %d", ev.Kind)
	}
	return r, nil
}

// EventFromWire converts a Connect request into an event. It reports false
// for requests that are not events: Open, and kinds this SDK does not know
// (sent by a newer core), which the caller skips.
func EventFromWire(w *pluginv1.Connect_Request) (entrypoint.Event, bool) {
	switch k := w.GetKind().(type) {
	case *pluginv1.Connect_Request_Inbound:
		fs := k.Inbound.GetFrames()
		frames := make([]entrypoint.Frame, len(fs))
		for i, f := range fs {
			frames[i] = entrypoint.Frame{Data: f.GetData(), Text: f.GetText()}
		}
		return entrypoint.Event{Kind: entrypoint.Inbound, Frames: frames}, true
	case *pluginv1.Connect_Request_Deliver:
		return entrypoint.Event{Kind: entrypoint.Deliver, Messages: MessagesFromWire(k.Deliver.GetMessages())}, true
	case *pluginv1.Connect_Request_Published:
		return entrypoint.Event{
			Kind:    entrypoint.Published,
			BatchID: k.Published.GetBatchId(),
			Failure: FailureFromWire(k.Published.GetFailure()),
		}, true
	case *pluginv1.Connect_Request_Ready:
		return entrypoint.Event{Kind: entrypoint.Ready, Cursor: k.Ready.GetCursor()}, true
	case *pluginv1.Connect_Request_EndpointFailure:
		f := FailureFromWire(k.EndpointFailure)
		if f == nil {
			f = &gateway.Failure{}
		}
		return entrypoint.Event{Kind: entrypoint.EndpointFailure, Failure: f}, true
	case *pluginv1.Connect_Request_End:
		return entrypoint.Event{Kind: entrypoint.End, ClientGone: k.End.GetClientGone(), Stopping: k.End.GetStopping()}, true
	}
	return entrypoint.Event{}, false
}

// RespondToWire converts a response's status, headers and body.
func RespondToWire(status int, headers gateway.Headers, body []byte) *pluginv1.Connect_Respond {
	return &pluginv1.Connect_Respond{Status: int32(status), Headers: HeadersToWire(headers), Body: body}
}

// FinishToWire converts the end of an exchange. The final response is set
// when f.Status is.
func FinishToWire(f entrypoint.Finish) *pluginv1.Connect_Finish {
	w := &pluginv1.Connect_Finish{CloseCode: int32(f.CloseCode), Reason: f.Reason}
	if f.Status != 0 {
		w.Respond = RespondToWire(f.Status, f.Headers, f.Body)
	}
	return w
}

// FinishFromWire converts the end of an exchange.
func FinishFromWire(w *pluginv1.Connect_Finish) entrypoint.Finish {
	f := entrypoint.Finish{CloseCode: int(w.GetCloseCode()), Reason: w.GetReason()}
	if r := w.GetRespond(); r != nil {
		f.Status = int(r.GetStatus())
		f.Headers = HeadersFromWire(r.GetHeaders())
		f.Body = r.GetBody()
	}
	return f
}

// RequestPhaseToWire converts the input of OnRequest.
func RequestPhaseToWire(in *policy.RequestPhase) (*pluginv1.OnRequest_Request, error) {
	c, err := ContextToWire(in.Context)
	if err != nil {
		return nil, err
	}
	return &pluginv1.OnRequest_Request{
		InstanceId:      in.InstanceID,
		Context:         c,
		Phase:           in.Phase,
		ResponseStatus:  int32(in.ResponseStatus),
		ResponseHeaders: HeadersToWire(in.ResponseHeaders),
	}, nil
}

// RequestPhaseFromWire converts the input of OnRequest. An empty phase is
// the request phase: cores before v1.3 send none.
func RequestPhaseFromWire(w *pluginv1.OnRequest_Request) *policy.RequestPhase {
	phase := w.GetPhase()
	if phase == "" {
		phase = policy.PhaseRequest
	}
	return &policy.RequestPhase{
		InstanceID:      w.GetInstanceId(),
		Phase:           phase,
		Context:         ContextFromWire(w.GetContext()),
		ResponseStatus:  int(w.GetResponseStatus()),
		ResponseHeaders: HeadersFromWire(w.GetResponseHeaders()),
	}
}

// RequestResultToWire converts the output of OnRequest. A nil attribute value
// is sent as null, which removes the attribute.
func RequestResultToWire(out *policy.RequestResult) (*pluginv1.OnRequest_Response, error) {
	attrs, err := MapToWire(out.SetAttributes)
	if err != nil {
		return nil, fmt.Errorf("set attribute %w", err)
	}
	return &pluginv1.OnRequest_Response{
		SetAttributes: attrs,
		Interrupt:     FailureToWire(out.Interrupt),
		SetHeaders:    HeadersToWire(out.SetHeaders),
		RemoveHeaders: out.RemoveHeaders,
	}, nil
}

// RequestResultFromWire converts the output of OnRequest.
func RequestResultFromWire(w *pluginv1.OnRequest_Response) *policy.RequestResult {
	return &policy.RequestResult{
		SetAttributes: MapFromWire(w.GetSetAttributes()),
		Interrupt:     FailureFromWire(w.GetInterrupt()),
		SetHeaders:    HeadersFromWire(w.GetSetHeaders()),
		RemoveHeaders: w.GetRemoveHeaders(),
	}
}

// MessagesPhaseToWire converts the input of OnMessages.
func MessagesPhaseToWire(batchID uint64, in *policy.MessagesPhase) (*pluginv1.OnMessages_Request, error) {
	c, err := ContextToWire(in.Context)
	if err != nil {
		return nil, err
	}
	msgs, err := MessagesToWire(in.Messages)
	if err != nil {
		return nil, err
	}
	return &pluginv1.OnMessages_Request{
		BatchId:    batchID,
		InstanceId: in.InstanceID,
		Phase:      in.Phase,
		Context:    c,
		Messages:   msgs,
	}, nil
}

// MessagesPhaseFromWire converts the input of OnMessages.
func MessagesPhaseFromWire(w *pluginv1.OnMessages_Request) *policy.MessagesPhase {
	return &policy.MessagesPhase{
		InstanceID: w.GetInstanceId(),
		Phase:      w.GetPhase(),
		Context:    ContextFromWire(w.GetContext()),
		Messages:   MessagesFromWire(w.GetMessages()),
	}
}
