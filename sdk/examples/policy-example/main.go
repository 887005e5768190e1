// Command sluice-plugin-policy-transform-headers is an example policy plugin
// for the Sluice gateway: the Transform Headers policy, which removes,
// filters and sets message headers in the publish and subscribe phases. It is
// the worked example of sdk/README.md.
package main

import "github.com/sluice-gw/sluice/sdk/serve"

// main hands the plugin to the SDK, which does the handshake, answers the
// describe argument, serves gRPC and exits when the core does.
func main() { serve.Serve(New()) }
