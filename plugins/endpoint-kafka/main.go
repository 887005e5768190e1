// Command sluice-plugin-endpoint-kafka is Sluice's Kafka endpoint plugin:
// the core launches it and talks to it over gRPC (see sdk/serve).
package main

import "github.com/sluice-gw/sluice/sdk/serve"

func main() {
	go metrics.writeLoop(serve.Logger())
	serve.Serve(NewKafka(serve.Logger()))
}
