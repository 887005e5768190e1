package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumerAPI is a GET API on the given consumer block, with metadata and
// headers in the payload.
func consumerAPI(name, qos, consumer string, extra string) string {
	return fmt.Sprintf(`
api "%[1]s" {
  context_path = "/%[1]s"
  entrypoint "http-get" {
    qos                        = "%[2]s"
    messages_limit_count       = 10
    messages_limit_duration_ms = 2500
    metadata_in_payload        = true
    headers_in_payload         = true
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled = true
      %[3]s
    }
  }
  %[4]s
}
`, name, qos, consumer, extra)
}

func TestConsumerOptions(t *testing.T) {
	var apis strings.Builder
	apis.WriteString(consumerAPI("latest", "auto", `topics = ["opt-latest"]`, ""))
	apis.WriteString(consumerAPI("none", "auto", `topics = ["opt-none"]
      auto_offset_reset = "none"`, ""))
	apis.WriteString(consumerAPI("confluent", "auto", `topics = ["opt-confluent"]
      auto_offset_reset       = "earliest"
      remove_confluent_header = true`, ""))
	apis.WriteString(consumerAPI("plainids", "at-least-once", `topics = ["opt-plain"]
      auto_offset_reset = "earliest"
      encode_message_id = false`, ""))
	apis.WriteString(consumerAPI("exists", "auto", `topics = ["opt-missing-topic"]
      auto_offset_reset     = "earliest"
      check_topic_existence = true`, ""))
	apis.WriteString(consumerAPI("meta", "auto", `topics = ["opt-meta"]
      auto_offset_reset = "earliest"`, ""))
	apis.WriteString(consumerAPI("dyntopics", "auto", `topics = ["opt-meta"]
      auto_offset_reset = "earliest"`, `flow "override" {
    request {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attributes.endpoint.kafka.consumer.topics"
          value = "{#request.headers['X-Topics'][0]}"
        }
      }
    }
  }`))
	apis.WriteString(consumerAPI("groupid", "auto", `topics = ["opt-group"]
      auto_offset_reset = "earliest"`, `flow "group" {
    request {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.groupId"
          value = "fixed-group"
        }
      }
    }
  }`))
	topics := map[string]int{"opt-latest": 1, "opt-none": 1, "opt-confluent": 1, "opt-plain": 1, "opt-meta": 1, "opt-other": 1, "opt-group": 1}
	g := StartGateway(t, apis.String(), topics)

	t.Run("auto_offset_reset latest skips what was there", func(t *testing.T) {
		seed(t, g, "opt-latest", "old")
		type result struct {
			status int
			body   string
			page   getItems
		}
		done := make(chan result, 1)
		go func() {
			status, body, page := getPage(t, g, "/latest", uniqueID("latest"), nil)
			done <- result{status, body, page}
		}()
		// The GET's consumer joins at the end of the partition; a record
		// produced while it polls is delivered, the older one is not.
		time.Sleep(time.Second)
		seed(t, g, "opt-latest", "new")
		r := <-done
		if r.status != 200 || strings.Join(contents(r.page), ",") != "new" {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
	})

	t.Run("auto_offset_reset none without a committed offset is an error message", func(t *testing.T) {
		seed(t, g, "opt-none", "m")
		status, body, page := getPage(t, g, "/none", uniqueID("none"), nil)
		if status != 200 || page.Error == nil || len(page.Items) != 0 {
			t.Fatalf("GET: %d %s", status, body)
		}
	})

	t.Run("remove_confluent_header strips only a present header", func(t *testing.T) {
		g.Produce(t,
			&kgo.Record{Topic: "opt-confluent", Value: append([]byte{0, 0, 0, 0, 42}, "avro-payload"...)},
			&kgo.Record{Topic: "opt-confluent", Value: []byte("plain-payload")},
		)
		status, body, page := getPage(t, g, "/confluent", uniqueID("confluent"), nil)
		if status != 200 || strings.Join(contents(page), ",") != "avro-payload,plain-payload" {
			t.Fatalf("GET: %d %s", status, body)
		}
	})

	t.Run("encode_message_id false gives and takes plain ids", func(t *testing.T) {
		seed(t, g, "opt-plain", "a", "b", "c")
		status, body, page := getPage(t, g, "/plainids?cursor=opt-plain@0%230", uniqueID("plain"), nil)
		if status != 200 || strings.Join(contents(page), ",") != "b,c" {
			t.Fatalf("GET: %d %s", status, body)
		}
		if *page.Items[0].ID != "opt-plain@0#1" || page.Pagination["nextCursor"] != "opt-plain@0#2" {
			t.Fatalf("ids %q, next %q", *page.Items[0].ID, page.Pagination["nextCursor"])
		}
	})

	t.Run("a malformed cursor is a 400 showing the expected form", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, g.URL("/plainids?cursor=garbage"), nil)
		req.Header.Set("Accept", "application/json")
		resp, body := do(t, req)
		if resp.StatusCode != 400 || !strings.Contains(body, "<topic>@<partition>#<offset>") {
			t.Fatalf("GET: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("check_topic_existence fails at once naming the topic", func(t *testing.T) {
		start := time.Now()
		status, body, page := getPage(t, g, "/exists", uniqueID("exists"), nil)
		if status != 200 || page.Error == nil || !strings.Contains(body, "opt-missing-topic") || !strings.Contains(body, "FAILURE_ENDPOINT_CONFIGURATION_INVALID") {
			t.Fatalf("GET: %d %s", status, body)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("took %s: the check must not wait for the poll duration", time.Since(start))
		}
	})

	t.Run("metadata and headers of a record", func(t *testing.T) {
		g.Produce(t,
			&kgo.Record{Topic: "opt-meta", Key: []byte("k1"), Value: []byte("with-key"), Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "h1", Value: []byte("v2")}}},
			&kgo.Record{Topic: "opt-meta", Value: []byte("no-key")},
		)
		status, body, page := getPage(t, g, "/meta", uniqueID("meta"), nil)
		if status != 200 || len(page.Items) != 2 {
			t.Fatalf("GET: %d %s", status, body)
		}
		first, second := page.Items[0], page.Items[1]
		if first.Metadata["key"] != "k1" || first.Metadata["topic"] != "opt-meta" || first.Metadata["partition"] != float64(0) ||
			first.Metadata["offset"] != float64(0) || first.Metadata["sourceTimestamp"] == nil {
			t.Errorf("metadata %v", first.Metadata)
		}
		if _, has := second.Metadata["key"]; has {
			t.Errorf("a record without a key has metadata key: %v", second.Metadata)
		}
		if strings.Join(first.Headers["h1"], ",") != "v1,v2" {
			t.Errorf("headers %v", first.Headers)
		}
	})

	t.Run("gravitee.attributes.endpoint.kafka.consumer.topics overrides per request", func(t *testing.T) {
		seed(t, g, "opt-other", "from-other")
		status, body, page := getPage(t, g, "/dyntopics", uniqueID("dyn"), map[string]string{"X-Topics": "opt-other"})
		if status != 200 || strings.Join(contents(page), ",") != "from-other" {
			t.Fatalf("GET: %d %s", status, body)
		}
	})

	t.Run("gravitee.attribute.kafka.groupId overrides the client identifier", func(t *testing.T) {
		seed(t, g, "opt-group", "g1")
		// Two different client identifiers, one group: the second sees nothing new.
		if _, body, page := getPage(t, g, "/groupid", uniqueID("a"), nil); strings.Join(contents(page), ",") != "g1" {
			t.Fatalf("first: %s", body)
		}
		if _, body, page := getPage(t, g, "/groupid", uniqueID("b"), nil); len(page.Items) != 0 {
			t.Fatalf("second client, same group: %s", body)
		}
	})
}

func TestQoSNoneNeverCommits(t *testing.T) {
	g := StartGateway(t, `
api "none" {
  context_path = "/none"
  entrypoint "sse" { qos = "none" }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["qos-none"]
      auto_offset_reset = "earliest"
    }
  }
}`, map[string]int{"qos-none": 1})
	seed(t, g, "qos-none", "m1", "m2")
	client := uniqueID("none")
	for round := 0; round < 2; round++ {
		r, closeFn := openSSEPath(t, g, "/none", client, "")
		if ev, _ := r.NextEvent(); !retryLine.MatchString(ev) {
			t.Fatalf("round %d: first chunk %q", round, ev)
		}
		for i := 1; i <= 2; i++ {
			// No id line with QoS none: it gives no ids.
			want := fmt.Sprintf("event: message\ndata: m%d\n\n", i)
			if got := nextDataEvent(t, r); got != want {
				t.Fatalf("round %d: got %q want %q", round, got, want)
			}
		}
		closeFn()
	}
}

func openSSEPath(t *testing.T, g *Gateway, path, clientID, lastID string) (*SSEReader, func()) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL(path), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Gravitee-Client-Identifier", clientID)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("SSE %s: %d", path, resp.StatusCode)
	}
	return newSSEReader(resp), func() { resp.Body.Close() }
}

// A cursor naming several topics and partitions resumes each after its offset.
func TestCursorAcrossTopicsAndPartitions(t *testing.T) {
	g := StartGateway(t, `
api "multi" {
  context_path = "/multi"
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 20
    messages_limit_duration_ms = 2500
    metadata_in_payload        = true
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["cur-a", "cur-b"]
      auto_offset_reset = "earliest"
      encode_message_id = false
    }
  }
}`, map[string]int{"cur-a": 2, "cur-b": 1})
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 3; i++ {
			recs = append(recs, &kgo.Record{Topic: "cur-a", Partition: p, Value: []byte(fmt.Sprintf("a%d-%d", p, i))})
		}
	}
	for i := 0; i < 3; i++ {
		recs = append(recs, &kgo.Record{Topic: "cur-b", Value: []byte(fmt.Sprintf("b-%d", i))})
	}
	c := g.Kgo(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := c.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cursor := "cur-a@0#1,1#0;cur-b@0#2"
	status, body, page := getPage(t, g, "/multi?cursor="+strings.NewReplacer("#", "%23", ";", "%3B").Replace(cursor), uniqueID("multi"), nil)
	if status != 200 {
		t.Fatalf("GET: %d %s", status, body)
	}
	got := map[string]bool{}
	for _, it := range page.Items {
		got[it.Content] = true
	}
	want := []string{"a0-2", "a1-1", "a1-2"}
	if len(got) != len(want) {
		t.Fatalf("items %v, want %v", contents(page), want)
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("items %v, want %v", contents(page), want)
		}
	}
}

// Producer fan-out: a publish-phase topics attribute (comma string with a
// space) sends one message to every topic; a request-phase record key keys it.
func TestProducerFanOutAndContextKey(t *testing.T) {
	g := StartGateway(t, `
api "fan" {
  context_path = "/fan"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["fan-default"]
    }
  }
  flow "route" {
    request {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "context-key"
        }
      }
    }
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.topics"
          value = "{#request.headers['X-Topics'][0]}"
        }
      }
    }
  }
}`, map[string]int{"fan-default": 1, "fan-a": 1, "fan-b": 1})
	resp, body := post(t, g, "/fan", "to-both", map[string]string{"X-Topics": "fan-a, fan-b"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	for _, topic := range []string{"fan-a", "fan-b"} {
		r := g.ReadRecords(t, topic, 1, 10*time.Second)[0]
		if string(r.Value) != "to-both" || string(r.Key) != "context-key" {
			t.Errorf("%s: %q key %q", topic, r.Value, r.Key)
		}
	}
	// Without the header the attribute is not set: the configured topic.
	if resp, body := post(t, g, "/fan", "default", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if r := g.ReadRecords(t, "fan-default", 1, 10*time.Second)[0]; string(r.Value) != "default" {
		t.Fatalf("fan-default: %q", r.Value)
	}
}

// A bootstrap that is not an address is a configuration error on the
// message, with HTTP 200 for GET (docs/behaviour.md 1.1 and 2.9).
func TestBadBootstrapIsConfigurationInvalid(t *testing.T) {
	g := StartGateway(t, `
api "bad" {
  context_path = "/bad"
  entrypoint "http-get" {
    qos                        = "auto"
    messages_limit_duration_ms = 3000
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "wrong"
    consumer {
      enabled = true
      topics  = ["t"]
    }
  }
}`, map[string]int{"t": 1})
	status, body, page := getPage(t, g, "/bad", uniqueID("bad"), nil)
	if status != 200 || page.Error == nil || !strings.Contains(body, "FAILURE_ENDPOINT_CONFIGURATION_INVALID") {
		t.Fatalf("GET: %d %s", status, body)
	}
}

// unsecuredJWT mints the unsigned token Kafka's default OAUTHBEARER
// validator accepts.
func unsecuredJWT(sub string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Unix()
	return enc(map[string]string{"alg": "none"}) + "." + enc(map[string]any{"sub": sub, "iat": now, "exp": now + 3600}) + "."
}

// OAUTHBEARER with the token taken per request from a context attribute
// through EL in the JAAS string (docs/behaviour.md 4).
func TestOAuthBearerTokenPerRequest(t *testing.T) {
	needRealKafka(t)
	if !strings.Contains(os.Getenv("SLUICE_KAFKA_SASL_MECHANISMS"), "OAUTHBEARER") {
		t.Skip("the broker does not serve OAUTHBEARER")
	}
	g := StartGateway(t, `
api "oauth" {
  context_path = "/oauth"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{env "SLUICE_KAFKA_SASL_PLAINTEXT"}}"
    security {
      protocol = "SASL_PLAINTEXT"
      sasl {
        mechanism   = "OAUTHBEARER"
        jaas_config = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token=\"{#context.attributes['gravitee.attribute.kafka.oauthbearer.token']}\";"
      }
    }
    producer {
      enabled = true
      topics  = ["oauth-topic"]
    }
  }
  flow "token" {
    request {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.oauthbearer.token"
          value = "{#request.headers['X-Token'][0]}"
        }
      }
    }
  }
}`, map[string]int{"oauth-topic": 1})
	resp, body := post(t, g, "/oauth", "bearer", map[string]string{"X-Token": unsecuredJWT("alice")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with a token: %d %s", resp.StatusCode, body)
	}
	if r := g.ReadRecords(t, "oauth-topic", 1, 10*time.Second)[0]; string(r.Value) != "bearer" {
		t.Fatalf("record %q", r.Value)
	}
	resp, body = post(t, g, "/oauth", "no token", map[string]string{"X-Token": "not-a-jwt"})
	if resp.StatusCode == http.StatusAccepted {
		t.Fatalf("POST with a bad token was accepted: %s", body)
	}
}
