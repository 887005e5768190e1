package plan

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// Headers (and same-named query parameters) of the reference gateway's
// request identification (docs/behaviour.md 2.3).
const (
	HeaderClientIdentifier = "X-Gravitee-Client-Identifier"
	HeaderTransactionID    = "X-Gravitee-Transaction-Id"
	HeaderRequestID        = "X-Gravitee-Request-Id"
)

// Context attributes the core sets on every request, before request-phase
// policies run.
const (
	AttrClientIdentifier = "gravitee.attribute.clientIdentifier"
	AttrAPI              = "gravitee.attribute.api"
	AttrPlan             = "gravitee.attribute.plan"
	AttrApplication      = "gravitee.attribute.application"
	AttrUserID           = "gravitee.attribute.user-id"
	AttrRequestID        = "gravitee.attribute.request.id"
	AttrTransactionID    = "gravitee.attribute.transaction.id"
)

// Context attributes of the plan that accepted a request (the reference's
// names), and the verified token's claims of a jwt plan.
const (
	AttrSubscription = "gravitee.attribute.subscription"
	AttrJWTClaims    = "jwt.claims"
)

// PlanKeyless is the plan that accepts every request and identifies it by
// its remote address.
const PlanKeyless = TypeKeyless

// Identity is what the keyless plan and the reference's SubscriptionProcessor
// decide about one request.
type Identity struct {
	// RequestID is new for every request.
	RequestID string
	// TransactionID is the client's X-Gravitee-Transaction-Id or RequestID.
	TransactionID string
	// RemoteAddress is the TCP peer host.
	RemoteAddress string
	// SubscriptionID is what the plan identified: the remote address for
	// keyless (empty when there is none).
	SubscriptionID string
	// ClientID is the client identifier the request carries from now on (the
	// Kafka consumer group).
	ClientID string
	// Provided is echoed in the X-Gravitee-Client-Identifier response header:
	// the client's own value, or ClientID when it sent none.
	Provided string
	// Plan, Application and Claims are what the accepting plan decided;
	// Plan is "" or keyless for keyless.
	Plan, Application string
	Claims            map[string]any
}

// Identify applies the reference gateway's client identification (Gravitee
// APIM's SubscriptionProcessor; docs/hcl.md, "Client identifier and
// consumer group"). subscription is the accepting plan's
// subscription id, "" for keyless (which identifies the client by its
// remote address). transaction and provided are the header (or else query
// parameter) values, "" when absent.
func Identify(remoteAddress, subscription, requestID, transaction, provided string) Identity {
	id := Identity{
		RequestID:      requestID,
		TransactionID:  transaction,
		RemoteAddress:  remoteAddress,
		SubscriptionID: remoteAddress,
	}
	if subscription != "" {
		id.SubscriptionID = subscription
	}
	if id.TransactionID == "" {
		id.TransactionID = requestID
	}
	computed := id.computed()
	switch {
	case strings.TrimSpace(provided) == "":
		id.ClientID = computed
		id.Provided = computed
	case (id.SubscriptionID != "" && strings.HasSuffix(provided, id.SubscriptionID)) ||
		(id.TransactionID != "" && strings.HasSuffix(provided, id.TransactionID)):
		id.ClientID = provided
		id.Provided = provided
	default:
		// The client's value is a prefix of the computed one, whatever the
		// reference's docs say ("suffixed").
		id.ClientID = provided + "-" + computed
		id.Provided = provided
	}
	return id
}

// computed is the reference's computed client identifier.
func (id Identity) computed() string {
	switch {
	case id.SubscriptionID != "" && id.SubscriptionID != id.RemoteAddress:
		return id.SubscriptionID
	case id.SubscriptionID != "":
		sum := sha256.Sum256([]byte(id.SubscriptionID))
		return hex.EncodeToString(sum[:])
	default:
		return id.TransactionID
	}
}

// Attributes are the context attributes of the identified request.
func (id Identity) Attributes(api string) map[string]*structpb.Value {
	m := map[string]*structpb.Value{
		AttrClientIdentifier: structpb.NewStringValue(id.ClientID),
		AttrAPI:              structpb.NewStringValue(api),
		AttrPlan:             structpb.NewStringValue(PlanKeyless),
		AttrApplication:      structpb.NewStringValue("1"),
		AttrUserID:           structpb.NewStringValue(id.RemoteAddress),
		AttrRequestID:        structpb.NewStringValue(id.RequestID),
		AttrTransactionID:    structpb.NewStringValue(id.TransactionID),
	}
	id.planAttributes(m)
	return m
}

// RemoteHost is the reference's remoteAddress: the TCP peer's host, without
// port and without IPv6 zone.
func RemoteHost(addr net.Addr) string {
	switch a := addr.(type) {
	case nil:
		return ""
	case *net.TCPAddr:
		if a.IP == nil {
			return ""
		}
		return a.IP.String()
	}
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
}

// NewRequestID returns a random (version 4) UUID in its canonical form.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// WithPlan records the accepting plan in the Identity.
func (id Identity) WithPlan(res Result) Identity {
	id.Plan, id.Application, id.Claims = res.Plan, res.Application, res.Claims
	return id
}

// planAttributes adds the plan's attributes to a request's context.
func (id Identity) planAttributes(m map[string]*structpb.Value) {
	if id.Plan == "" || id.Plan == PlanKeyless {
		m[AttrSubscription] = structpb.NewStringValue(id.SubscriptionID)
		return
	}
	m[AttrPlan] = structpb.NewStringValue(id.Plan)
	m[AttrApplication] = structpb.NewStringValue(id.Application)
	m[AttrSubscription] = structpb.NewStringValue(id.SubscriptionID)
	m[AttrUserID] = structpb.NewStringValue(id.SubscriptionID)
	if id.Claims != nil {
		// Claims are JSON values, which structpb holds; a claim it cannot
		// hold leaves the attribute out rather than failing the request.
		if v, err := structpb.NewValue(id.Claims); err == nil {
			m[AttrJWTClaims] = v
		}
	}
}
