// Package reply writes the answers the gateway gives by itself, before or
// instead of any plugin: failures in the reference gateway's format
// (docs/behaviour.md 5), rendered by sdk/httpfailure exactly as entrypoint
// plugins render theirs.
package reply

import (
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
)

// Failure answers ctx with a gateway failure: JSON when the Accept values
// ask for it, text otherwise; anything but a client error also closes the
// connection, as the reference does. A status outside 100-599 is a 500.
func Failure(ctx *fasthttp.RequestCtx, accept []string, status int, message string) {
	if status < 100 || status > 599 {
		status = fasthttp.StatusInternalServerError
	}
	status, headers, body := httpfailure.Response(accept, &gateway.Failure{Status: status, Message: message}, status)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType(headers.Get("Content-Type"))
	ctx.SetBody(body)
	if headers.Get("Connection") == "close" {
		ctx.SetConnectionClose()
	}
}

// Accept copies every Accept header value of the request.
func Accept(ctx *fasthttp.RequestCtx) []string {
	var out []string
	for _, v := range ctx.Request.Header.PeekAll("Accept") {
		out = append(out, string(v))
	}
	return out
}
