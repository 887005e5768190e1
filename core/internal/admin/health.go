package admin

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-gw/sluice/core/internal/server"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Endpoint health: the admin listener asks the endpoint plugins that
// announce the "health" feature (Plugin.CheckHealth) in the background
// whether each instance can serve, and /ready, /apis and the
// sluice_endpoint_ready metric read what the last answers said. A request
// to /ready never waits on a plugin, and a plugin that hangs delays
// nothing but its own answer, which has a deadline.
const (
	// DefaultHealthInterval is the time between two health polls while
	// every endpoint is ready.
	DefaultHealthInterval = 2 * time.Second
	// DefaultHealthTimeout bounds each plugin's answer to one poll.
	DefaultHealthTimeout = time.Second
	// healthRetryDivisor: while an endpoint is not ready, polls come this
	// many times as often, so /ready turns back to 200 soon after it
	// recovers.
	healthRetryDivisor = 4
	// healthFailuresTolerated is how many polls in a row a plugin may fail
	// to answer (a deadline missed under load) before its instances count
	// as not ready.
	healthFailuresTolerated = 2
)

// instanceHealth is what a plugin last said about one instance.
type instanceHealth struct {
	ready  bool
	reason string
}

// healthKey addresses an instance: its plugin and its id.
type healthKey struct{ plugin, instance string }

// healthCache holds the endpoint instances' last known health. An instance
// it does not know (never asked yet, or its plugin does not check health)
// is ready.
type healthCache struct {
	mu       sync.RWMutex
	state    map[healthKey]instanceHealth
	failures map[string]int // consecutive failed polls, by plugin
}

func newHealthCache() *healthCache {
	return &healthCache{state: map[healthKey]instanceHealth{}, failures: map[string]int{}}
}

// get returns an instance's health.
func (c *healthCache) get(plugin, instance string) instanceHealth {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if h, ok := c.state[healthKey{plugin, instance}]; ok {
		return h
	}
	return instanceHealth{ready: true}
}

// endpointUse is one endpoint instance an API uses.
type endpointUse struct {
	api string
	ep  *server.EndpointInstance
}

// endpointsInUse lists every endpoint instance of the deployed APIs, the
// first endpoint and the named targets, once each, in a stable order.
func endpointsInUse(s *server.Server) []endpointUse {
	if s == nil {
		return nil
	}
	var out []endpointUse
	for _, api := range s.APIs() {
		seen := map[string]bool{}
		add := func(ep *server.EndpointInstance) {
			if ep == nil || ep.Plugin == nil || seen[ep.InstanceID] {
				return
			}
			seen[ep.InstanceID] = true
			out = append(out, endpointUse{api: api.Name, ep: ep})
		}
		add(api.Endpoint)
		names := make([]string, 0, len(api.Targets))
		for n := range api.Targets {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			add(api.Targets[n])
		}
	}
	return out
}

// PollHealth asks every endpoint plugin in use that checks its instances'
// health, all at once, each with the health timeout as its deadline, and
// records the answers. The background loop started by Serve calls it every
// health interval; it returns once every plugin answered or missed its
// deadline.
func (a *Admin) PollHealth(ctx context.Context) {
	byPlugin := map[string][]endpointUse{}
	refs := map[string]server.PluginRef{}
	for _, u := range endpointsInUse(a.opts.Server) {
		name := u.ep.Plugin.Name()
		byPlugin[name] = append(byPlugin[name], u)
		refs[name] = u.ep.Plugin
	}
	type answer struct {
		plugin string
		asked  bool // false: the plugin is down or does not check health
		resp   *pluginv1.CheckHealth_Response
		err    error
	}
	answers := make(chan answer, len(refs))
	for name, ref := range refs {
		go func() {
			c, err := ref.Clients()
			if err != nil || !ref.Up() || !slices.Contains(c.Features, lifecycle.FeatureHealth) {
				answers <- answer{plugin: name}
				return
			}
			cctx, cancel := context.WithTimeout(ctx, a.opts.HealthTimeout)
			defer cancel()
			resp, err := c.Plugin.CheckHealth(cctx, &pluginv1.CheckHealth_Request{})
			answers <- answer{plugin: name, asked: true, resp: resp, err: err}
		}()
	}
	next := map[healthKey]instanceHealth{}
	c := a.health
	c.mu.RLock()
	failures := map[string]int{}
	for name := range refs {
		failures[name] = c.failures[name]
	}
	c.mu.RUnlock()
	for range refs {
		an := <-answers
		uses := byPlugin[an.plugin]
		switch {
		case !an.asked, status.Code(an.err) == codes.Unimplemented:
			// Ready as far as health goes; a plugin that is down is
			// reported on /ready as such.
			failures[an.plugin] = 0
		case an.err != nil:
			failures[an.plugin]++
			for _, u := range uses {
				k := healthKey{an.plugin, u.ep.InstanceID}
				if failures[an.plugin] > healthFailuresTolerated {
					next[k] = instanceHealth{reason: fmt.Sprintf("plugin %s did not answer the health check: %v", an.plugin, status.Convert(an.err).Message())}
				} else {
					next[k] = c.get(an.plugin, u.ep.InstanceID)
				}
			}
		default:
			failures[an.plugin] = 0
			got := map[string]*pluginv1.CheckHealth_InstanceHealth{}
			for _, i := range an.resp.GetInstances() {
				got[i.GetInstanceId()] = i
			}
			for _, u := range uses {
				if i, ok := got[u.ep.InstanceID]; ok && !i.GetReady() {
					reason := i.GetReason()
					if reason == "" {
						reason = "not ready"
					}
					next[healthKey{an.plugin, u.ep.InstanceID}] = instanceHealth{reason: reason}
				}
			}
		}
	}
	c.mu.Lock()
	c.state, c.failures = next, failures
	c.mu.Unlock()
}

// allReady reports whether the last poll found every endpoint ready.
func (c *healthCache) allReady() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, h := range c.state {
		if !h.ready {
			return false
		}
	}
	return true
}

// runHealth polls until ctx ends: every health interval, or more often
// while an endpoint is not ready.
func (a *Admin) runHealth(ctx context.Context) {
	for {
		wait := a.opts.HealthInterval
		if !a.health.allReady() {
			wait /= healthRetryDivisor
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		a.PollHealth(ctx)
	}
}

// endpointNotReady lists the endpoint instances the last poll found not
// ready, as /ready reasons. Instances of a plugin that is down are left to
// the plugin's own reason.
func (a *Admin) endpointNotReady() []string {
	var reasons []string
	for _, u := range endpointsInUse(a.opts.Server) {
		if !u.ep.Plugin.Up() {
			continue
		}
		if h := a.health.get(u.ep.Plugin.Name(), u.ep.InstanceID); !h.ready {
			reasons = append(reasons, fmt.Sprintf("api %q endpoint %q: %s", u.api, u.ep.Name, h.reason))
		}
	}
	return reasons
}

// endpointReady is whether an endpoint instance can serve, for /apis: its
// plugin is up and the last health poll found it ready.
func (a *Admin) endpointReady(ep *server.EndpointInstance) (bool, string) {
	if ep.Plugin == nil || !ep.Plugin.Up() {
		return false, ""
	}
	h := a.health.get(ep.Plugin.Name(), ep.InstanceID)
	return h.ready, h.reason
}

// endpointReadyDesc is the metric of endpoint readiness.
var endpointReadyDesc = prometheus.NewDesc("sluice_endpoint_ready",
	"1 while an API's endpoint can serve (its plugin is up and, for a plugin that checks health, "+
		"the last check found its backend reachable), else 0.", []string{"api", "endpoint"}, nil)

// endpointCollector exports endpoint readiness at scrape time, so the
// metric is exactly what /ready and /apis say.
type endpointCollector struct{ a *Admin }

// Describe sends the metric's descriptor.
func (c endpointCollector) Describe(ch chan<- *prometheus.Desc) { ch <- endpointReadyDesc }

// Collect reads the deployed endpoints once per scrape.
func (c endpointCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range endpointsInUse(c.a.opts.Server) {
		v := 0.0
		if ready, _ := c.a.endpointReady(u.ep); ready {
			v = 1
		}
		if m, err := prometheus.NewConstMetric(endpointReadyDesc, prometheus.GaugeValue, v, u.api, u.ep.Name); err == nil {
			ch <- m
		}
	}
}
