package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A flow's path parameter names the topic a POST is produced to; requests
// the flow's path does not match go to the endpoint's own topic.
func TestFlowPathParameterChoosesProducerTopic(t *testing.T) {
	g := StartGateway(t, `
api "orders" {
  context_path = "/orders"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["orders-default"]
    }
  }
  flow "by-topic" {
    path    = "/:topic"
    methods = ["POST"]
    request {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.topics"
          value = "orders-{#request.pathParams['topic']}"
        }
      }
    }
  }
}`, map[string]int{"orders-default": 1, "orders-eu": 1, "orders-us": 1})
	for path, body := range map[string]string{"/orders/eu": "to-eu", "/orders/us/extra": "to-us", "/orders": "to-default"} {
		if resp, b := post(t, g, path, body, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	for topic, want := range map[string]string{"orders-eu": "to-eu", "orders-us": "to-us", "orders-default": "to-default"} {
		recs := g.ReadRecords(t, topic, 1, 20*time.Second)
		if got := string(recs[0].Value); got != want {
			t.Errorf("topic %s holds %q first, want %q", topic, got, want)
		}
	}
}

// A request header decides which of two flows keys the published record; a
// request matching neither condition gets no key.
func TestFlowHeaderConditionSwitchesFlow(t *testing.T) {
	g := StartGateway(t, `
api "tenants" {
  context_path = "/tenants"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["tenants"]
    }
  }
  flow "vip" {
    condition = "{#request.headers['X-Tenant'] != null && #request.headers['X-Tenant'][0] == 'vip'}"
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "vip-key"
        }
      }
    }
  }
  flow "anonymous" {
    condition = "{#request.headers['X-Tenant'] == null}"
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "anonymous-key"
        }
      }
    }
  }
}`, map[string]int{"tenants": 1})
	sends := []struct {
		tenant, body string
	}{{"vip", "m1"}, {"", "m2"}, {"acme", "m3"}}
	for _, s := range sends {
		h := map[string]string{}
		if s.tenant != "" {
			h["X-Tenant"] = s.tenant
		}
		if resp, b := post(t, g, "/tenants", s.body, h); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", s.body, resp.StatusCode, b)
		}
	}
	recs := g.ReadRecords(t, "tenants", 3, 20*time.Second)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s=%s", r.Value, r.Key))
	}
	if want := "m1=vip-key,m2=anonymous-key,m3="; strings.Join(got, ",") != want {
		t.Fatalf("records %v, want %s", got, want)
	}
}

// A step's message_condition keys only the messages it is true for; the
// others are produced untouched (no key), in order.
func TestFlowMessageConditionKeysOnlySomeMessages(t *testing.T) {
	g := StartGateway(t, `
api "keys" {
  context_path = "/keys"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["keys"]
    }
  }
  flow "vip-keys" {
    publish {
      policy "assign-attributes" {
        message_condition = "{#message.content matches 'vip:.*'}"
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "vip"
        }
      }
      policy "assign-attributes" {
        enabled = false
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "disabled-step-ran"
        }
      }
    }
  }
}`, map[string]int{"keys": 1})
	for _, body := range []string{"vip:1", "plain", "vip:2"} {
		if resp, b := post(t, g, "/keys", body, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", body, resp.StatusCode, b)
		}
	}
	recs := g.ReadRecords(t, "keys", 3, 20*time.Second)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s=%s", r.Value, r.Key))
	}
	if want := "vip:1=vip,plain=,vip:2=vip"; strings.Join(got, ",") != want {
		t.Fatalf("records %v, want %s", got, want)
	}
}

// A subscribe-phase message-filtering step drops messages from an SSE
// stream; the ids of the messages delivered are still positions a client
// resumes from, and the dropped ones stay dropped on resume.
func TestFlowMessageFilteringDropsFromSSEWithResumableIds(t *testing.T) {
	g := StartGateway(t, `
api "filtered" {
  context_path = "/filtered"
  entrypoint "sse" {
    qos                      = "at-least-once"
    heartbeat_interval_in_ms = 2000
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    consumer {
      enabled           = true
      topics            = ["filtered"]
      auto_offset_reset = "earliest"
    }
  }
  flow "keep-only" {
    subscribe {
      policy "message-filtering" {
        filter = "{#message.content matches 'keep:.*'}"
      }
    }
  }
}`, map[string]int{"filtered": 1})
	seed(t, g, "filtered", "keep:0", "drop:1", "drop:2", "keep:3", "drop:4", "keep:5")
	event := func(offset int) string {
		return fmt.Sprintf("id: %s\nevent: message\ndata: keep:%d\n\n", b64(fmt.Sprintf("filtered@0#%d", offset)), offset)
	}
	expect := func(r *SSEReader, offsets ...int) {
		t.Helper()
		if ev, _ := r.NextEvent(); !retryLine.MatchString(ev) {
			t.Fatalf("first chunk %q, want retry", ev)
		}
		for _, o := range offsets {
			if got, want := nextDataEvent(t, r), event(o); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}

	r, closeFn := openSSEPath(t, g, "/filtered", uniqueID("filter"), "")
	expect(r, 0, 3, 5)
	closeFn()

	// Resuming from a delivered id skips what was filtered after it.
	r2, close2 := openSSEPath(t, g, "/filtered", uniqueID("filter-resume"), b64("filtered@0#0"))
	expect(r2, 3, 5)
	close2()

	// New records after a resume point: only the kept one arrives, right
	// after the last delivered id.
	r3, close3 := openSSEPath(t, g, "/filtered", uniqueID("filter-live"), b64("filtered@0#5"))
	defer close3()
	if ev, _ := r3.NextEvent(); !retryLine.MatchString(ev) {
		t.Fatalf("first chunk %q, want retry", ev)
	}
	seed(t, g, "filtered", "drop:6", "keep:7")
	if got, want := nextDataEvent(t, r3), event(7); got != want {
		t.Fatalf("live: got %q, want %q", got, want)
	}
}
