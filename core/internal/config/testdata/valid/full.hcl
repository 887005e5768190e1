# The shape docs/hcl.md documents, with every block in use. (HCL's
# one-line blocks hold at most one argument, so some blocks span lines here.)
gateway {
  listen       = "127.0.0.1:8082"
  admin_listen = "127.0.0.1:18082"
  plugin_dir   = "bin/plugins"

  plugin "endpoint-kafka" {
    sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
  }

  log {
    format     = "json"
    level      = "info"
    access_log = true
  }
}

dev_kafka {
  listen   = "127.0.0.1:9092"
  data_dir = ".sluice/kafka"
  topics   = { demo = 3, "orders.v1" = 1 }
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
    publisher  { enabled = true }
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

api "orders" {
  context_path = "/"

  entrypoint "sse" {}

  endpoint "kafka" "primary" {
    bootstrap_servers = "broker-1:9092,broker-2:9092"
    properties        = { "client.id" = "sluice" }
    security {
      protocol = "SASL_SSL"
      sasl {
        mechanism   = "SCRAM-SHA-512"
        jaas_config = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
      }
    }
    consumer { topic_pattern = "orders-.*" }
  }

  flow "all-phases" {
    request {
      policy "transform-headers" { set = { "X-Gateway" = "sluice" } }
      policy "assign-attributes" {
        attribute {
          name  = "a"
          value = "1"
        }
        attribute {
          name  = "b"
          value = "2"
        }
      }
      policy "transform-headers" { remove = ["Server"] }
    }
    subscribe {
      policy "assign-attributes" {}
    }
  }

  flow "empty" {}
}
