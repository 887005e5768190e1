package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// version is the plugin's own version, reported in its metadata; the build
// sets it with -ldflags "-X main.version=...".
var version = "dev"

// typeName is the entrypoint type operators write in HCL.
const typeName = "sse"

// maxKeptBuffer is the largest framing buffer returned to framingBuffers.
const maxKeptBuffer = 1 << 20

// framingBuffers holds the buffers batches are framed in, shared by every
// stream: an idle stream holds none, which is what lets 10,000 mostly idle
// streams fit in little memory, while a busy one gets a grown buffer back
// and frames without allocating. Conn.Write has marshalled the chunks when it
// returns (sdk/internal/wire documents that encoders alias and the send
// marshals before returning), so the buffer goes back right after.
var framingBuffers = sync.Pool{New: func() any { return new([]byte) }}

// headerLastEventID is where a reconnecting EventSource says what it saw last.
const headerLastEventID = "Last-Event-ID"

// Interface guards: the SSE entrypoint drains its streams with a goaway event.
var (
	_ entrypoint.Entrypoint = (*Plugin)(nil)
	_ lifecycle.Drainer     = (*Plugin)(nil)
)

// Plugin is the SSE entrypoint: it turns a subscription into a
// text/event-stream response, one event per message.
type Plugin struct {
	*instances.Registry[*config]

	// streams counts open streams, so Drain can end them and wait.
	streams instances.Drain

	// newTimer makes the heartbeat timer; tests replace it to fire
	// heartbeats on demand instead of waiting.
	newTimer func(time.Duration) heartbeatTimer

	// metrics are the process's; tests replace them with their own.
	metrics *sseMetrics
}

// New returns an SSE entrypoint with no instances.
func New() *Plugin {
	return &Plugin{
		Registry: instances.New(instances.Options[*config]{
			Types:  []string{typeName},
			Decode: func(b instances.Block) (*config, lifecycle.Diagnostics) { return decodeConfig(b.ConfigJSON) },
		}),
		newTimer: newRealTimer,
		metrics:  processMetrics,
	}
}

// Metadata describes the sse type.
func (p *Plugin) Metadata() lifecycle.Metadata {
	return lifecycle.Metadata{
		Kind:    lifecycle.KindEntrypoint,
		Name:    "entrypoint-sse",
		Version: version,
		Types: []lifecycle.TypeInfo{{
			Name:        typeName,
			Description: "Server-Sent Events: streams subscribed messages as text/event-stream events, resumable with Last-Event-ID.",
			Schema:      configSchema,
			QoS:         supportedQoS,
			Match: &lifecycle.Match{
				Methods:       []string{"GET"},
				Accept:        "text/event-stream",
				CriteriaCount: 2,
			},
			Modes: []string{"subscribe"},
		}},
	}
}

// Drain tells every open stream that the gateway is stopping (`event:
// goaway`), ends it, and waits for them all or ctx's deadline. Clients
// reconnect, with Last-Event-ID, to a gateway that is still running.
func (p *Plugin) Drain(ctx context.Context) error {
	return p.streams.Wait(ctx)
}

// Connect runs one SSE stream:
//
//  1. subscribe, resuming from Last-Event-ID for the at-* QoS levels;
//  2. respond 200 with the event-stream headers and a random `retry:` hint
//     once the endpoint is ready, so a failure to start (an invalid dynamic
//     configuration, say) still reaches the client as a proper error status;
//  3. write each delivered batch as one chunk of events, acknowledging
//     through its last message once written;
//  4. write a heartbeat when nothing was written for the configured interval;
//  5. end on the client leaving, the endpoint ending or failing (an `error`
//     event), or the gateway stopping: a drain or an End with Stopping (a
//     `goaway` event).
func (p *Plugin) Connect(ctx context.Context, open *entrypoint.Open, conn entrypoint.Conn) error {
	cfg, ok := p.Get(open.InstanceID)
	if !ok {
		return fmt.Errorf("sse: instance %q is not configured", open.InstanceID)
	}
	defer p.streams.Open()()
	p.metrics.open.Inc()
	defer p.metrics.open.Dec()
	s := &stream{
		cfg:     cfg,
		conn:    conn,
		metrics: p.metrics,
		format:  eventFormat{headersAsComment: cfg.HeadersAsComment, metadataAsComment: cfg.MetadataAsComment},
	}
	var req *gateway.Request
	if open.Context != nil {
		req = open.Context.Request
	}
	return s.run(ctx, req, p.streams.Draining(), p.newTimer(cfg.Heartbeat))
}

// stream is one client's event stream.
type stream struct {
	cfg       *config
	conn      entrypoint.Conn
	metrics   *sseMetrics
	format    eventFormat
	responded bool
}

var sseHeaders = gateway.Headers{
	"Content-Type":      {"text/event-stream;charset=UTF-8"},
	"Connection":        {"keep-alive"},
	"Cache-Control":     {"no-cache"},
	"X-Accel-Buffering": {"no"},
}

func (s *stream) run(ctx context.Context, req *gateway.Request, draining <-chan struct{}, hb heartbeatTimer) error {
	defer hb.Stop()
	lastID := ""
	if req != nil && (s.cfg.QoS == endpoint.QoSAtMostOnce || s.cfg.QoS == endpoint.QoSAtLeastOnce) {
		lastID = req.Headers.Get(headerLastEventID)
	}
	if err := s.conn.Subscribe(s.cfg.QoS, lastID, 0); err != nil {
		return err
	}
	events := s.conn.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-draining:
			return s.goaway(req)
		case <-hb.C():
			s.metrics.heartbeats.Inc()
			if err := s.write(heartbeat, 0); err != nil {
				return instances.Quiet(ctx, err)
			}
			hb.Reset(s.cfg.Heartbeat)
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			done, err := s.handle(req, ev)
			if err != nil {
				return instances.Quiet(ctx, err)
			}
			if done {
				return nil
			}
			if ev.Kind == entrypoint.Deliver || ev.Kind == entrypoint.Ready {
				hb.Reset(s.cfg.Heartbeat)
			}
		}
	}
}

// handle reacts to one event from the core; done means the stream is over.
func (s *stream) handle(req *gateway.Request, ev entrypoint.Event) (done bool, err error) {
	switch ev.Kind {
	case entrypoint.Ready:
		return false, s.write(nil, 0)
	case entrypoint.Deliver:
		if len(ev.Messages) == 0 {
			return false, nil
		}
		pb := framingBuffers.Get().(*[]byte)
		b := (*pb)[:0]
		var ack uint64
		var messages, failed float64
		for _, m := range ev.Messages {
			if m == nil {
				continue
			}
			if m.Error != nil {
				failed++
			} else {
				messages++
			}
			b = s.format.appendMessage(b, m)
			if m.Tag > ack {
				ack = m.Tag
			}
		}
		// Counted before the write, so a test that sees the write sees
		// the count too.
		s.metrics.events.WithLabelValues("message").Add(messages)
		s.metrics.events.WithLabelValues("error").Add(failed)
		err := s.write(b, ack)
		if cap(b) <= maxKeptBuffer { // one huge batch must not stay pooled
			*pb = b
			framingBuffers.Put(pb)
		}
		return false, err
	case entrypoint.EndpointFailure:
		if !s.responded {
			return true, s.conn.Finish(failureResponse(req, ev.Failure))
		}
		s.metrics.events.WithLabelValues("error").Inc()
		if err := s.write(appendFailure(nil, ev.Failure), 0); err != nil {
			return true, err
		}
		return true, s.conn.Finish(entrypoint.Finish{})
	case entrypoint.End:
		if ev.ClientGone {
			return true, nil
		}
		if ev.Stopping {
			// The core ends streams itself when the gateway stops, before
			// the plugins are drained: the same goaway as a drain.
			return true, s.goaway(req)
		}
		if err := s.write(nil, 0); err != nil {
			return true, err
		}
		return true, s.conn.Finish(entrypoint.Finish{})
	}
	return false, nil
}

// write sends one chunk, responding first if that was not done yet, with the
// retry hint as the stream's first frame. A nil chunk only makes sure the
// response has started.
func (s *stream) write(chunk []byte, ack uint64) error {
	if !s.responded {
		if err := s.conn.Respond(200, sseHeaders, nil); err != nil {
			return err
		}
		s.responded = true
		retry := appendRetry(make([]byte, 0, len(chunk)+16))
		chunk = append(retry, chunk...)
	}
	if len(chunk) == 0 {
		return nil
	}
	return s.conn.Write([][]byte{chunk}, false, ack)
}

// goaway ends the stream for a drain or a stopping gateway: a goaway event,
// or a 503 when nothing was responded yet.
func (s *stream) goaway(req *gateway.Request) error {
	if !s.responded {
		return s.conn.Finish(failureResponse(req, &gateway.Failure{Status: 503, Message: "Stopping, please reconnect", Retriable: true}))
	}
	if err := s.write(goawayEvent, 0); err != nil {
		return err
	}
	return s.conn.Finish(entrypoint.Finish{})
}

// failureResponse renders a failure before the stream started as a whole
// response, in the gateway's failure format.
func failureResponse(req *gateway.Request, f *gateway.Failure) entrypoint.Finish {
	var accept []string
	if req != nil {
		accept = req.Headers.Values("Accept")
	}
	ct, body := httpfailure.FailureBody(accept, f)
	return entrypoint.Finish{
		Status:  httpfailure.Status(f, 500),
		Headers: gateway.Headers{"Content-Type": {ct}},
		Body:    body,
	}
}

// heartbeatTimer is the part of time.Timer the stream uses.
type heartbeatTimer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

type realTimer struct{ t *time.Timer }

func newRealTimer(d time.Duration) heartbeatTimer { return realTimer{time.NewTimer(d)} }

func (r realTimer) C() <-chan time.Time { return r.t.C }

// Reset restarts the countdown; since Go 1.23 no stale tick can be pending.
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }

func (r realTimer) Stop() { r.t.Stop() }
