package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

func TestClassify(t *testing.T) {
	const (
		cfg     = "FAILURE_ENDPOINT_CONFIGURATION_INVALID"
		closed  = "FAILURE_ENDPOINT_CONNECTION_CLOSED"
		unknown = "FAILURE_ENDPOINT_UNKNOWN_ERROR"
	)
	messages := map[string]string{cfg: "Endpoint configuration invalid", closed: "Endpoint connection closed", unknown: "Endpoint unknown error"}
	dnsErr := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "x", Name: "h", IsNotFound: true}}
	tests := map[string]struct {
		err  error
		want string
	}{
		"config error":          {asConfigError(errors.New("bad")), cfg},
		"sarama configuration":  {sarama.ConfigurationError("Net.SASL.User must not be empty"), cfg},
		"SASL failed":           {sarama.ErrSASLAuthenticationFailed, cfg},
		"SASL failed wrapped":   {sarama.Wrap(sarama.ErrOutOfBrokers, sarama.ErrSASLAuthenticationFailed), cfg},
		"unsupported mechanism": {fmt.Errorf("x: %w", sarama.ErrUnsupportedSASLMechanism), cfg},
		"unknown CA":            {sarama.Wrap(sarama.ErrOutOfBrokers, x509.UnknownAuthorityError{}), cfg},
		"hostname mismatch":     {x509.HostnameError{Host: "h"}, cfg},
		"DNS":                   {sarama.Wrap(sarama.ErrOutOfBrokers, dnsErr), cfg},
		"refused":               {sarama.Wrap(sarama.ErrOutOfBrokers, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), closed},
		"out of brokers":        {sarama.ErrOutOfBrokers, closed},
		"EOF":                   {io.EOF, closed},
		"watchdog":              {fmt.Errorf("%w: x", errConnectionClosed), closed},
		"broker not available":  {sarama.ErrBrokerNotAvailable, closed},
		"other kafka error":     {sarama.ErrMessageSizeTooLarge, unknown},
		"anything else":         {errors.New("boom"), unknown},
		"setup EOF is config":   {setupError(sarama.Wrap(sarama.ErrOutOfBrokers, io.EOF)), cfg},
		"setup refused is not":  {setupError(sarama.Wrap(sarama.ErrOutOfBrokers, syscall.ECONNREFUSED)), closed},
		"setup keeps config":    {setupError(sarama.ErrSASLAuthenticationFailed), cfg},
		"setup keeps other":     {setupError(errors.New("boom")), unknown},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := classify(tc.err)
			if f.Key != tc.want || f.Message != messages[tc.want] || f.Status != 500 || f.RequestLevel {
				t.Fatalf("classify(%v) = %+v, want %s", tc.err, f, tc.want)
			}
		})
	}
	own := &gateway.Failure{Status: 400, Key: "K", Message: "m"}
	if classify(fmt.Errorf("wrapped: %w", own)) != own {
		t.Fatal("a failure is not passed through")
	}
	if f := invalidConfigurationFailure(); f.Status != 500 || f.Key != "FAILURE_CONFIGURATION_INVALID" || f.Message != "Invalid configuration" || !f.RequestLevel {
		t.Fatalf("invalid configuration failure %+v", f)
	}
	m := errorMessage(classify(io.EOF))
	if string(m.Content) != "Endpoint connection closed" || m.Metadata["key"] != closed || m.Error == nil || len(m.ID) != 36 || m.Tag != 0 {
		t.Fatalf("error message %+v", m)
	}
}
