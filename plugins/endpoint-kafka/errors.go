package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/IBM/sarama"
	"github.com/sluice-gw/sluice/sdk/gateway"
)

// Failure keys and messages of the reference (docs/behaviour.md 2.9, 1.6).
const (
	keyConfigurationInvalid         = "FAILURE_CONFIGURATION_INVALID"
	keyEndpointConfigurationInvalid = "FAILURE_ENDPOINT_CONFIGURATION_INVALID"
	keyEndpointConnectionClosed     = "FAILURE_ENDPOINT_CONNECTION_CLOSED"
	keyEndpointUnknownError         = "FAILURE_ENDPOINT_UNKNOWN_ERROR"

	msgConfigurationInvalid         = "Invalid configuration"
	msgEndpointConfigurationInvalid = "Endpoint configuration invalid"
	msgEndpointConnectionClosed     = "Endpoint connection closed"
	msgEndpointUnknownError         = "Endpoint unknown error"
)

// configError marks an error in the evaluated configuration that Kafka's
// client would reject at creation (Java's ConfigException): a malformed
// bootstrap list, an unreadable JAAS string or key store, a missing topic.
type configError struct{ err error }

// Error returns the underlying message.
func (e *configError) Error() string { return e.err.Error() }

// Unwrap exposes the underlying error to errors.Is and errors.As.
func (e *configError) Unwrap() error { return e.err }

// asConfigError wraps err as a configuration error.
func asConfigError(err error) error {
	if err == nil {
		return nil
	}
	return &configError{err}
}

// setupError interprets an error met while first connecting. A broker that
// accepts the TCP connection and then closes it during the handshake has
// rejected the client: wrong credentials (some brokers close instead of
// answering SASL_AUTHENTICATION_FAILED), TLS spoken to a plaintext listener
// or the reverse. That is a configuration problem, not a lost connection.
func setupError(err error) error {
	if err == nil || isConfigurationError(err) {
		return err
	}
	if (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) &&
		!errors.Is(err, syscall.ECONNREFUSED) && !isTimeout(err) {
		return asConfigError(fmt.Errorf("the broker closed the connection during the handshake (check security.protocol and the credentials): %w", err))
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errConnectionClosed reports that the cluster stayed unreachable for the
// connection-loss watchdog's whole window (the reference's
// KafkaConnectionClosedException).
var errConnectionClosed = errors.New("kafka: no broker reachable")

// invalidConfigurationFailure is the request-level failure of dynamic
// configuration (docs/behaviour.md 1.6 step 3).
func invalidConfigurationFailure() *gateway.Failure {
	return &gateway.Failure{Status: 500, Key: keyConfigurationInvalid, Message: msgConfigurationInvalid, RequestLevel: true}
}

// classify maps a Kafka client error to the reference's failures
// (docs/behaviour.md 2.9): configuration, authentication and TLS problems are
// FAILURE_ENDPOINT_CONFIGURATION_INVALID, a lost or unreachable cluster is
// FAILURE_ENDPOINT_CONNECTION_CLOSED, anything else
// FAILURE_ENDPOINT_UNKNOWN_ERROR. All are 500 and message-level.
func classify(err error) *gateway.Failure {
	var f *gateway.Failure
	if errors.As(err, &f) {
		return f
	}
	switch {
	case isConfigurationError(err):
		return &gateway.Failure{Status: 500, Key: keyEndpointConfigurationInvalid, Message: msgEndpointConfigurationInvalid}
	case isConnectionError(err):
		return &gateway.Failure{Status: 500, Key: keyEndpointConnectionClosed, Message: msgEndpointConnectionClosed, Retriable: true}
	default:
		return &gateway.Failure{Status: 500, Key: keyEndpointUnknownError, Message: msgEndpointUnknownError}
	}
}

// isConfigurationError reports errors Java's client raises as ConfigException,
// SaslAuthenticationException or SslAuthenticationException.
func isConfigurationError(err error) bool {
	if err == nil {
		return false
	}
	var ce *configError
	var sce sarama.ConfigurationError
	var kerr sarama.KError
	var dns *net.DNSError
	var addr *net.AddrError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var alert tls.AlertError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &ce), errors.As(err, &sce), errors.As(err, &dns), errors.As(err, &addr),
		errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalidCert), errors.As(err, &alert), errors.As(err, &header):
		return true
	case errors.As(err, &kerr):
		switch kerr {
		case sarama.ErrSASLAuthenticationFailed, sarama.ErrUnsupportedSASLMechanism, sarama.ErrIllegalSASLState:
			return true
		}
	}
	// Sarama reports some handshake failures as plain text errors.
	msg := err.Error()
	return strings.Contains(msg, "SASL") || strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:")
}

// isConnectionError reports a cluster that cannot be reached or went away.
func isConnectionError(err error) bool {
	var opErr *net.OpError
	var kerr sarama.KError
	switch {
	case err == nil:
		return false
	case errors.Is(err, errConnectionClosed), errors.Is(err, sarama.ErrOutOfBrokers), errors.Is(err, sarama.ErrNotConnected),
		errors.Is(err, sarama.ErrClosedClient), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, context.DeadlineExceeded), errors.As(err, &opErr):
		return true
	case errors.As(err, &kerr):
		switch kerr {
		case sarama.ErrBrokerNotAvailable, sarama.ErrNetworkException, sarama.ErrRequestTimedOut,
			sarama.ErrLeaderNotAvailable, sarama.ErrNotLeaderForPartition, sarama.ErrConsumerCoordinatorNotAvailable:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorMessage turns a failure into the error message a subscription sends
// (docs/behaviour.md 2.9): content is the failure message, metadata carries the key
// and status, and the id is a random UUID.
func errorMessage(f *gateway.Failure) *gateway.Message {
	return &gateway.Message{
		ID:       newUUID(),
		Content:  []byte(f.Message),
		Metadata: map[string]any{"key": f.Key, "statusCode": f.Status},
		Error:    f,
	}
}
