//go:build tools

// The tests in this file need a tool besides Go (kcat), so they belong to
// `make test-all`, which builds with -tags tools; `make test` leaves them out.
// A missing tool fails the test with the command that installs it.

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchCodecs reads the raw record batches of a partition and returns the
// compression codec of each (attributes bits 0-2: 0 none, 1 gzip, 2 snappy,
// 3 lz4, 4 zstd), which no consumer API exposes.
func batchCodecs(t *testing.T, g *Gateway, topic string) []int16 {
	t.Helper()
	c := g.Kgo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 500
	req.MaxBytes = 1 << 20
	// Fetch v13+ names topics by id.
	details, err := kadm.NewClient(c).ListTopics(ctx, topic)
	if err != nil || details[topic].Err != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, details[topic].Err)
	}
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	ft.TopicID = details[topic].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var codecs []int16
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("fetch %s: error code %d", topic, rp.ErrorCode)
			}
			raw := rp.RecordBatches
			for len(raw) >= 61 {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(raw); err != nil {
					t.Fatalf("batch: %v", err)
				}
				codecs = append(codecs, b.Attributes&0x07)
				raw = raw[12+int(b.Length):]
			}
		}
	}
	return codecs
}

// Each compression codec is applied by the producer and read back by kcat,
// another client entirely.
func TestCompressionCodecsReadBackByKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is required: install it with `sudo apt-get install kcat` (./.ci/install does)")
	}
	codecs := map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	var apis strings.Builder
	topics := map[string]int{}
	var names []string
	for name := range codecs {
		names = append(names, name)
		topics["codec-"+name] = 1
		fmt.Fprintf(&apis, `
api "%[1]s" {
  context_path = "/%[1]s"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled          = true
      topics           = ["codec-%[1]s"]
      compression_type = "%[1]s"
    }
  }
}
`, name)
	}
	sort.Strings(names)
	g := StartGateway(t, apis.String(), topics)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			payload := strings.Repeat("compress me "+name+" ", 50)
			resp, body := post(t, g, "/"+name, payload, map[string]string{"X-Codec": name})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			out, err := exec.Command("kcat", "-C", "-b", g.Kafka, "-t", "codec-"+name, "-o", "beginning", "-c", "1", "-e",
				"-f", "%s|%h").CombinedOutput()
			if err != nil {
				t.Fatalf("kcat: %v\n%s", err, out)
			}
			if got := string(out); !strings.HasPrefix(got, payload+"|") {
				t.Fatalf("kcat read %q, want the payload", got)
			}
			if got := batchCodecs(t, g, "codec-"+name); len(got) != 1 || got[0] != codecs[name] {
				t.Fatalf("batch codecs %v, want [%d]", got, codecs[name])
			}
		})
	}
}
