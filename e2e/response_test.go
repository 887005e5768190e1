package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// responseAPI has a request-phase transform-headers step whose header
// reaches the Kafka record (request_headers_to_message), and response-phase
// steps that stamp every answer, remove one of the gateway's own headers,
// and add one more only when a request header asks for it.
const responseAPI = `
api "resp" {
  context_path = "/resp"
  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 1
    messages_limit_duration_ms = 3000
  }
  entrypoint "sse" { qos = "at-least-once" }
  entrypoint "websocket" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["resp"]
    }
    consumer {
      enabled           = true
      topics            = ["resp"]
      auto_offset_reset = "earliest"
    }
  }
  flow "headers" {
    request {
      policy "transform-headers" {
        add_header {
          name  = "X-Tenant"
          value = "t-{#request.headers['X-In'][0]}"
        }
        remove_headers = ["X-Secret"]
      }
    }
    response {
      policy "transform-headers" {
        add_header {
          name  = "X-Served-By"
          value = "{#request.method}-{#api.id}"
        }
        remove_headers = ["X-Gravitee-Request-Id"]
      }
      policy "transform-headers" {
        condition = "{#request.headers['X-Want'] != null}"
        add_header {
          name  = "X-Wanted"
          value = "yes"
        }
      }
    }
  }
}`

func TestResponsePhaseHeaders(t *testing.T) {
	g := StartGateway(t, responseAPI, map[string]int{"resp": 1})

	// The answer's headers as the response phase left them: its own, and
	// the gateway's X-Gravitee-Request-Id removed (X-Gravitee-Transaction-Id
	// kept, so the removal is the step's doing, not a missing header).
	checkHeaders := func(t *testing.T, h http.Header, method string, wanted bool) {
		t.Helper()
		if got := h.Get("X-Served-By"); got != method+"-resp" {
			t.Errorf("X-Served-By = %q, want %q", got, method+"-resp")
		}
		if got := h.Get("X-Gravitee-Request-Id"); got != "" {
			t.Errorf("X-Gravitee-Request-Id = %q, want it removed by the response phase", got)
		}
		if h.Get("X-Gravitee-Transaction-Id") == "" {
			t.Errorf("X-Gravitee-Transaction-Id missing; only the request id was to be removed")
		}
		if got := h.Get("X-Wanted"); (got == "yes") != wanted {
			t.Errorf("X-Wanted = %q with the condition %v", got, wanted)
		}
	}

	t.Run("POST 202 and the request-phase header in the record", func(t *testing.T) {
		resp, body := post(t, g, "/resp", "m1", map[string]string{"X-In": "eu", "X-Secret": "s", "X-Want": "1"})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %d %q", resp.StatusCode, body)
		}
		checkHeaders(t, resp.Header, "POST", true)
		recs := g.ReadRecords(t, "resp", 1, 20*time.Second)
		var tenant []string
		for _, h := range recs[0].Headers {
			if strings.EqualFold(h.Key, "X-Secret") {
				t.Errorf("record carries X-Secret, which the request phase removed")
			}
			if strings.EqualFold(h.Key, "X-Tenant") {
				tenant = append(tenant, string(h.Value))
			}
		}
		if len(tenant) != 1 || tenant[0] != "t-eu" {
			t.Errorf("record X-Tenant headers %q, want [t-eu] from the request phase", tenant)
		}
	})

	t.Run("GET", func(t *testing.T) {
		resp, body := get(t, g, "/resp", uniqueID("resp-get"))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"content":"m1"`) {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
		checkHeaders(t, resp.Header, "GET", false)
	})

	t.Run("SSE", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, g.URL("/resp"), nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Gravitee-Client-Identifier", uniqueID("resp-sse"))
		req.Header.Set("X-Want", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("SSE: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		checkHeaders(t, resp.Header, "GET", true)
		// The stream itself still flows after the phase.
		r := newSSEReader(resp)
		if ev, _ := r.NextEvent(); !retryLine.MatchString(ev) {
			t.Fatalf("first chunk %q, want retry", ev)
		}
		if ev := nextDataEvent(t, r); !strings.Contains(ev, "data: m1\n") {
			t.Fatalf("event %q, want m1", ev)
		}
	})

	t.Run("WebSocket upgrade", func(t *testing.T) {
		c, resp, err := websocket.DefaultDialer.Dial("ws://"+g.Listen+"/resp", http.Header{"X-Gravitee-Client-Identifier": {uniqueID("resp-ws")}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %d", resp.StatusCode)
		}
		checkHeaders(t, resp.Header, "GET", false)
	})
}
