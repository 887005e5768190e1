package plugintest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/policy"
	"github.com/sluice-gw/sluice/sdk/schema"
)

// base implements the lifecycle for the fakes: one type whose config has a
// "prefix" that must not be "bad".
type base struct {
	kind  lifecycle.Kind
	typ   lifecycle.TypeInfo
	mu    sync.Mutex
	confs map[string]string // instance id -> prefix
}

type fakeConfig struct {
	Prefix string `json:"prefix"`
}

func (b *base) Metadata() lifecycle.Metadata {
	t := b.typ
	t.Schema = schema.Schema{Attributes: []schema.Attribute{{Name: "prefix", Type: schema.String, Default: "p"}}}
	return lifecycle.Metadata{Kind: b.kind, Name: string(b.kind) + "-fake", Version: "0.0.1", Types: []lifecycle.TypeInfo{t}}
}

func (b *base) decode(raw []byte, d *lifecycle.Diagnostics) fakeConfig {
	var c fakeConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		d.Errorf(nil, "invalid JSON: %v", err)
		return c
	}
	if c.Prefix == "bad" {
		*d = append(*d, lifecycle.Diagnostic{Severity: lifecycle.Error, Summary: "prefix is bad", Detail: "use another", Path: []string{"prefix"}})
	}
	if c.Prefix == "" {
		*d = append(*d, lifecycle.Diagnostic{Severity: lifecycle.Warning, Summary: "prefix is empty"})
	}
	return c
}

func (b *base) Validate(_ context.Context, req *lifecycle.ValidateRequest, resp *lifecycle.ValidateResponse) {
	if req.Type != b.typ.Name {
		resp.Diagnostics.Errorf(nil, "unknown type %q", req.Type)
		return
	}
	b.decode(req.ConfigJSON, &resp.Diagnostics)
}

func (b *base) Configure(_ context.Context, req *lifecycle.ConfigureRequest, resp *lifecycle.ConfigureResponse) {
	c := b.decode(req.ConfigJSON, &resp.Diagnostics)
	if resp.Diagnostics.HasErrors() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.confs == nil {
		b.confs = map[string]string{}
	}
	b.confs[req.InstanceID] = req.APIID + "/" + c.Prefix
}

func (b *base) Unconfigure(_ context.Context, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.confs, id)
}

func (b *base) conf(id string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.confs[id]
	return c, ok
}

// echoEndpoint keeps what is published and replays it to subscribers.
type echoEndpoint struct {
	base
	logMu sync.Mutex
	log   []*gateway.Message

	// block, when set, holds publishes of content "block" until closed.
	block chan struct{}
	// acks receives every tag read from Subscription.Acks.
	acks chan uint64
	// subscribeDone receives what ended each Subscribe: "ctx" or "acks closed".
	subscribeDone chan string
	drained       chan struct{}
}

var _ endpoint.Endpoint = (*echoEndpoint)(nil)
var _ lifecycle.Drainer = (*echoEndpoint)(nil)

func newEcho() *echoEndpoint {
	return &echoEndpoint{
		base:          base{kind: lifecycle.KindEndpoint, typ: lifecycle.TypeInfo{Name: "echo", QoS: []string{"auto"}, Modes: []string{"publish", "subscribe"}}},
		block:         make(chan struct{}),
		acks:          make(chan uint64, 16),
		subscribeDone: make(chan string, 4),
		drained:       make(chan struct{}, 1),
	}
}

func (e *echoEndpoint) Publish(ctx context.Context, req *endpoint.PublishRequest) error {
	if _, ok := e.conf(req.InstanceID); !ok {
		return &gateway.Failure{Status: 500, Key: "FAILURE_ENDPOINT_CONFIGURATION_INVALID", Message: "unknown instance " + req.InstanceID, RequestLevel: true}
	}
	for _, m := range req.Messages {
		switch string(m.Content) {
		case "boom":
			return errors.New("secret internal detail")
		case "block":
			select {
			case <-e.block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	e.logMu.Lock()
	defer e.logMu.Unlock()
	for _, m := range req.Messages {
		m.SetAttribute("api", req.Context.APIID)
		e.log = append(e.log, m)
	}
	return nil
}

func (e *echoEndpoint) Subscribe(ctx context.Context, req *endpoint.SubscribeRequest, sub endpoint.Subscription) error {
	if req.QoS == "fail" {
		return &gateway.Failure{Status: 503, Key: "FAILURE_ENDPOINT_UNAVAILABLE", Message: "no " + req.LastID, Retriable: true}
	}
	if req.QoS == "error" {
		return errors.New("secret internal detail")
	}
	if req.QoS == "batch-first" {
		return sub.Send([]*gateway.Message{{Content: []byte("early")}})
	}
	e.logMu.Lock()
	batch := make([]*gateway.Message, len(e.log))
	for i, m := range e.log {
		c := *m
		c.Tag = uint64(i + 1)
		c.ID = fmt.Sprint(i)
		batch[i] = &c
	}
	e.logMu.Unlock()
	if err := sub.Ready(fmt.Sprintf("cursor-%d-%s", len(batch), req.Context.Request.ClientIdentifier)); err != nil {
		return err
	}
	if req.QoS == "end" {
		return nil
	}
	if err := sub.Send(batch); err != nil {
		return err
	}
	for {
		select {
		case tag, ok := <-sub.Acks():
			if !ok {
				e.subscribeDone <- "acks closed"
				return nil
			}
			e.acks <- tag
		case <-ctx.Done():
			// The acks channel closes too once the stream is gone.
			for range sub.Acks() {
			}
			e.subscribeDone <- "ctx"
			return nil
		}
	}
}

func (e *echoEndpoint) Drain(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("no deadline")
	}
	e.drained <- struct{}{}
	return nil
}

// sseEntrypoint responds, subscribes, writes what it is given and publishes
// inbound frames.
type sseEntrypoint struct {
	base
	done chan string
}

var _ entrypoint.Entrypoint = (*sseEntrypoint)(nil)

func newSSE() *sseEntrypoint {
	return &sseEntrypoint{
		base: base{kind: lifecycle.KindEntrypoint, typ: lifecycle.TypeInfo{
			Name:  "sse",
			Match: &lifecycle.Match{Methods: []string{"GET"}, Accept: "text/event-stream", CriteriaCount: 2},
		}},
		done: make(chan string, 4),
	}
}

func (s *sseEntrypoint) Connect(ctx context.Context, open *entrypoint.Open, conn entrypoint.Conn) error {
	switch open.InstanceID {
	case "whole":
		return conn.Respond(201, gateway.Headers{"Content-Type": {"application/json"}}, []byte(`{"path":"`+open.Context.Request.Path+`"}`))
	case "error":
		return &gateway.Failure{Status: 502, Key: "FAILURE_X", Message: "cannot"}
	case "plain-error":
		return errors.New("plain")
	}
	if err := conn.Respond(200, gateway.Headers{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}, nil); err != nil {
		return err
	}
	if err := conn.Subscribe("at-least-once", open.Context.Request.Headers.Get("Last-Event-ID"), 5); err != nil {
		return err
	}
	for {
		var ev entrypoint.Event
		var ok bool
		select {
		case ev, ok = <-conn.Events():
		case <-ctx.Done():
			s.done <- "ctx"
			return nil
		}
		if !ok {
			s.done <- "events closed"
			return conn.Finish(entrypoint.Finish{Reason: "events closed"})
		}
		var err error
		switch ev.Kind {
		case entrypoint.Ready:
			err = conn.Write([][]byte{[]byte("retry: 1000\n\n"), []byte(": " + ev.Cursor + "\n\n")}, false, 0)
		case entrypoint.Deliver:
			var chunks [][]byte
			var last uint64
			for _, m := range ev.Messages {
				chunks = append(chunks, []byte("id: "+m.ID+"\ndata: "+string(m.Content)+"\n\n"))
				last = m.Tag
			}
			err = conn.Write(chunks, false, last)
		case entrypoint.Inbound:
			msgs := make([]*gateway.Message, len(ev.Frames))
			for i, f := range ev.Frames {
				msgs[i] = &gateway.Message{Content: bytes.ToUpper(f.Data), Headers: gateway.Headers{"Text": {fmt.Sprint(f.Text)}}}
			}
			_, err = conn.Publish(msgs)
		case entrypoint.Published:
			if ev.Failure != nil {
				err = conn.Write([][]byte{[]byte(fmt.Sprintf("batch %d failed: %s", ev.BatchID, ev.Failure.Key))}, true, 0)
			} else {
				err = conn.Write([][]byte{[]byte(fmt.Sprintf("batch %d ok", ev.BatchID))}, true, 0)
			}
		case entrypoint.EndpointFailure:
			return conn.Finish(entrypoint.Finish{Status: ev.Failure.Status, Body: []byte(ev.Failure.Message)})
		case entrypoint.End:
			s.done <- fmt.Sprintf("end client_gone=%v", ev.ClientGone)
			return conn.Finish(entrypoint.Finish{CloseCode: 1000, Reason: "Bye"})
		}
		if err != nil {
			return err
		}
	}
}

// attrPolicy sets attributes and upper-cases messages.
type attrPolicy struct {
	base
}

var _ policy.Policy = (*attrPolicy)(nil)

func newPolicy() *attrPolicy {
	return &attrPolicy{base{kind: lifecycle.KindPolicy, typ: lifecycle.TypeInfo{
		Name:   "assign",
		Phases: []string{policy.PhaseRequest, policy.PhasePublish, policy.PhaseSubscribe},
	}}}
}

func (p *attrPolicy) OnRequest(_ context.Context, in *policy.RequestPhase, out *policy.RequestResult) error {
	if in.Phase == policy.PhaseResponse {
		// Echo what the response phase received, so a test sees it crossed
		// the wire both ways.
		out.SetAttributes = map[string]any{"phase": in.Phase, "upstream": in.ResponseHeaders.Get("X-Up")}
		out.SetHeaders = gateway.Headers{"X-Status": {strconv.Itoa(in.ResponseStatus)}}
		out.RemoveHeaders = []string{"X-Up"}
		return nil
	}
	h := in.Context.Request.Headers
	if h.Get("X-Deny") != "" {
		out.Interrupt = &gateway.Failure{Status: 401, Key: "DENIED", Message: "denied"}
		return nil
	}
	if h.Get("X-Boom") != "" {
		return errors.New("secret internal detail")
	}
	prefix, _ := p.conf(in.InstanceID)
	out.SetAttributes = map[string]any{
		"seen":      prefix + ":" + h.Get("X-In"),
		"count":     in.Context.Attribute("count"),
		"remove-me": nil,
	}
	return nil
}

func (p *attrPolicy) OnMessages(_ context.Context, in *policy.MessagesPhase) ([]*gateway.Message, error) {
	var out []*gateway.Message
	for _, m := range in.Messages {
		switch string(m.Content) {
		case "interrupt":
			return nil, &gateway.Failure{Status: 412, Key: "PRECONDITION", Message: "no"}
		case "boom":
			return nil, errors.New("secret internal detail")
		case "drop":
			continue
		}
		m.Content = bytes.ToUpper(m.Content)
		m.SetAttribute("phase", in.Phase)
		out = append(out, m)
	}
	return out, nil
}
