// Command sluice-plugin-entrypoint-sse is the Server-Sent Events entrypoint
// of the Sluice gateway: the core starts it as a plugin process and hands it
// every GET request that accepts text/event-stream.
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() { serve.Serve(New()) }
