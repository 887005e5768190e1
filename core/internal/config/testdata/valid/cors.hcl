# Every cors attribute, and the forms of origins and patterns.
api "browser" {
  context_path = "/browser"
  entrypoint "sse" {}
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }

  cors {
    allow_origins = [
      "https://app.example.com",
      "http://localhost:3000",
      "http://[::1]:8080",
      "null",
    ]
    allow_origin_regex = ["https://[a-z0-9-]+\\.preview\\.example\\.com"]
    allow_methods      = ["GET", "POST", "PATCH"]
    allow_headers      = ["Last-Event-ID", "X-Gravitee-Client-Identifier", "Content-Type"]
    expose_headers     = ["X-Gravitee-Transaction-Id", "X-Gravitee-Client-Identifier"]
    max_age_seconds    = 3600
    allow_credentials  = true
  }
}

# Defaults: any origin, GET and POST, no headers, no max age.
api "public" {
  context_path = "/public"
  entrypoint "sse" {}
  endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }
  cors { allow_origins = ["*"] }
}

# A switched-off block is checked, and gives no CORS.
api "off" {
  context_path = "/off"
  entrypoint "sse" {}
  endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }
  cors {
    enabled        = false
    allow_origins  = ["*"]
    allow_methods  = ["*"]
    allow_headers  = ["*"]
    expose_headers = ["*"]
  }
}

api "none" {
  context_path = "/none"
  entrypoint "sse" {}
  endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }
}
