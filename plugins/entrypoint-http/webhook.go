package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/sdk/endpoint"
	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/serve"
)

// Failures a webhook ends its subscription with (docs/behaviour.md 5.5), and the
// header that carries the key to the gateway (a headless exchange's final
// response is read by the gateway, which keeps an interrupted subscription
// stopped).
const (
	keyUnreachable     = "WEBHOOK_UNREACHABLE"
	msgUnreachable     = "Webhook callback url is unreachable"
	keyProcessing      = "MESSAGE_PROCESSING_FAILED"
	msgProcessing      = "Error occurred during message processing"
	keyInvalid         = "FAILURE_SUBSCRIPTION_INVALID"
	headerFailureKey   = "Sluice-Failure-Key"
	headerClientIdent  = "X-Gravitee-Client-Identifier"
	maxDrainedResponse = 64 << 10
)

// Headers of a dead letter, saying why it is one.
const (
	headerDLQSubscription = "X-Sluice-Dlq-Subscription"
	headerDLQStatus       = "X-Sluice-Dlq-Status"
	headerDLQAttempts     = "X-Sluice-Dlq-Attempts"
	headerDLQError        = "X-Sluice-Dlq-Error"
	attrRecordKey         = "gravitee.attribute.kafka.recordKey"
)

// Delivery report outcomes (the gateway's push package reads them).
const (
	outcomeDelivered    = "delivered"
	outcomeFailed       = "failed"
	outcomeDeadLettered = "dead-lettered"
	outcomeSkipped      = "skipped"
)

// report is one delivery report, written as one chunk: a headless exchange
// has no client, so what it writes is read by the gateway, which turns it
// into metrics and the subscription's state.
type report struct {
	Outcome    string  `json:"outcome"`
	Attempt    int     `json:"attempt,omitempty"`
	Status     int     `json:"status,omitempty"`
	DurationMs float64 `json:"duration_ms,omitempty"`
	LagMs      float64 `json:"lag_ms,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// connectWebhook runs one push subscription. The gateway opens the exchange
// itself, with the subscription in open.Subscription; a client's request
// routed here is refused with 404.
//
//  1. subscribe with the instance's QoS (the consumer group is the client
//     identifier, which the gateway sets to the subscription id);
//  2. POST every delivered message to the callback: body = content, headers
//     = the client identifier, the subscription's credentials, the message's
//     headers, then the subscription's headers, the first of a name winning.
//     Under at-most-once and at-least-once, messages of one partition go one
//     at a time and in order, partitions in parallel up to
//     max_concurrent_connections; under none and auto, any message may go
//     in parallel;
//  3. acknowledge the delivered prefix of each batch (Write ack_through),
//     so at-least-once commits only what a callback answered 2xx to;
//  4. retry a failed attempt (no answer, 5xx, 408, 429) as the retry block
//     says; after the last one publish the message to the dlq endpoint and
//     go on, or, without a dlq, stop (WEBHOOK_UNREACHABLE, or
//     MESSAGE_PROCESSING_FAILED for another status) unless the interrupt
//     options say to skip the message.
func (p *Plugin) connectWebhook(ctx context.Context, cfg *webhookConfig, open *entrypoint.Open, conn entrypoint.Conn) error {
	if len(open.Subscription) == 0 {
		req := &gateway.Request{}
		if open.Context != nil && open.Context.Request != nil {
			req = open.Context.Request
		}
		// A client's HTTP request, routed here because the API has no
		// other entrypoint for it: it must not start a subscription.
		return instances.Quiet(ctx, conn.Finish(failureFinish(req, &gateway.Failure{
			Status: 404, Message: "No entrypoint matches the incoming request",
		}, 404)))
	}
	sub, diags := decodeSubscription(open.Subscription)
	if diags.HasErrors() {
		return instances.Quiet(ctx, conn.Finish(failureEnd(&gateway.Failure{Status: 500, Key: keyInvalid,
			Message: "invalid push subscription: " + diags.Err().Error()})))
	}
	w := &webhook{cfg: cfg, sub: sub, conn: conn, pending: map[uint64]chan *gateway.Failure{}, wake: make(chan struct{}, 1)}
	if open.Context != nil && open.Context.Request != nil {
		w.clientID = open.Context.Request.ClientIdentifier
	}
	w.client = cfg.newClient(sub.tls)
	defer w.client.CloseIdleConnections()
	if sub.Auth.Type == authOAuth2 {
		w.tokens = &tokenSource{auth: sub.Auth, client: w.client, timeout: cfg.ConnectTimeout + cfg.ReadTimeout}
	}
	if err := conn.Subscribe(cfg.QoS, "", 0); err != nil {
		return instances.Quiet(ctx, err)
	}

	// Events are read by their own goroutine so that an End, an endpoint
	// failure or a dead letter's publish result is seen while a batch is
	// being delivered (which may wait between attempts for a long time).
	//
	// A batch that arrives meanwhile waits here until the delivery loop
	// takes it, and the stream is not read further: that is the
	// backpressure. Except while a dead letter waits for its publish
	// result: the result comes after the batches the endpoint sent
	// meanwhile, so they are read and held until it arrives (otherwise
	// the delivery loop waits for the result and this goroutine for the
	// delivery loop, for ever).
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	batches := make(chan []*gateway.Message)
	var endMu sync.Mutex
	var endFailure *gateway.Failure
	ended := false
	go func() {
		defer stop()
		events := conn.Events()
		var held [][]*gateway.Message
		for {
			var out chan<- []*gateway.Message
			var head []*gateway.Message
			in := events
			if len(held) > 0 {
				out, head = batches, held[0]
				if !w.awaitingPublish() {
					in = nil
				}
			}
			var ev entrypoint.Event
			select {
			case out <- head:
				held[0] = nil
				held = held[1:]
				continue
			case <-w.wake:
				continue
			case <-dctx.Done():
				return
			case e, ok := <-in:
				if !ok {
					return
				}
				ev = e
			}
			switch ev.Kind {
			case entrypoint.Deliver:
				held = append(held, ev.Messages)
			case entrypoint.Published:
				w.published(ev.BatchID, ev.Failure)
			case entrypoint.EndpointFailure, entrypoint.End:
				endMu.Lock()
				ended, endFailure = true, ev.Failure
				if ev.Kind == entrypoint.EndpointFailure && endFailure == nil {
					endFailure = &gateway.Failure{Status: 500, Message: "The endpoint failed"}
				}
				endMu.Unlock()
				return
			}
		}
	}()
	finish := func() error {
		endMu.Lock()
		f, e := endFailure, ended
		endMu.Unlock()
		if ctx.Err() != nil || (!e && f == nil) {
			return nil
		}
		if f != nil {
			return instances.Quiet(ctx, conn.Finish(failureEnd(f)))
		}
		return instances.Quiet(ctx, conn.Finish(entrypoint.Finish{}))
	}
	for {
		select {
		case <-p.exchanges.Draining():
			stop()
			return instances.Quiet(ctx, conn.Finish(entrypoint.Finish{}))
		case <-dctx.Done():
			return finish()
		case msgs := <-batches:
			ack, reports, failure := w.deliverBatch(dctx, msgs)
			if ack > 0 || len(reports) > 0 {
				if err := w.write(reports, ack); err != nil {
					return instances.Quiet(ctx, err)
				}
			}
			if failure != nil {
				if dctx.Err() != nil {
					return finish()
				}
				return instances.Quiet(ctx, conn.Finish(failureEnd(failure)))
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
	h := gateway.Headers{"Content-Type": {"text/plain"}}
	if f.Key != "" {
		h[headerFailureKey] = []string{f.Key}
	}
	return entrypoint.Finish{Status: status, Headers: h, Body: []byte(f.Message)}
}

// webhook is one subscription's delivery state.
type webhook struct {
	cfg      *webhookConfig
	sub      *subscriptionConfig
	client   *http.Client
	tokens   *tokenSource
	clientID string
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	connMu  sync.Mutex // entrypoint.Conn is used by one goroutine at a time
	conn    entrypoint.Conn
	pending map[uint64]chan *gateway.Failure
	// wake tells the event reader that a dead letter now waits for its
	// publish result, so it reads on past a batch it holds.
	wake chan struct{}
}

// awaitingPublish reports whether a dead letter waits for its publish
// result.
func (w *webhook) awaitingPublish() bool {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	return len(w.pending) > 0
}

// write sends reports and an acknowledgement in one Write.
func (w *webhook) write(reports []report, ack uint64) error {
	chunks := make([][]byte, 0, len(reports))
	for _, r := range reports {
		b, _ := json.Marshal(r)
		chunks = append(chunks, b)
	}
	w.connMu.Lock()
	defer w.connMu.Unlock()
	return w.conn.Write(chunks, false, ack)
}

// result is what became of one message.
type result struct {
	done    bool // delivered, dead-lettered or skipped
	reports []report
	failure *gateway.Failure
}

// deliverBatch posts a batch and returns the tag through which every message
// was dealt with (the prefix of the batch), the reports to send with it, and
// the failure that stopped the subscription, if any.
func (w *webhook) deliverBatch(ctx context.Context, msgs []*gateway.Message) (ack uint64, reports []report, failure *gateway.Failure) {
	results := make([]result, len(msgs))
	ordered := w.cfg.QoS == endpoint.QoSAtMostOnce || w.cfg.QoS == endpoint.QoSAtLeastOnce
	// Lanes run in parallel; the messages of one lane go one at a time, in
	// order: one lane per partition for the at-* levels, one per message
	// otherwise.
	var lanes [][]int
	if ordered {
		byPartition := map[string]int{}
		for i, m := range msgs {
			k := partitionKey(m)
			j, ok := byPartition[k]
			if !ok {
				j = len(lanes)
				byPartition[k] = j
				lanes = append(lanes, nil)
			}
			lanes[j] = append(lanes[j], i)
		}
	} else {
		for i := range msgs {
			lanes = append(lanes, []int{i})
		}
	}
	sem := make(chan struct{}, max(w.cfg.MaxConnections, 1))
	var wg sync.WaitGroup
	for _, lane := range lanes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, i := range lane {
				results[i] = w.deliver(ctx, msgs[i])
				if !results[i].done {
					return // the rest of the partition waits
				}
			}
		}()
	}
	wg.Wait()
	prefix := true
	for i, r := range results {
		reports = append(reports, r.reports...)
		if !r.done {
			prefix = false
			if failure == nil && r.failure != nil {
				failure = r.failure
			}
			continue
		}
		if prefix && msgs[i] != nil && msgs[i].Tag > ack {
			ack = msgs[i].Tag
		}
	}
	return ack, reports, failure
}

// partitionKey names the partition a message came from.
func partitionKey(m *gateway.Message) string {
	if m == nil {
		return ""
	}
	return fmt.Sprint(m.Metadata["topic"], "/", m.Metadata["partition"])
}

// retriable reports whether a failed attempt is worth another.
func retriable(status int, err error) bool {
	return err != nil || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// deliver posts one message, retrying as configured. Failed attempts are
// reported at once (the subscription is then visibly retrying); the final
// outcome is returned with the batch's acknowledgement.
func (w *webhook) deliver(ctx context.Context, m *gateway.Message) result {
	if m == nil {
		return result{done: true}
	}
	if m.Error != nil {
		f := *m.Error
		if f.Message == "" {
			f.Message = string(m.Content)
		}
		return result{failure: &f}
	}
	cancelled := result{failure: &gateway.Failure{Status: 503, Message: "The subscription was cancelled", Retriable: true}}
	attempts := max(w.sub.Retry.MaxAttempts, 1)
	var status, n int
	var err error
	for n = 1; ; n++ {
		start := time.Now()
		status, err = w.post(ctx, m)
		dur := float64(time.Since(start).Microseconds()) / 1000
		if err == nil && status >= 200 && status < 300 {
			return result{done: true, reports: []report{{Outcome: outcomeDelivered, Attempt: n, Status: status, DurationMs: dur, LagMs: lagMs(m)}}}
		}
		if ctx.Err() != nil {
			return cancelled
		}
		rep := report{Outcome: outcomeFailed, Attempt: n, Status: status, DurationMs: dur, Error: attemptError(status, err)}
		_ = w.write([]report{rep}, 0)
		if n >= attempts || !retriable(status, err) {
			break
		}
		if w.wait(ctx, w.sub.Retry.delay(n)) != nil {
			return cancelled
		}
	}
	if w.sub.DLQ != "" {
		if f := w.deadLetter(ctx, m, status, err, n); f != nil {
			if ctx.Err() != nil {
				return cancelled
			}
			return result{failure: f}
		}
		return result{done: true, reports: []report{{Outcome: outcomeDeadLettered, Attempt: n, Status: status}}}
	}
	skipped := result{done: true, reports: []report{{Outcome: outcomeSkipped, Attempt: n, Status: status}}}
	switch {
	case err != nil:
		serve.Logger().Warn("webhook callback unreachable", "callback", w.sub.CallbackURL, "error", err.Error())
		if !w.cfg.InterruptOnException {
			return skipped
		}
		return result{failure: &gateway.Failure{Status: 502, Key: keyUnreachable, Message: msgUnreachable + ": " + err.Error()}}
	case status >= 500:
		serve.Logger().Warn("webhook callback failed", "callback", w.sub.CallbackURL, "status", status)
		if !w.cfg.InterruptOnServerError {
			return skipped
		}
		return result{failure: &gateway.Failure{Status: status, Key: keyUnreachable, Message: fmt.Sprintf("%s (status %d)", msgUnreachable, status)}}
	default:
		serve.Logger().Warn("webhook callback rejected a message", "callback", w.sub.CallbackURL, "status", status)
		return result{failure: &gateway.Failure{Status: 500, Key: keyProcessing, Message: fmt.Sprintf("%s (callback status %d)", msgProcessing, status)}}
	}
}

func attemptError(status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return "callback answered " + strconv.Itoa(status)
}

// lagMs is how old a message is, from its Kafka timestamp.
func lagMs(m *gateway.Message) float64 {
	var ts float64
	switch v := m.Metadata["sourceTimestamp"].(type) {
	case float64:
		ts = v
	case int64:
		ts = float64(v)
	case int:
		ts = float64(v)
	default:
		return 0
	}
	return max(float64(time.Now().UnixMilli())-ts, 0)
}

// deadLetter publishes a message that exhausted its attempts to the dlq
// endpoint, with headers saying why, and waits for the result.
func (w *webhook) deadLetter(ctx context.Context, m *gateway.Message, status int, cause error, attempts int) *gateway.Failure {
	tp, ok := w.conn.(entrypoint.TargetPublisher)
	if !ok {
		return &gateway.Failure{Status: 500, Key: keyProcessing, Message: "this gateway cannot publish to a dlq endpoint (protocol v1.2 needed)"}
	}
	h := gateway.Headers{}
	for k, v := range m.Headers {
		h[k] = append([]string(nil), v...)
	}
	h[headerDLQSubscription] = []string{w.clientID}
	h[headerDLQStatus] = []string{strconv.Itoa(status)}
	h[headerDLQAttempts] = []string{strconv.Itoa(attempts)}
	h[headerDLQError] = []string{attemptError(status, cause)}
	dead := &gateway.Message{Content: m.Content, Headers: h}
	if k, ok := m.Metadata["key"].(string); ok && k != "" {
		// Same key, same partition order in the dead-letter topic.
		dead.Attributes = map[string]any{attrRecordKey: k}
	}
	w.connMu.Lock()
	id, err := tp.PublishTo(w.sub.DLQ, []*gateway.Message{dead})
	var ch chan *gateway.Failure
	if err == nil {
		ch = make(chan *gateway.Failure, 1)
		w.pending[id] = ch
	}
	w.connMu.Unlock()
	if err != nil {
		return &gateway.Failure{Status: 500, Key: keyProcessing, Message: "dlq publish: " + err.Error()}
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case f := <-ch:
		if f != nil {
			serve.Logger().Warn("dlq publish failed", "endpoint", w.sub.DLQ, "error", f.Message)
			return &gateway.Failure{Status: 500, Key: keyProcessing, Message: "dlq endpoint " + w.sub.DLQ + ": " + f.Message}
		}
		return nil
	case <-ctx.Done():
		return &gateway.Failure{Status: 503, Message: "The subscription was cancelled", Retriable: true}
	}
}

// published hands a publish result to the dead letter waiting for it.
func (w *webhook) published(id uint64, f *gateway.Failure) {
	w.connMu.Lock()
	ch := w.pending[id]
	delete(w.pending, id)
	w.connMu.Unlock()
	if ch != nil {
		ch <- f
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.sub.CallbackURL, bytes.NewReader(m.Content))
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
	// The subscription's credentials come before the message's headers,
	// so a record cannot replace them.
	switch a := w.sub.Auth; a.Type {
	case authBasic:
		req.SetBasicAuth(a.Username, a.Password)
	case authToken:
		add("Authorization", "Bearer "+a.Token)
	case authOAuth2:
		tok, err := w.tokens.token(ctx)
		if err != nil {
			return 0, fmt.Errorf("oauth2 token: %w", err)
		}
		add("Authorization", "Bearer "+tok)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		if req.Header.Values(name) == nil && validHeader(name) {
			for _, v := range m.Headers[name] {
				if validValue(v) {
					req.Header.Add(name, v)
				}
			}
		}
	}
	for _, h := range w.sub.Headers {
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
	if resp.StatusCode == http.StatusUnauthorized && w.tokens != nil {
		// The token may have been revoked: fetch a new one next time.
		w.tokens.invalidate()
	}
	return resp.StatusCode, nil
}

// tokenSource gets and caches OAuth2 client-credentials tokens.
type tokenSource struct {
	auth    authConfig
	client  *http.Client
	timeout time.Duration

	mu      sync.Mutex
	value   string
	expires time.Time
}

func (t *tokenSource) invalidate() {
	t.mu.Lock()
	t.value = ""
	t.mu.Unlock()
}

// token returns the cached token, or a new one once it is about to expire.
// The lock is held while fetching, so concurrent deliveries wait for one
// request rather than each asking for a token.
func (t *tokenSource) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.value != "" && time.Now().Before(t.expires) {
		return t.value, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {t.auth.ClientID}, "client_secret": {t.auth.Secret}}
	if len(t.auth.Scopes) > 0 {
		form.Set("scope", strings.Join(t.auth.Scopes, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.auth.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("token endpoint answered %d", resp.StatusCode)
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", errors.New("token endpoint answered no access_token")
	}
	ttl := time.Hour
	if s := strings.Trim(string(tr.ExpiresIn), `"`); s != "" {
		if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 {
			ttl = time.Duration(n * float64(time.Second))
		}
	}
	// Renew a little early, so a token does not expire in flight.
	t.value, t.expires = tr.AccessToken, time.Now().Add(ttl-min(ttl/10, 30*time.Second))
	return t.value, nil
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
