package e2e

import (
	"net/http"
	"testing"
)

// A cors block lets a page on another origin call the API: the preflight is
// answered by the gateway and responses carry the allow headers.
func TestCORSPreflightAndStreamHeaders(t *testing.T) {
	g := StartGateway(t, `
api "cors" {
  context_path = "/cors"
  entrypoint "sse" {}
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "{{.Kafka}}"
    producer {
      enabled = true
      topics  = ["cors-topic"]
    }
    consumer {
      enabled = true
      topics  = ["cors-topic"]
    }
  }
  cors {
    allow_origins  = ["https://app.example.com"]
    allow_methods  = ["GET", "POST"]
    allow_headers  = ["X-Gravitee-Client-Identifier"]
    expose_headers = ["X-Gravitee-Transaction-Id"]
  }
}`, map[string]int{"cors-topic": 1})

	pre := func(origin, method string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, g.URL("/cors"), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "x-gravitee-client-identifier")
		resp, _ := do(t, req)
		return resp
	}
	if resp := pre("https://app.example.com", "POST"); resp.StatusCode != 200 ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := pre("https://evil.example.com", "POST"); resp.StatusCode == 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := pre("https://app.example.com", "DELETE"); resp.StatusCode == 200 {
		t.Fatalf("a method not allowed passed the preflight: %d", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodGet, g.URL("/cors"), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Origin", "https://app.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Expose-Headers") != "X-Gravitee-Transaction-Id" {
		t.Fatalf("SSE response: %d %v", resp.StatusCode, resp.Header)
	}
}
