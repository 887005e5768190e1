// Command sluice-plugin-policy-message-filtering is the Message Filtering
// policy of the Sluice gateway: it drops the messages for which an EL
// condition is false, in the publish and subscribe phases.
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() { serve.Serve(New()) }
