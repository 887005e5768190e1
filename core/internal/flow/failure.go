package flow

import (
	"context"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// Failure keys the core uses for its own failures, in the reference's style.
const (
	// KeyPluginUnavailable: the plugin process is down or restarting.
	KeyPluginUnavailable = "FAILURE_PLUGIN_UNAVAILABLE"
	// KeyPluginNoResponse: the plugin went away in the middle of a call.
	KeyPluginNoResponse = "FAILURE_PLUGIN_NO_RESPONSE"
	// KeyPluginTimeout: the plugin did not answer in time.
	KeyPluginTimeout = "FAILURE_PLUGIN_TIMEOUT"
	// KeyPluginError: the plugin failed in a way it did not describe.
	KeyPluginError = "FAILURE_PLUGIN_ERROR"
	// KeyInternal: the core itself could not go on.
	KeyInternal = "FAILURE_INTERNAL"
)

// Unavailable is the failure of a request that needs a plugin that is down:
// 503, retriable, because the supervisor is restarting it.
func Unavailable(plugin string) *pluginv1.Failure {
	return &pluginv1.Failure{
		Status:       http.StatusServiceUnavailable,
		Key:          KeyPluginUnavailable,
		Message:      "plugin " + plugin + " is unavailable",
		Retriable:    true,
		RequestLevel: true,
	}
}

// TransportFailure maps an error of a call or stream to plugin into the
// failure the client sees. This is the one place where transport errors get
// an HTTP status:
//
//   - a status carrying a pluginv1.Failure detail is the plugin's own failure;
//   - Unavailable (the process went away mid-call) is 502 "plugin X did not
//     respond";
//   - DeadlineExceeded is 504;
//   - Canceled (the stream was torn down, e.g. for a restart) is 503;
//   - anything else is a 500 naming the plugin.
func TransportFailure(plugin string, err error) *pluginv1.Failure {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return noResponse(plugin)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return timeout(plugin)
	}
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.Canceled) {
			return Unavailable(plugin)
		}
		return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: KeyPluginError, Message: "plugin " + plugin + " failed: " + err.Error(), RequestLevel: true}
	}
	for _, d := range st.Details() {
		if f, ok := d.(*pluginv1.Failure); ok {
			return normalize(f)
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		return noResponse(plugin)
	case codes.DeadlineExceeded:
		return timeout(plugin)
	case codes.Canceled:
		return Unavailable(plugin)
	default:
		return &pluginv1.Failure{
			Status:       http.StatusInternalServerError,
			Key:          KeyPluginError,
			Message:      "plugin " + plugin + " failed: " + st.Message(),
			RequestLevel: true,
		}
	}
}

func noResponse(plugin string) *pluginv1.Failure {
	return &pluginv1.Failure{
		Status:       http.StatusBadGateway,
		Key:          KeyPluginNoResponse,
		Message:      "plugin " + plugin + " did not respond",
		Retriable:    true,
		RequestLevel: true,
	}
}

// NoResponse is the failure of an exchange whose plugin ended it without
// answering the client.
func NoResponse(plugin string) *pluginv1.Failure { return noResponse(plugin) }

func timeout(plugin string) *pluginv1.Failure {
	return &pluginv1.Failure{
		Status:       http.StatusGatewayTimeout,
		Key:          KeyPluginTimeout,
		Message:      "plugin " + plugin + " did not respond in time",
		Retriable:    true,
		RequestLevel: true,
	}
}

func internalFailure(msg string) *pluginv1.Failure {
	return &pluginv1.Failure{Status: http.StatusInternalServerError, Key: KeyInternal, Message: msg, RequestLevel: true}
}

// normalize gives a plugin's failure a usable status: a failure without one
// (or with one outside the HTTP range) is a 500.
func normalize(f *pluginv1.Failure) *pluginv1.Failure {
	if f.GetStatus() >= 100 && f.GetStatus() <= 599 {
		return f
	}
	out := &pluginv1.Failure{
		Status:       http.StatusInternalServerError,
		Key:          f.GetKey(),
		Message:      f.GetMessage(),
		Retriable:    f.GetRetriable(),
		RequestLevel: f.GetRequestLevel(),
	}
	if out.Message == "" {
		out.Message = http.StatusText(http.StatusInternalServerError)
	}
	return out
}

// Normalize returns f with a status in the HTTP range (500 when it has none).
func Normalize(f *pluginv1.Failure) *pluginv1.Failure {
	if f == nil {
		return nil
	}
	return normalize(f)
}
