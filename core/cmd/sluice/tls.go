package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"

	"github.com/sluice-gw/sluice/core/internal/config"
)

// certStore holds the public listener's certificate and client CAs. SIGHUP
// reloads them in place: tls.Config asks the store on every handshake
// (GetConfigForClient), so new connections get the new files while open
// ones keep theirs, and nothing is dropped.
type certStore struct {
	cur atomic.Pointer[tls.Config]
}

// newCertStore loads the files of t.
func newCertStore(t *config.TLS) (*certStore, error) {
	s := &certStore{}
	if err := s.reload(t); err != nil {
		return nil, err
	}
	return s, nil
}

// reload reads the files again; on error the loaded ones stay.
func (s *certStore) reload(t *config.TLS) error {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		// tls errors name the file's problem, never its content.
		return fmt.Errorf("gateway tls: %w", err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 only: the listener is fasthttp.
		NextProtos: []string{"http/1.1"},
	}
	var pool *x509.CertPool
	if t.ClientCAFile != "" {
		if pool, err = config.LoadCertPool(t.ClientCAFile); err != nil {
			return fmt.Errorf("gateway tls: %w", err)
		}
	}
	c.ClientCAs = pool
	switch t.ClientAuth {
	case config.ClientAuthRequest:
		// A certificate is optional, but one that is sent must chain to
		// the client CAs: an mtls plan never sees an unverified one.
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		c.ClientAuth = tls.NoClientCert
	}
	s.cur.Store(c)
	return nil
}

// config is what the listener uses: every handshake takes the current one.
func (s *certStore) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
}
