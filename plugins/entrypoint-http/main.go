// Command sluice-plugin-entrypoint-http provides the plain HTTP entrypoints of
// the Sluice gateway: http-get (poll messages), http-post (publish one
// message) and webhook (push messages to a callback URL).
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() { serve.Serve(New()) }
