// Command sluice-plugin-policy-assign-attributes is the Assign Attributes
// policy of the Sluice gateway: it sets context or message attributes from
// literals and EL, for instance the Kafka topic or record key.
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() { serve.Serve(New()) }
