// Command sluice-plugin-endpoint-kafka is Sluice's Kafka endpoint plugin:
// the core launches it and talks to it over gRPC (see sdk/serve).
package main

import (
	gometrics "github.com/rcrowley/go-metrics"

	"github.com/sluice-gw/sluice/sdk/serve"
)

func main() {
	// Sarama records go-metrics meters and histograms for every client and
	// every broker connection; each histogram preallocates a reservoir of
	// 1,028 samples (16 KiB), tens of KiB per consumer that nothing here
	// reads (the plugin exports no sarama metrics). Off for the whole
	// process, before any client exists.
	gometrics.UseNilMetrics = true
	serve.Serve(NewKafka(serve.Logger()))
}
