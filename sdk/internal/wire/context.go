package wire

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Field numbers of Context and Request.
const (
	fContextAPIID      = 1
	fContextRequest    = 2
	fContextAttributes = 3

	fRequestID            = 1
	fRequestTransactionID = 2
	fRequestClientID      = 3
	fRequestMethod        = 4
	fRequestPath          = 5
	fRequestContextPath   = 6
	fRequestPathInfo      = 7
	fRequestHeaders       = 8
	fRequestParams        = 9
	fRequestPathParams    = 10
	fRequestRemoteAddress = 11
	fRequestBody          = 12
	fRequestWebSocket     = 13
)

// DecodeContext decodes an encoded Context straight into a gateway.Context,
// as proto.Unmarshal and ContextFromWire would. Every exchange's context
// crosses to a plugin at least once, and going through the generated types
// (a map of structpb values, then a second conversion) was the largest cost
// of a plugin handling a lone POST.
//
// The body aliases b; strings share one copy of b.
func DecodeContext(b []byte) (*gateway.Context, error) {
	c := &gateway.Context{}
	d := directDecoder{b: b}
	if err := d.context(c, 0, len(b)); err != nil {
		return nil, err
	}
	return c, nil
}

// context decodes a Context held in d.b[i:end] into c, merging into what c
// holds already, as proto.Unmarshal merges a message field seen twice.
func (d *directDecoder) context(c *gateway.Context, i, end int) error {
	var err error
	ferr := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		if typ != protowire.BytesType {
			return skip
		}
		switch num {
		case fContextAPIID:
			s, e, next := d.span(at, end)
			if next >= 0 {
				c.APIID = d.str(s, e)
			}
			return next
		case fContextRequest:
			s, e, next := d.span(at, end)
			if next >= 0 {
				if c.Request == nil {
					c.Request = &gateway.Request{}
				}
				if err = d.request(c.Request, s, e); err != nil {
					return -1
				}
			}
			return next
		case fContextAttributes:
			s, e, next := d.span(at, end)
			if next >= 0 {
				if c.Attributes == nil {
					c.Attributes = map[string]any{}
				}
				if err = d.entry(c.Attributes, s, e); err != nil {
					return -1
				}
			}
			return next
		}
		return skip
	})
	if err != nil {
		return err
	}
	return ferr
}

func (d *directDecoder) request(r *gateway.Request, i, end int) error {
	var err error
	ferr := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		if num == fRequestWebSocket && typ == protowire.VarintType {
			v, next := d.varint(at, end)
			r.WebSocket = protowire.DecodeBool(v)
			return next
		}
		if typ != protowire.BytesType {
			return skip
		}
		s, e, next := d.span(at, end)
		if next < 0 {
			return next
		}
		switch num {
		case fRequestID:
			r.ID = d.str(s, e)
		case fRequestTransactionID:
			r.TransactionID = d.str(s, e)
		case fRequestClientID:
			r.ClientIdentifier = d.str(s, e)
		case fRequestMethod:
			r.Method = d.str(s, e)
		case fRequestPath:
			r.Path = d.str(s, e)
		case fRequestContextPath:
			r.ContextPath = d.str(s, e)
		case fRequestPathInfo:
			r.PathInfo = d.str(s, e)
		case fRequestRemoteAddress:
			r.RemoteAddress = d.str(s, e)
		case fRequestBody:
			r.Body = d.b[s:e:e]
		case fRequestHeaders:
			if r.Headers == nil {
				r.Headers = gateway.Headers{}
			}
			if err = d.header(r.Headers, s, e); err != nil {
				return -1
			}
		case fRequestParams:
			if r.Params == nil {
				r.Params = map[string][]string{}
			}
			if err = d.header(r.Params, s, e); err != nil {
				return -1
			}
		case fRequestPathParams:
			if r.PathParams == nil {
				r.PathParams = map[string]string{}
			}
			if err = d.stringEntry(r.PathParams, s, e); err != nil {
				return -1
			}
		}
		return next
	})
	if err != nil {
		return err
	}
	return ferr
}

// stringEntry adds one map<string, string> entry to m.
func (d *directDecoder) stringEntry(m map[string]string, i, end int) error {
	var key, val string
	err := d.fields(i, end, func(num protowire.Number, typ protowire.Type, at int) int {
		if typ != protowire.BytesType || (num != fEntryKey && num != fEntryValue) {
			return skip
		}
		s, e, next := d.span(at, end)
		if next >= 0 {
			if num == fEntryKey {
				key = d.str(s, e)
			} else {
				val = d.str(s, e)
			}
		}
		return next
	})
	if err != nil {
		return err
	}
	m[key] = val
	return nil
}

// Field numbers of Connect.Request.open and Connect.Open.
const (
	fConnectRequestOpen = 1
	fOpenInstanceID     = 1
	fOpenContext        = 2
	fOpenSubscription   = 3
)

// DecodeOpen decodes an encoded Connect.Request that holds an Open straight
// into the entrypoint's Open, as proto.Unmarshal and OpenFromWire would. ok
// is false when the request holds something else.
func DecodeOpen(b []byte) (open *entrypoint.Open, ok bool, err error) {
	d := directDecoder{b: b}
	ferr := d.fields(0, len(b), func(num protowire.Number, typ protowire.Type, at int) int {
		if num != fConnectRequestOpen || typ != protowire.BytesType {
			return skip
		}
		start, end, next := d.span(at, len(b))
		if next < 0 {
			return next
		}
		if open == nil {
			open = &entrypoint.Open{Context: &gateway.Context{}}
		}
		err = d.fields(start, end, func(num protowire.Number, typ protowire.Type, at int) int {
			if typ != protowire.BytesType || (num != fOpenInstanceID && num != fOpenContext && num != fOpenSubscription) {
				return skip
			}
			// Bounded by the Open, not the whole request.
			s, e, next := d.span(at, end)
			if next < 0 {
				return next
			}
			switch num {
			case fOpenInstanceID:
				open.InstanceID = d.str(s, e)
			case fOpenSubscription:
				open.Subscription = b[s:e:e]
			default:
				if err := d.context(open.Context, s, e); err != nil {
					return -1
				}
			}
			return next
		})
		if err != nil {
			return -1
		}
		return next
	})
	if err != nil {
		return nil, false, err
	}
	if ferr != nil {
		return nil, false, ferr
	}
	return open, open != nil, nil
}
