package plan

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// mtlsPlan matches the client certificate of the TLS connection against
// the subscriptions' certificates. The TLS handshake has already verified
// the chain against the gateway's client CA; the plan pins the exact
// certificate, so a certificate the CA issued to someone else is refused.
type mtlsPlan struct {
	bySum map[[sha256.Size]byte]Subscription
}

func newMTLS(c Config) (*mtlsPlan, error) {
	p := &mtlsPlan{bySum: map[[sha256.Size]byte]Subscription{}}
	if len(c.Subscriptions) == 0 {
		return nil, errors.New("an mtls plan needs at least one subscription")
	}
	for _, s := range c.Subscriptions {
		cert, err := ParseCertificate([]byte(s.ClientCertificate))
		if err != nil {
			return nil, fmt.Errorf("subscription %s: client_certificate: %w", s.ID, err)
		}
		sum := sha256.Sum256(cert.Raw)
		if prev, dup := p.bySum[sum]; dup {
			return nil, fmt.Errorf("subscriptions %s and %s have the same client_certificate", prev.ID, s.ID)
		}
		p.bySum[sum] = s
	}
	return p, nil
}

// ParseCertificate reads the first certificate of a PEM text.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block found")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func (p *mtlsPlan) typ() string             { return TypeMTLS }
func (p *mtlsPlan) close()                  {}
func (p *mtlsPlan) carries(r *Request) bool { return len(r.PeerCertificates) > 0 }
func (p *mtlsPlan) authenticate(_ context.Context, r *Request) (Result, *Denial) {
	s, ok := p.bySum[sha256.Sum256(r.PeerCertificates[0].Raw)]
	if !ok {
		return Result{}, forbidden(TypeMTLS, "the client certificate ("+r.PeerCertificates[0].Subject.String()+") has no subscription")
	}
	return Result{Plan: TypeMTLS, Subscription: s.ID, Application: application(s)}, nil
}
