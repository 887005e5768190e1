package plan

import (
	"net"
	"regexp"
	"testing"
)

// Lowercase hex SHA-256 of remote addresses, computed independently
// (printf '10.0.0.1' | sha256sum).
const (
	sha10001      = "f5047344122f0dee9974ba6761e61c6b8649e1f3968d13a635ebbf7be53a3a0d"
	shaV6Loopback = "eff8e7ca506627fe15dda5e0e512fcaad70b6d520f37cc76597fdb4f2d83a1a3"
)

func TestIdentify(t *testing.T) {
	h := sha10001
	tests := map[string]struct {
		remote, reqID, tx, provided string
		wantTx, wantClient, wantHdr string
	}{
		"keyless, nothing provided": {
			"10.0.0.1", "req-1", "", "",
			"req-1", h, h,
		},
		"blank provided counts as none": {
			"10.0.0.1", "req-1", "", "  \t",
			"req-1", h, h,
		},
		"provided is a prefix": {
			"10.0.0.1", "req-1", "", "foo",
			"req-1", "foo-" + h, "foo",
		},
		"provided ending with the subscription id is kept": {
			"10.0.0.1", "req-1", "", "my-10.0.0.1",
			"req-1", "my-10.0.0.1", "my-10.0.0.1",
		},
		"provided ending with the transaction id is kept": {
			"10.0.0.1", "req-1", "tx-9", "client-tx-9",
			"tx-9", "client-tx-9", "client-tx-9",
		},
		"provided ending with the request id as transaction is kept": {
			"10.0.0.1", "req-1", "", "x-req-1",
			"req-1", "x-req-1", "x-req-1",
		},
		"client transaction id wins over the request id": {
			"10.0.0.1", "req-1", "tx-9", "",
			"tx-9", h, h,
		},
		"no remote address falls back to the transaction id": {
			"", "req-1", "tx-9", "",
			"tx-9", "tx-9", "tx-9",
		},
		"no remote address with a prefix": {
			"", "req-1", "", "foo",
			"req-1", "foo-req-1", "foo",
		},
		"ipv6 remote": {
			"::1", "req-1", "", "",
			"req-1", shaV6Loopback, shaV6Loopback,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id := Identify(tc.remote, "", tc.reqID, tc.tx, tc.provided)
			if id.TransactionID != tc.wantTx || id.ClientID != tc.wantClient || id.Provided != tc.wantHdr {
				t.Fatalf("identify = tx %q client %q header %q, want tx %q client %q header %q",
					id.TransactionID, id.ClientID, id.Provided, tc.wantTx, tc.wantClient, tc.wantHdr)
			}
			if id.RemoteAddress != tc.remote || id.RequestID != tc.reqID {
				t.Fatalf("identify kept remote %q request %q", id.RemoteAddress, id.RequestID)
			}
		})
	}
}

func TestSHA256Vector(t *testing.T) {
	// The keyless client identifier is the lowercase hex SHA-256 of the
	// remote address: check the hashing against a fixed vector.
	if got := Identify("abc", "", "r", "", "").ClientID; got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("client id of \"abc\" = %q", got)
	}
}

func TestIdentityAttributes(t *testing.T) {
	id := Identify("10.0.0.1", "", "req-1", "tx-1", "foo")
	attrs := id.Attributes("demo")
	want := map[string]string{
		AttrClientIdentifier: "foo-" + sha10001,
		AttrAPI:              "demo",
		AttrPlan:             "keyless",
		AttrApplication:      "1",
		AttrUserID:           "10.0.0.1",
		AttrRequestID:        "req-1",
		AttrTransactionID:    "tx-1",
		AttrSubscription:     "10.0.0.1",
	}
	if len(attrs) != len(want) {
		t.Fatalf("got %d attributes, want %d", len(attrs), len(want))
	}
	for k, v := range want {
		if got := attrs[k].GetStringValue(); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

type strAddr string

func (a strAddr) Network() string { return "test" }
func (a strAddr) String() string  { return string(a) }

func TestRemoteHost(t *testing.T) {
	tests := map[string]struct {
		addr net.Addr
		want string
	}{
		"ipv4":                {&net.TCPAddr{IP: net.IPv4(192, 168, 1, 7), Port: 5555}, "192.168.1.7"},
		"ipv6":                {&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5555}, "2001:db8::1"},
		"ipv6 with zone":      {&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5555, Zone: "eth0"}, "fe80::1"},
		"ipv4-mapped ipv6":    {&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1}, "10.0.0.1"},
		"loopback v6":         {&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, "::1"},
		"string with port":    {strAddr("10.1.2.3:8080"), "10.1.2.3"},
		"string v6 with zone": {strAddr("[fe80::1%eth0]:8080"), "fe80::1"},
		"string v6 bare zone": {strAddr("fe80::2%wlan0"), "fe80::2"},
		"no ip":               {&net.TCPAddr{}, ""},
		"nil":                 {nil, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RemoteHost(tc.addr); got != tc.want {
				t.Fatalf("RemoteHost(%v) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewRequestID(), NewRequestID()
	if !re.MatchString(a) || !re.MatchString(b) {
		t.Fatalf("not v4 UUIDs: %q %q", a, b)
	}
	if a == b {
		t.Fatalf("two UUIDs are equal: %q", a)
	}
}

func TestJWTClaimsAttribute(t *testing.T) {
	id := Identify("10.0.0.1", "mobile", "r", "", "").WithPlan(Result{
		Plan: TypeJWT, Subscription: "mobile", Application: "app",
		Claims: map[string]any{"azp": "mobile", "scope": []any{"read"}, "exp": float64(1)},
	})
	if id.ClientID != "mobile" {
		t.Fatalf("client id %q", id.ClientID)
	}
	attrs := id.Attributes("demo")
	claims := attrs[AttrJWTClaims].GetStructValue().AsMap()
	if claims["azp"] != "mobile" || attrs[AttrPlan].GetStringValue() != "jwt" || attrs[AttrApplication].GetStringValue() != "app" {
		t.Fatalf("attributes %v", attrs)
	}
}
