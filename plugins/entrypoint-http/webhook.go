package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Failures a webhook ends its subscription with (docs/behaviour.md 5.5).
const (
	keyUnreachable     = "WEBHOOK_UNREACHABLE"
	msgUnreachable     = "Webhook callback url is unreachable"
	keyProcessing      = "MESSAGE_PROCESSING_FAILED"
	msgProcessing      = "Error occurred during message processing"
	headerClientIdent  = "X-Gravitee-Client-Identifier"
	maxDrainedResponse = 64 << 10
)

// connectWebhook runs one webhook subscription (the gateway opens the
// exchange; no client request is involved):
//
//  1. subscribe;
//  2. POST every delivered message to the callback, body = content, headers =
//     the client identifier, then the message's headers, then the configured
//     ones, the first of a name winning; up to max_concurrent_connections at
//     once for none/auto, one at a time for the at-* levels;
//  3. acknowledge through the last message of the batch once every POST of
//     it got a 2xx (a partial failure acknowledges the delivered prefix);
//  4. on a 5xx or no response (after the retries), stop with
//     WEBHOOK_UNREACHABLE and the callback's status (502 when none); on any
//     other status, stop with MESSAGE_PROCESSING_FAILED 500. Either can be
//     turned into skipping the message instead. An error message or an
//     endpoint failure stops the subscription with that failure.
func (p *Plugin) connectWebhook(ctx context.Context, cfg *webhookConfig, gctx *gateway.Context, conn entrypoint.Conn) error {
	w := &webhook{cfg: cfg, client: cfg.client}
	if gctx != nil && gctx.Request != nil {
		if gctx.Request.Method != "" {
			// A client's HTTP request, routed here because the API has no
			// other entrypoint for it: it must not start a subscription.
			return quiet(ctx, conn.Finish(failureFinish(gctx.Request, &gateway.Failure{
				Status: 404, Message: "No entrypoint matches the incoming request",
			}, 404)))
		}
		w.clientID = gctx.Request.ClientIdentifier
	}
	if w.client == nil {
		var err error
		if w.client, err = cfg.newClient(); err != nil {
			return err
		}
	}
	if err := conn.Subscribe(cfg.QoS, "", 0); err != nil {
		return quiet(ctx, err)
	}
	events := conn.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.draining:
			return quiet(ctx, conn.Finish(entrypoint.Finish{}))
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev.Kind {
			case entrypoint.Deliver:
				ack, failure := w.deliverBatch(ctx, ev.Messages)
				if ack > 0 {
					if err := conn.Write(nil, false, ack); err != nil {
						return quiet(ctx, err)
					}
				}
				if failure != nil {
					if ctx.Err() != nil {
						return nil
					}
					return quiet(ctx, conn.Finish(failureEnd(failure)))
				}
			case entrypoint.EndpointFailure:
				return quiet(ctx, conn.Finish(failureEnd(ev.Failure)))
			case entrypoint.End:
				if ev.ClientGone {
					return nil
				}
				return quiet(ctx, conn.Finish(entrypoint.Finish{}))
			}
		}
	}
}

// failureEnd reports why a subscription stopped.
func failureEnd(f *gateway.Failure) entrypoint.Finish {
	if f == nil {
		f = &gateway.Failure{Status: 500, Message: "The endpoint failed"}
	}
	status := f.Status
	if status <= 0 {
		status = 500
	}
	return entrypoint.Finish{
		Status:  status,
		Headers: gateway.Headers{"Content-Type": {"text/plain"}},
		Body:    []byte(f.Message),
	}
}

// webhook is one subscription's delivery state.
type webhook struct {
	cfg      *webhookConfig
	client   *http.Client
	clientID string
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// deliverBatch posts a batch and returns the tag through which every message
// was delivered (or skipped), and the failure that stopped it, if any.
func (w *webhook) deliverBatch(ctx context.Context, msgs []*gateway.Message) (ack uint64, failure *gateway.Failure) {
	results := make([]*gateway.Failure, len(msgs))
	if w.cfg.MaxConnections <= 1 || len(msgs) == 1 {
		for i, m := range msgs {
			if results[i] = w.deliver(ctx, m); results[i] != nil {
				results = results[:i+1]
				break
			}
		}
	} else {
		sem := make(chan struct{}, w.cfg.MaxConnections)
		var wg sync.WaitGroup
		for i, m := range msgs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				results[i] = w.deliver(ctx, m)
			}()
		}
		wg.Wait()
	}
	for i, f := range results {
		if f != nil {
			return ack, f
		}
		if m := msgs[i]; m != nil && m.Tag > ack {
			ack = m.Tag
		}
	}
	return ack, nil
}

// deliver posts one message, retrying as configured; nil means delivered or
// skipped by configuration.
func (w *webhook) deliver(ctx context.Context, m *gateway.Message) *gateway.Failure {
	if m == nil {
		return nil
	}
	if m.Error != nil {
		f := *m.Error
		if f.Message == "" {
			f.Message = string(m.Content)
		}
		return &f
	}
	attempts := max(w.cfg.Retry.MaxAttempts, 1)
	var status int
	var err error
	for n := 1; ; n++ {
		status, err = w.post(ctx, m)
		if err == nil && status >= 200 && status < 300 {
			return nil
		}
		if ctx.Err() != nil {
			return &gateway.Failure{Status: 503, Message: "The subscription was cancelled", Retriable: true}
		}
		retriable := err != nil || status >= 500
		if !retriable || n >= attempts {
			break
		}
		if w.wait(ctx, w.cfg.Retry.delay(n)) != nil {
			return &gateway.Failure{Status: 503, Message: "The subscription was cancelled", Retriable: true}
		}
	}
	switch {
	case err != nil:
		serve.Logger().Warn("webhook callback unreachable", "callback", w.cfg.CallbackURL, "error", err.Error())
		if !w.cfg.InterruptOnException {
			return nil
		}
		return &gateway.Failure{Status: 502, Key: keyUnreachable, Message: msgUnreachable, Retriable: true}
	case status >= 500:
		serve.Logger().Warn("webhook callback failed", "callback", w.cfg.CallbackURL, "status", status)
		if !w.cfg.InterruptOnServerError {
			return nil
		}
		return &gateway.Failure{Status: status, Key: keyUnreachable, Message: msgUnreachable, Retriable: true}
	default:
		serve.Logger().Warn("webhook callback rejected a message", "callback", w.cfg.CallbackURL, "status", status)
		return &gateway.Failure{Status: 500, Key: keyProcessing, Message: msgProcessing}
	}
}

func (w *webhook) wait(ctx context.Context, d time.Duration) error {
	if w.sleep != nil {
		return w.sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post sends one attempt and returns the callback's status.
func (w *webhook) post(ctx context.Context, m *gateway.Message) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.ConnectTimeout+w.cfg.ReadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.CallbackURL, bytes.NewReader(m.Content))
	if err != nil {
		return 0, err
	}
	add := func(name, value string) {
		if req.Header.Values(name) == nil {
			req.Header[http.CanonicalHeaderKey(name)] = []string{value}
		}
	}
	if w.clientID != "" {
		add(headerClientIdent, w.clientID)
	}
	for _, name := range sortedKeys(m.Headers) {
		if req.Header.Values(name) == nil && validHeader(name) {
			for _, v := range m.Headers[name] {
				if validValue(v) {
					req.Header.Add(name, v)
				}
			}
		}
	}
	for _, h := range w.cfg.Headers {
		if validHeader(h[0]) && validValue(h[1]) {
			add(h[0], h[1])
		}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read a little of the body so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainedResponse))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// validHeader skips names net/http would refuse (Kafka headers can be
// anything) and the ones the transport owns.
func validHeader(name string) bool {
	if name == "" || strings.ContainsAny(name, " \t\r\n:") {
		return false
	}
	switch http.CanonicalHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding", "Connection", "Host":
		return false
	}
	return true
}

// validValue skips values that would split the header (net/http refuses
// them and the whole delivery would fail).
func validValue(v string) bool {
	return !strings.ContainsAny(v, "\r\n\x00")
}
