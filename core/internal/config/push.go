package config

import (
	"fmt"
	"net/url"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// PlanPush is the plan type of webhook push subscriptions: the gateway
// consumes for each subscription and POSTs what it gets to the callback.
const PlanPush = "push"

// PushEntrypoint is the entrypoint type that runs push subscriptions.
const PushEntrypoint = "webhook"

// PushSubscription is one subscription block of a push plan.
type PushSubscription struct {
	// ID is the subscription's label: its client identifier, so its Kafka
	// consumer group.
	ID string
	// CallbackURL is where messages are POSTed.
	CallbackURL string
	// DLQ names the API endpoint dead letters go to; "" for none.
	DLQ string
	// ConfigJSON is the block's values as JSON (snake_case), as the webhook
	// entrypoint receives them.
	ConfigJSON []byte
	// Range is the block's header, for diagnostics.
	Range hcl.Range
}

func pushAttr(name string, t pluginv1.Schema_Attribute_Type, required bool, enum ...string) *pluginv1.Schema_Attribute {
	return &pluginv1.Schema_Attribute{Name: name, Type: t, Required: required, Enum: enum}
}

func pushBlock(name string, nesting pluginv1.Schema_Block_Nesting, s *pluginv1.Schema) *pluginv1.Schema_Block {
	return &pluginv1.Schema_Block{Name: name, Nesting: nesting, Schema: s}
}

const (
	tString    = pluginv1.Schema_Attribute_STRING
	tNumber    = pluginv1.Schema_Attribute_NUMBER
	tBool      = pluginv1.Schema_Attribute_BOOL
	tList      = pluginv1.Schema_Attribute_LIST_OF_STRING
	pushSingle = pluginv1.Schema_Block_SINGLE
	pushList   = pluginv1.Schema_Block_LIST
)

// storeSchema is a truststore or keystore of a subscription's ssl block.
var storeSchema = &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
	pushAttr("type", tString, false, "", "PEM", "JKS", "PKCS12"), pushAttr("password", tString, false), pushAttr("alias", tString, false),
	pushAttr("key_password", tString, false), pushAttr("content", tString, false), pushAttr("cert_content", tString, false),
	pushAttr("key_content", tString, false),
}}

// pushSubscriptionSchema is the shape of a push subscription block: the
// reference's webhook subscription configuration (callbackUrl, headers,
// ssl, auth, retry) in snake_case, plus dlq. The webhook entrypoint decodes
// the same JSON again and owns the semantics; the gateway checks the shape
// here so `sluice validate` reports mistakes with their position.
var pushSubscriptionSchema = &pluginv1.Schema{
	Attributes: []*pluginv1.Schema_Attribute{pushAttr("callback_url", tString, true)},
	Blocks: []*pluginv1.Schema_Block{
		pushBlock("header", pushList, &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
			pushAttr("name", tString, true), pushAttr("value", tString, true)}}),
		pushBlock("ssl", pushSingle, &pluginv1.Schema{
			Attributes: []*pluginv1.Schema_Attribute{pushAttr("hostname_verifier", tBool, false), pushAttr("trust_all", tBool, false)},
			Blocks:     []*pluginv1.Schema_Block{pushBlock("truststore", pushSingle, storeSchema), pushBlock("keystore", pushSingle, storeSchema)},
		}),
		pushBlock("auth", pushSingle, &pluginv1.Schema{
			Attributes: []*pluginv1.Schema_Attribute{pushAttr("type", tString, true, "basic", "token", "oauth2")},
			Blocks: []*pluginv1.Schema_Block{
				pushBlock("basic", pushSingle, &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
					pushAttr("username", tString, true), pushAttr("password", tString, true)}}),
				pushBlock("token", pushSingle, &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{pushAttr("value", tString, true)}}),
				pushBlock("oauth2", pushSingle, &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
					pushAttr("endpoint", tString, true), pushAttr("client_id", tString, true), pushAttr("client_secret", tString, true),
					pushAttr("scopes", tList, false)}}),
			},
		}),
		pushBlock("retry", pushSingle, &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{
			pushAttr("retry_option", tString, false, "No Retry", "Retry On Fail"),
			pushAttr("retry_strategy", tString, false, "LINEAR", "EXPONENTIAL"),
			pushAttr("max_attempts", tNumber, false), pushAttr("initial_delay_seconds", tNumber, false), pushAttr("max_delay_seconds", tNumber, false)}}),
		pushBlock("dlq", pushSingle, &pluginv1.Schema{Attributes: []*pluginv1.Schema_Attribute{pushAttr("endpoint", tString, true)}}),
	},
}

// loadPushPlan decodes a push plan's subscription blocks.
func loadPushPlan(f *File, where string, pb *planHCL) ([]*PushSubscription, hcl.Diagnostics) {
	content, diags := pb.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "subscription", LabelNames: []string{"id"}}}})
	diags = prefixed(where, diags)
	if content == nil {
		return nil, diags
	}
	var out []*PushSubscription
	ids := map[string]hcl.Range{}
	for _, sb := range content.Blocks {
		id := sb.Labels[0]
		sw := fmt.Sprintf("%s > subscription %q", where, id)
		if prev, dup := ids[id]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("%s: Duplicate subscription %q", where, id),
				Detail:  fmt.Sprintf("Subscription %q is already defined at %s; subscription ids are unique within a plan.", id, startString(prev)),
				Subject: sb.LabelRanges[0].Ptr()})
			continue
		}
		ids[id] = sb.LabelRanges[0]
		if id == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: sw + ": The subscription id must not be empty",
				Detail:  "The id is the subscription's Kafka consumer group.",
				Subject: sb.LabelRanges[0].Ptr()})
			continue
		}
		val, d := hcldec.Decode(sb.Body, objectSpec(pushSubscriptionSchema), f.eval)
		if d.HasErrors() {
			diags = append(diags, prefixed(sw, d)...)
			continue
		}
		js, err := toJSON(pushSubscriptionSchema, val)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: sw + ": Cannot convert the block's values to JSON",
				Detail: err.Error() + ".", Subject: sb.DefRange.Ptr()})
			continue
		}
		ps := &PushSubscription{ID: id, ConfigJSON: js, Range: sb.DefRange}
		if cb := val.GetAttr("callback_url"); cb.IsKnown() && !cb.IsNull() {
			ps.CallbackURL = cb.AsString()
		}
		u, err := url.Parse(ps.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			rng := sb.DefRange
			if attrs, _ := sb.Body.JustAttributes(); attrs["callback_url"] != nil {
				rng = attrs["callback_url"].Expr.Range()
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("%s: Invalid callback_url %q", sw, ps.CallbackURL),
				Detail:  `callback_url is an absolute http:// or https:// URL, e.g. "https://billing.example/hooks/orders".`,
				Subject: rng.Ptr()})
		}
		if dlq := val.GetAttr("dlq"); !dlq.IsNull() {
			ps.DLQ = dlq.GetAttr("endpoint").AsString()
		}
		out = append(out, ps)
	}
	if len(content.Blocks) == 0 {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: where + ": No subscription",
			Detail:  `A push plan delivers to its subscriptions; add at least one subscription "<id>" { callback_url = "..." } block.`,
			Subject: pb.NameRange.Ptr()})
	}
	return out, diags
}

// checkPush checks what a push plan needs from the rest of its API: a
// webhook entrypoint to run the subscriptions, and each dlq naming one of
// the API's endpoints.
func checkPush(where string, api *API, plan hcl.Range) hcl.Diagnostics {
	if len(api.Push) == 0 {
		return nil
	}
	var diags hcl.Diagnostics
	hasWebhook := false
	for _, e := range api.Entrypoints {
		hasWebhook = hasWebhook || e.Type == PushEntrypoint
	}
	if !hasWebhook {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: where + ": Push subscriptions need a webhook entrypoint",
			Detail:  `The webhook entrypoint delivers push subscriptions and holds their shared settings; add entrypoint "webhook" { qos = "at-least-once" }.`,
			Subject: plan.Ptr()})
	}
	names := map[string]bool{}
	var list []string
	for _, e := range api.Endpoints {
		names[e.Name] = true
		list = append(list, e.Name)
	}
	for _, ps := range api.Push {
		if ps.DLQ != "" && !names[ps.DLQ] {
			detail := fmt.Sprintf("dlq { endpoint } names an endpoint block of this API; its endpoints are %s.", quoteList(list))
			if s := suggest(ps.DLQ, list); s != "" {
				detail = fmt.Sprintf("Did you mean %q? %s", s, detail)
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("%s > plan %q > subscription %q: Unknown dlq endpoint %q", where, PlanPush, ps.ID, ps.DLQ),
				Detail:  detail, Subject: ps.Range.Ptr()})
		}
	}
	return diags
}
