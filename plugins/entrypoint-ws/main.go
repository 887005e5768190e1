// Command sluice-plugin-entrypoint-ws is the WebSocket entrypoint of the
// Sluice gateway: the core starts it as a plugin process and hands it every
// WebSocket upgrade request.
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() { serve.Serve(New()) }
