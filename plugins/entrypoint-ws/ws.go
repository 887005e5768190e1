package main

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// version is the plugin's own version, reported in its metadata; the build
// sets it with -ldflags "-X main.version=...".
var version = "dev"

// typeName is the entrypoint type operators write in HCL.
const typeName = "websocket"

// WebSocket close codes (RFC 6455 section 7.4) and the reference's reasons.
const (
	closeNormal        = 1000
	closeInternalError = 1011
	closeTryAgainLater = 1013
	// maxReasonBytes is the most a close frame's reason may hold: a control
	// frame carries at most 125 bytes, two of which are the code.
	maxReasonBytes = 123
)

// Publishing bounds. One batch is in flight at a time; frames that arrive
// meanwhile wait in a queue and go out together as the next batch, which
// keeps their order and batches them naturally under load.
const (
	// maxBatchMessages and maxBatchBytes cut the queue into batches that
	// stay well under the gRPC message limit.
	maxBatchMessages = 1024
	maxBatchBytes    = 4 << 20
)

// maxQueuedBytes bounds what one client may have waiting while the endpoint
// is slower than it: past it the socket is closed with 1013, rather than
// letting memory grow with the backlog. A variable so tests can lower it.
var maxQueuedBytes = 32 << 20

// Interface guards: the WebSocket entrypoint drains its sockets with 1013.
var (
	_ entrypoint.Entrypoint = (*Plugin)(nil)
	_ lifecycle.Drainer     = (*Plugin)(nil)
)

// Plugin is the WebSocket entrypoint: client messages are published, and
// subscribed messages are sent to the client as binary messages.
type Plugin struct {
	*instances.Registry[*config]

	// sockets counts open sockets, so Drain can close them and wait.
	sockets instances.Drain

	// metrics are the process's; tests replace them with their own.
	metrics *wsMetrics
}

// New returns a WebSocket entrypoint with no instances.
func New() *Plugin {
	return &Plugin{Registry: instances.New(instances.Options[*config]{
		Types:  []string{typeName},
		Decode: func(b instances.Block) (*config, lifecycle.Diagnostics) { return decodeConfig(b.ConfigJSON) },
	}), metrics: processMetrics}
}

// Metadata describes the websocket type.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindEntrypoint,
		Name:    "entrypoint-ws",
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Description: "WebSocket: publishes every client message and sends every subscribed message as a binary message.",
			Schema:      configSchema,
			QoS:         supportedQoS,
			Match:       &lifecycle.Match{WebSocket: true, CriteriaCount: 4},
			Modes:       []string{"publish", "subscribe"},
			// The core reads client frames only as far as this plugin
			// grants, so a client publishing faster than the endpoint
			// accepts is held back by TCP rather than disconnected.
			Capabilities: []string{entrypoint.CapabilityInboundCredit},
		}},
	}
}

// Drain closes every socket with 1013 "Try Again Later", after publishing
// what its client already sent, and waits for them all or ctx's deadline.
func (p *Plugin) Drain(ctx context.Context) error {
	return p.sockets.Wait(ctx)
}

// Connect runs one WebSocket session (the core has completed the upgrade):
//
//  1. subscribe when the subscriber is enabled;
//  2. publish each client message as one message (content only), one batch
//     in flight at a time, queueing what arrives meanwhile;
//  3. send each delivered message as one binary message, acknowledging the
//     batch once written;
//  4. close 1011 with the failure's text on a publish failure, an error
//     message or an endpoint failure; 1000 "Bye" when the subscription ends;
//     1013 "Try Again Later" on drain; return when the client leaves.
func (p *Plugin) Connect(ctx context.Context, open *entrypoint.Open, conn entrypoint.Conn) error {
	cfg, ok := p.Get(open.InstanceID)
	if !ok {
		return fmt.Errorf("websocket: instance %q is not configured", open.InstanceID)
	}
	defer p.sockets.Open()()
	p.metrics.open.Inc()
	defer p.metrics.open.Dec()
	s := &session{cfg: cfg, conn: conn, metrics: p.metrics}
	return s.run(ctx, p.sockets.Draining())
}

// session is one client socket.
type session struct {
	cfg     *config
	conn    entrypoint.Conn
	metrics *wsMetrics

	// inFlight is the id of the publish batch awaiting its result, 0 when
	// none is.
	inFlight uint64
	// inFlightBytes is the content size of the batch in flight, granted
	// back to the core as inbound credit once it is published.
	inFlightBytes int
	// queue holds client messages waiting for the batch in flight.
	queue       []*gateway.Message
	queuedBytes int
	// closing, once set, is sent when the last queued message is published.
	closing *entrypoint.Finish
}

func (s *session) run(ctx context.Context, draining <-chan struct{}) error {
	if s.cfg.Subscriber {
		if err := s.conn.Subscribe(s.cfg.QoS, "", 0); err != nil {
			return err
		}
	}
	events := s.conn.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-draining:
			draining = nil // handled once; keep publishing what is queued
			if done, err := s.closeAfterPublishing(entrypoint.Finish{CloseCode: closeTryAgainLater, Reason: "Try Again Later"}); done {
				return instances.Quiet(ctx, err)
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			done, err := s.handle(ev)
			if done || err != nil {
				return instances.Quiet(ctx, err)
			}
		}
	}
}

// handle reacts to one event from the core; done means the session is over.
func (s *session) handle(ev entrypoint.Event) (done bool, err error) {
	switch ev.Kind {
	case entrypoint.Inbound:
		if !s.cfg.Publisher || s.closing != nil {
			return false, nil
		}
		for _, f := range ev.Frames {
			s.queue = append(s.queue, &gateway.Message{Content: f.Data})
			s.queuedBytes += len(f.Data)
		}
		if s.queuedBytes > maxQueuedBytes {
			return true, s.conn.Finish(entrypoint.Finish{CloseCode: closeTryAgainLater, Reason: "Try Again Later: the endpoint is slower than this client"})
		}
		return false, s.publishNext()
	case entrypoint.Published:
		if ev.BatchID != s.inFlight {
			return false, nil
		}
		s.inFlight = 0
		if err := s.conn.GrantInbound(s.inFlightBytes); err != nil {
			return true, err
		}
		s.inFlightBytes = 0
		if ev.Failure != nil {
			return true, s.conn.Finish(closeWith(closeInternalError, ev.Failure.Message))
		}
		if len(s.queue) > 0 {
			return false, s.publishNext()
		}
		if s.closing != nil {
			return true, s.conn.Finish(*s.closing)
		}
	case entrypoint.Deliver:
		if !s.cfg.Subscriber {
			return false, nil
		}
		return s.deliver(ev.Messages)
	case entrypoint.EndpointFailure:
		msg := "Server error"
		if ev.Failure != nil && ev.Failure.Message != "" {
			msg = ev.Failure.Message
		}
		return true, s.conn.Finish(closeWith(closeInternalError, msg))
	case entrypoint.End:
		if ev.ClientGone {
			if s.inFlight == 0 && len(s.queue) == 0 {
				return true, nil
			}
			// Nothing reaches the client any more, but what it sent
			// before it closed (or vanished) is still published, in
			// order, until a failure; the close is for no one.
			s.closing = &entrypoint.Finish{CloseCode: closeNormal, Reason: "Bye"}
			return false, nil
		}
		if ev.Stopping {
			// The gateway is stopping (docs/behaviour.md 5.4): the client should
			// reconnect, as after a drain. The core closes with the code
			// given here, and picks 1013 itself only for a session that
			// ends without a Finish.
			return s.closeAfterPublishing(entrypoint.Finish{CloseCode: closeTryAgainLater, Reason: "Try Again Later"})
		}
		return s.closeAfterPublishing(entrypoint.Finish{CloseCode: closeNormal, Reason: "Bye"})
	}
	return false, nil
}

// deliver writes one binary message per data message. An error message ends
// the session with 1011 and its text, after the messages before it.
func (s *session) deliver(msgs []*gateway.Message) (done bool, err error) {
	chunks := make([][]byte, 0, len(msgs))
	var ack uint64
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if m.Error != nil {
			if len(chunks) > 0 {
				s.metrics.written.Add(float64(len(chunks)))
				if err := s.conn.Write(chunks, false, ack); err != nil {
					return true, err
				}
			}
			return true, s.conn.Finish(closeWith(closeInternalError, errorText(m)))
		}
		chunks = append(chunks, m.Content)
		if m.Tag > ack {
			ack = m.Tag
		}
	}
	if len(chunks) == 0 {
		return false, nil
	}
	// Counted before the write, so a test that sees the write sees the
	// count too.
	s.metrics.written.Add(float64(len(chunks)))
	return false, s.conn.Write(chunks, false, ack)
}

// publishNext publishes the head of the queue when no batch is in flight.
func (s *session) publishNext() error {
	if s.inFlight != 0 || len(s.queue) == 0 {
		return nil
	}
	n, size := 0, 0
	for n < len(s.queue) && n < maxBatchMessages {
		if n > 0 && size+len(s.queue[n].Content) > maxBatchBytes {
			break
		}
		size += len(s.queue[n].Content)
		n++
	}
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	s.queuedBytes -= size
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	id, err := s.conn.Publish(batch)
	if err != nil {
		return err
	}
	s.inFlight = id
	// Each frame costs its length plus one in inbound credit, so empty
	// frames are bounded too.
	s.inFlightBytes = size + n
	return nil
}

// closeAfterPublishing closes the socket with f, at once when nothing is
// waiting to be published, or once the queue is published.
func (s *session) closeAfterPublishing(f entrypoint.Finish) (done bool, err error) {
	if s.inFlight == 0 && len(s.queue) == 0 {
		return true, s.conn.Finish(f)
	}
	if s.closing == nil {
		s.closing = &f
	}
	return false, nil
}

// closeWith builds a close with reason cut to what a close frame can hold,
// at a character boundary.
func closeWith(code int, reason string) entrypoint.Finish {
	if len(reason) > maxReasonBytes {
		cut := maxReasonBytes
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return entrypoint.Finish{CloseCode: code, Reason: reason}
}

// errorText is what an error message tells the client: the failure's text,
// or the content when the failure has none.
func errorText(m *gateway.Message) string {
	if m.Error != nil && m.Error.Message != "" {
		return m.Error.Message
	}
	return string(m.Content)
}
