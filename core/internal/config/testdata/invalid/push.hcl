api "orders" {
  context_path = "/orders"
  plan "keyless" {}
  plan "push" {
    subscription "bad-url" {
      callback_url = "ftp://billing.example/hooks" # ERROR: Invalid callback_url "ftp://billing.example/hooks"
    }
    subscription "bad-dlq" { # ERROR: Unknown dlq endpoint "daed" # ERROR: Did you mean "dead"?
      callback_url = "http://127.0.0.1:9/hook"
      dlq { endpoint = "daed" }
    }
    subscription "bad-retry" {
      callback_url = "http://127.0.0.1:9/hook"
      retry { retry_strategy = "QUADRATIC" } # ERROR: allowed values are "LINEAR", "EXPONENTIAL"
    }
    subscription "bad-auth" {
      callback_url = "http://127.0.0.1:9/hook"
      auth { type = "digest" } # ERROR: allowed values are "basic", "token", "oauth2"
    }
    subscription "no-secret" {
      callback_url = "http://127.0.0.1:9/hook"
      auth {
        type = "oauth2"
        oauth2 { # ERROR: The argument "client_secret" is required
          endpoint  = "http://127.0.0.1:9/token"
          client_id = "gw"
        }
      }
    }
    subscription "bad-url" {} # ERROR: Duplicate subscription "bad-url"
    subscription "stray" {
      callback_url = "http://127.0.0.1:9/hook"
      url          = "x" # ERROR: An argument named "url" is not expected here
    }
  }
  entrypoint "webhook" { qos = "at-least-once" }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  endpoint "kafka" "dead" { bootstrap_servers = "k:9092" }
}

api "no-webhook" {
  context_path = "/nw"
  plan "push" { # ERROR: Push subscriptions need a webhook entrypoint
    subscription "s" { callback_url = "http://127.0.0.1:9/hook" }
  }
  plan "keyless" {}
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "push-only" {
  context_path = "/po"
  plan "push" {
    subscription "s" { callback_url = "http://127.0.0.1:9/hook" }
  }
  entrypoint "webhook" {}
  entrypoint "sse" {} # ERROR: No plan for the "sse" entrypoint
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "empty-push" {
  context_path = "/ep"
  plan "push" {} # ERROR: A push plan delivers to its subscriptions
  entrypoint "webhook" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
