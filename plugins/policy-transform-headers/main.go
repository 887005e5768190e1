// Command sluice-plugin-policy-transform-headers is the Transform Headers
// policy of the Sluice gateway: it sets, appends and removes request headers
// (request phase), response headers (response phase) and message headers
// (publish and subscribe phases), with values from literals or EL.
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() { serve.Serve(New()) }
