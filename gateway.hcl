# The runnable demo: `make run`, then follow the walk-through in README.md.
# The HCL reference for every block is docs/hcl.md.

gateway {
  listen       = "127.0.0.1:8082"
  admin_listen = "127.0.0.1:18082" # /health, /ready, /metrics, /apis, /plugins
  plugin_dir   = "bin/plugins"

  log {
    format     = "text" # or "json", one object a line, for log collectors
    level      = "info"
    access_log = true # one line per request: id, API, entrypoint, plan, client, status, duration, bytes, messages
  }
}

# An embedded Kafka-compatible broker, persisted on disk, for development.
dev_kafka {
  listen   = "127.0.0.1:9092"
  data_dir = ".sluice/kafka"
  topics   = { demo = 3, demo-dlq = 1 }
}

api "demo" {
  context_path = "/demo"
  plan "keyless" {}
  # Webhooks: every message of the demo topic is POSTed to the receiver of
  # examples/webhook-receiver (`go run ./examples/webhook-receiver`). While it
  # is not running, deliveries are retried and nothing is lost.
  plan "push" {
    subscription "demo-hook" {
      callback_url = "http://127.0.0.1:8099/demo"
      header {
        name  = "X-Demo"
        value = "sluice"
      }
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "EXPONENTIAL"
        max_attempts          = 1000
        initial_delay_seconds = 1
        max_delay_seconds     = 30
      }
      dlq { endpoint = "dead" }
    }
  }

  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 500
    # A GET answers when it has messages_limit_count records or after this
    # long, whichever comes first: 1 s keeps the demo snappy.
    messages_limit_duration_ms = 1000
  }
  entrypoint "sse" {
    qos                      = "at-least-once"
    heartbeat_interval_in_ms = 5000
    metadata_as_comment      = true
  }
  entrypoint "websocket" {
    publisher { enabled = true }
    subscriber { enabled = true }
  }
  # Runs the push subscriptions below: the gateway consumes and POSTs.
  entrypoint "webhook" {
    qos = "at-least-once"
    http { read_timeout = 5000 }
  }

  endpoint "kafka" "default" {
    bootstrap_servers = "127.0.0.1:9092"
    security { protocol = "PLAINTEXT" }
    producer {
      enabled          = true
      topics           = ["demo"]
      compression_type = "lz4"
    }
    consumer {
      enabled           = true
      topics            = ["demo"]
      auto_offset_reset = "earliest"
      encode_message_id = true
    }
  }

  # A named target: the demo-hook's dead letters go here.
  endpoint "kafka" "dead" {
    bootstrap_servers = "127.0.0.1:9092"
    producer {
      enabled = true
      topics  = ["demo-dlq"]
    }
  }

  # Messages with an X-Key header are keyed by it, so they keep their order
  # on one partition. The condition leaves the rest alone: without it the
  # policy would meet a missing header (a normal request) on every message.
  flow "keys" {
    condition = "{#request.headers['X-Key'] != null}"
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "{#request.headers['X-Key'][0]}"
        }
      }
    }
  }
}

# The same topic behind an API key: send it as the X-Gravitee-Api-Key header
# (or ?api-key=...). The subscription id "demo-client" is the client
# identifier, so every reader with this key shares one consumer group.
# Set DEMO_API_KEY for anything but a local try-out.
api "demo-keyed" {
  context_path = "/demo-keyed"
  plan "api-key" {
    subscription "demo-client" { api_key = env("DEMO_API_KEY", "demo-key-change-me") }
  }

  entrypoint "http-post" {}
  entrypoint "http-get" { qos = "at-least-once" }
  entrypoint "sse" { qos = "at-least-once" }

  endpoint "kafka" "default" {
    bootstrap_servers = "127.0.0.1:9092"
    producer {
      enabled = true
      topics  = ["demo"]
    }
    consumer {
      enabled           = true
      topics            = ["demo"]
      auto_offset_reset = "earliest"
    }
  }
}
