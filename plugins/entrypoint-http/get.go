package main

import (
	"context"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
)

// Query parameters of HTTP GET.
const (
	paramLimit  = "limit"
	paramCursor = "cursor"
)

// connectGet answers one HTTP GET with the next messages:
//
//  1. negotiate the media type from Accept (400 when none is supported) and
//     read `limit` (which can only lower the configured count; 400 when it
//     is not a whole number) and, for the at-* levels, `cursor`;
//  2. subscribe and collect messages until the count is reached, the
//     duration passes, the endpoint ends, or the gateway drains; messages
//     past the count are neither returned nor acknowledged;
//  3. answer 200 with the whole page in one write that acknowledges the
//     last message it holds, so the endpoint commits exactly what the client
//     received.
//
// An endpoint failure before any message answers with the failure's status
// instead (an invalid dynamic configuration is a 500, for instance).
func (p *Plugin) connectGet(ctx context.Context, cfg *getConfig, req *gateway.Request, conn entrypoint.Conn) error {
	mediaType, ok := negotiate(req.Headers.Values("Accept"))
	if !ok {
		return conn.Finish(failureFinish(req, &gateway.Failure{
			Status: 400, Key: "HTTP_GET_UNSUPPORTED_ACCEPT",
			Message: "Unsupported accept header: " + javaList(req.Headers.Values("Accept")),
		}, 400))
	}
	count := cfg.LimitCount
	rawLimit := firstParam(req.Params, paramLimit)
	if rawLimit != "" {
		n, err := strconv.ParseInt(rawLimit, 10, 32)
		if err != nil || n < 0 {
			return conn.Finish(failureFinish(req, &gateway.Failure{
				Status: 400, Key: "HTTP_GET_INVALID_LIMIT",
				Message: "Invalid limit query parameter " + strconv.Quote(rawLimit) + ": expected a whole number of messages, 0 or more",
			}, 400))
		}
		count = min(count, n)
	}
	resumable := cfg.QoS == endpoint.QoSAtMostOnce || cfg.QoS == endpoint.QoSAtLeastOnce
	cursor := ""
	if resumable {
		cursor = firstParam(req.Params, paramCursor)
	}
	pg := &page{limit: rawLimit}
	var ack uint64
	if count > 0 {
		c := collector{count: count, page: pg}
		stop, err := p.collect(ctx, cfg, conn, cursor, &c)
		if stop || err != nil {
			return instances.Quiet(ctx, err)
		}
		if c.failure != nil && len(pg.items) == 0 && pg.err == nil {
			return conn.Finish(failureFinish(req, c.failure, 500))
		}
		if c.failure != nil {
			pg.err = &gateway.Message{Error: c.failure}
		}
		ack = c.ack
		if resumable && len(pg.items) == 0 {
			pg.nextCursor = c.ready
		}
	}
	if n := len(pg.items); n > 0 {
		pg.nextCursor = pg.items[n-1].ID
	} else if resumable && pg.nextCursor == "" {
		// Nothing delivered and no position from the endpoint: the
		// client's own cursor is where it still stands.
		pg.nextCursor = cursor
	}
	// Sized for the contents plus their framing, so the page grows once at most.
	size := 256
	for _, m := range pg.items {
		size += len(m.Content) + len(m.ID) + 64
	}
	body := pageFormat{headersInPayload: cfg.HeadersInPayload, metadataInPayload: cfg.MetadataInPayload}.appendPage(make([]byte, 0, size), mediaType, pg)
	if err := conn.Respond(200, gateway.Headers{"Content-Type": {mediaType}}, nil); err != nil {
		return instances.Quiet(ctx, err)
	}
	if err := conn.Write([][]byte{body}, false, ack); err != nil {
		return instances.Quiet(ctx, err)
	}
	return instances.Quiet(ctx, conn.Finish(entrypoint.Finish{}))
}

// collector gathers one page.
type collector struct {
	count int64
	taken int64
	page  *page
	// ack is the tag of the last message taken.
	ack uint64
	// ready is the endpoint's starting position.
	ready string
	// failure is the endpoint failure that ended collection, if any.
	failure *gateway.Failure
}

// take adds delivered messages until the count is reached; it reports
// whether the page is full. Error messages count towards the limit, as in
// the reference, but only the last one is kept.
func (c *collector) take(msgs []*gateway.Message) bool {
	for _, m := range msgs {
		if c.taken >= c.count {
			return true
		}
		if m == nil {
			continue
		}
		c.taken++
		if m.Tag > c.ack {
			c.ack = m.Tag
		}
		if m.Error != nil {
			c.page.err = m
			continue
		}
		c.page.items = append(c.page.items, m)
	}
	return c.taken >= c.count
}

// collect subscribes and fills c. stop means the exchange is over without a
// response to send (the client left or the core cancelled).
func (p *Plugin) collect(ctx context.Context, cfg *getConfig, conn entrypoint.Conn, cursor string, c *collector) (stop bool, err error) {
	draining := p.exchanges.Draining()
	if err := conn.Subscribe(cfg.QoS, cursor, c.count); err != nil {
		return true, err
	}
	var deadline <-chan time.Time
	if cfg.LimitDurationMs > 0 {
		var cancel func()
		deadline, cancel = p.after(time.Duration(cfg.LimitDurationMs) * time.Millisecond)
		defer cancel()
	}
	events := conn.Events()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-draining:
			return false, nil
		case <-deadline:
			return false, nil
		case ev, ok := <-events:
			if !ok {
				return true, nil
			}
			switch ev.Kind {
			case entrypoint.Ready:
				c.ready = ev.Cursor
			case entrypoint.Deliver:
				if c.take(ev.Messages) {
					return false, nil
				}
			case entrypoint.EndpointFailure:
				c.failure = ev.Failure
				if c.failure == nil {
					c.failure = &gateway.Failure{Status: 500, Message: "The endpoint failed"}
				}
				return false, nil
			case entrypoint.End:
				return ev.ClientGone, nil
			}
		}
	}
}

func firstParam(params map[string][]string, name string) string {
	if v := params[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
