api "orders" {
  context_path = "/orders"
  plan "push" {
    subscription "billing-hook" {
      callback_url = "https://billing.example/hooks/orders"
      header {
        name  = "X-Token"
        value = "secret"
      }
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "EXPONENTIAL"
        max_attempts          = 5
        initial_delay_seconds = 1
        max_delay_seconds     = 30
      }
      dlq { endpoint = "dead" }
      auth {
        type = "oauth2"
        oauth2 {
          endpoint      = "https://id.example/token"
          client_id     = "gw"
          client_secret = "s3cret"
          scopes        = ["hooks"]
        }
      }
      ssl {
        trust_all = true
      }
    }
    subscription "audit" {
      callback_url = "http://127.0.0.1:8099/audit"
      auth {
        type = "basic"
        basic {
          username = "u"
          password = "p"
        }
      }
    }
  }
  entrypoint "webhook" {
    qos = "at-least-once"
    http { read_timeout = 5000 }
  }
  endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }
  endpoint "kafka" "dead" {
    bootstrap_servers = "127.0.0.1:9092"
    producer {
      enabled = true
      topics  = ["orders-dlq"]
    }
  }
}
