package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// getItems is an HTTP GET page decoded loosely, for assertions that cannot be
// byte-exact (metadata carries timestamps).
type getItems struct {
	Items []struct {
		ID       *string             `json:"id"`
		Content  string              `json:"content"`
		Metadata map[string]any      `json:"metadata"`
		Headers  map[string][]string `json:"headers"`
	} `json:"items"`
	Error      map[string]any    `json:"error"`
	Pagination map[string]string `json:"pagination"`
}

func getPage(t *testing.T, g *Gateway, path, clientID string, headers map[string]string) (int, string, getItems) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL(path), nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Gravitee-Client-Identifier", clientID)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, body := do(t, req)
	var page getItems
	if resp.StatusCode == 200 {
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode, body, page
}

func contents(p getItems) []string {
	out := []string{}
	for _, it := range p.Items {
		out = append(out, it.Content)
	}
	return out
}

// docs/behaviour.md section 7, vector 1: QoS auto commits only what was delivered,
// gives no ids and no pagination.
func TestVector1HTTPGetAutoCommitsOnlyDelivered(t *testing.T) {
	g := StartGateway(t, `
api "v1" {
  context_path = "/v1"
  entrypoint "http-get" {
    qos                        = "auto"
    messages_limit_count       = 2
    messages_limit_duration_ms = 2000
    metadata_in_payload        = true
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["test-topic"]
      auto_offset_reset = "earliest"
    }
  }
}`, map[string]int{"test-topic": 1})
	seed(t, g, "test-topic", "message1", "message2", "message3")
	client := uniqueID("v1")
	want := [][]string{{"message1", "message2"}, {"message3"}, {}}
	for i, w := range want {
		status, body, page := getPage(t, g, "/v1", client, nil)
		if status != 200 || strings.Join(contents(page), ",") != strings.Join(w, ",") {
			t.Fatalf("GET #%d: %d %s, want items %v", i+1, status, body, w)
		}
		if page.Pagination != nil || strings.Contains(body, `"id"`) {
			t.Fatalf("GET #%d: auto QoS must give no ids and no pagination: %s", i+1, body)
		}
		for _, it := range page.Items {
			if it.Metadata["topic"] != "test-topic" || it.Metadata["key"] != "key" || it.Metadata["sourceTimestamp"] == nil {
				t.Fatalf("GET #%d: metadata %v", i+1, it.Metadata)
			}
		}
	}
}

// docs/behaviour.md section 7, vector 3: a request-phase topics attribute (comma
// string, with a space) makes one request consume both topics.
func TestVector3TopicsAttributeConsumesEveryTopic(t *testing.T) {
	g := StartGateway(t, `
api "v3" {
  context_path = "/v3"
  entrypoint "http-get" {
    qos                        = "auto"
    messages_limit_count       = 3
    messages_limit_duration_ms = 8000
    metadata_in_payload        = true
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["test-topic"]
      auto_offset_reset = "earliest"
    }
  }
  flow "topics" {
    request {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.topics"
          value = "test-topic, test-topic-attribute"
        }
      }
    }
  }
}`, map[string]int{"test-topic": 1, "test-topic-attribute": 1})
	seed(t, g, "test-topic", "message1", "message2")
	seed(t, g, "test-topic-attribute", "another-message")
	status, body, page := getPage(t, g, "/v3", uniqueID("v3"), nil)
	if status != 200 || len(page.Items) != 3 {
		t.Fatalf("GET: %d %s, want 3 items", status, body)
	}
	perTopic := map[string][]string{}
	for _, it := range page.Items {
		topic, _ := it.Metadata["topic"].(string)
		perTopic[topic] = append(perTopic[topic], it.Content)
	}
	if strings.Join(perTopic["test-topic"], ",") != "message1,message2" || strings.Join(perTopic["test-topic-attribute"], ",") != "another-message" {
		t.Fatalf("items per topic %v", perTopic)
	}
}

// docs/behaviour.md section 7, vector 4: EL in auto_offset_reset; a value that is
// not valid after evaluation is a request-level 500.
func TestVector4DynamicConfigurationViolationIs500(t *testing.T) {
	g := StartGateway(t, `
api "v4" {
  context_path = "/v4"
  entrypoint "http-get" {
    qos                        = "auto"
    messages_limit_count       = 2
    messages_limit_duration_ms = 3000
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["test-topic"]
      auto_offset_reset = "{#request.headers['X-AutoOffsetReset'][0]}"
    }
  }
}`, map[string]int{"test-topic": 1})
	seed(t, g, "test-topic", "message1", "message2")
	status, body, _ := getPage(t, g, "/v4", uniqueID("v4"), map[string]string{"X-AutoOffsetReset": "constraint_violation"})
	if status != 500 || body != `{"message":"Invalid configuration","http_status_code":500}` {
		t.Fatalf("violation: %d %s", status, body)
	}
	status, body, page := getPage(t, g, "/v4", uniqueID("v4"), map[string]string{"X-AutoOffsetReset": "earliest"})
	if status != 200 || strings.Join(contents(page), ",") != "message1,message2" {
		t.Fatalf("earliest: %d %s", status, body)
	}
}

// Two subscribers with one client identifier share a consumer group: they
// split the records and none is delivered twice (docs/behaviour.md 2.2).
func TestSharedClientIdentifierSplitsRecordsWithoutDuplicates(t *testing.T) {
	g := StartGateway(t, `
api "shared" {
  context_path = "/shared"
  entrypoint "sse" { qos = "auto" }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["shared-topic"]
      auto_offset_reset = "earliest"
    }
  }
}`, map[string]int{"shared-topic": 4})
	client := uniqueID("shared")
	const total = 40
	var mu sync.Mutex
	seen := map[string]int{}
	perReader := make([]int, 2)
	ready := make(chan struct{}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL("/shared"), nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Gravitee-Client-Identifier", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("reader %d: %v %v", i, err, resp)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer resp.Body.Close()
			r := &SSEReader{r: bufio.NewReader(resp.Body)}
			for {
				ev, err := r.NextEvent()
				if err != nil {
					return
				}
				if strings.HasPrefix(ev, "retry:") {
					ready <- struct{}{}
					continue
				}
				for _, line := range strings.Split(ev, "\n") {
					if v, ok := strings.CutPrefix(line, "data: "); ok {
						mu.Lock()
						seen[v]++
						perReader[i]++
						mu.Unlock()
					}
				}
			}
		}(i)
		// The second reader joins once the first holds its partitions, and
		// the records are produced once both hold theirs.
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("reader %d never became ready", i)
		}
	}
	var recs []*kgo.Record
	for i := 0; i < total; i++ {
		recs = append(recs, &kgo.Record{Topic: "shared-topic", Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("r%02d", i))})
	}
	g.Produce(t, recs...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Give a duplicate the time to show up.
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		t.Fatalf("%d distinct records delivered, want %d", len(seen), total)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s delivered %d times", v, n)
		}
	}
	if perReader[0] == 0 || perReader[1] == 0 {
		t.Errorf("records per reader %v: the group did not split them", perReader)
	}
}
