# The runnable demo: `make run`, then follow the walk-through in README.md.
# The HCL reference for every block is docs/hcl.md.

gateway {
  listen       = "127.0.0.1:8082"
  admin_listen = "127.0.0.1:18082" # /health, /ready, /metrics, /apis, /plugins
  plugin_dir   = "bin/plugins"
}

# An embedded Kafka-compatible broker, persisted on disk, for development.
dev_kafka {
  listen   = "127.0.0.1:9092"
  data_dir = ".sluice/kafka"
  topics   = { demo = 3 }
}

api "demo" {
  context_path = "/demo"
  plan "keyless" {}

  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 500
    messages_limit_duration_ms = 5000
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

  # Messages with an X-Key header are keyed by it, so they keep their order
  # on one partition.
  flow "keys" {
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
