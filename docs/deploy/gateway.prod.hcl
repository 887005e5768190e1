# A production configuration: HTTPS on the listener, an API-key plan, SASL_SSL
# to Kafka, every secret from the environment, limits and JSON logs.
# docs/deploy/README.md explains it; docs/hcl.md is the reference.
#
# Install it as /etc/sluice/gateway.hcl. Relative paths (tls/...) resolve
# against that directory. Environment (systemd: /etc/sluice/sluice.env;
# containers: --env-file), each refused at start-up when missing:
#   KAFKA_BOOTSTRAP    broker list, "b1:9093,b2:9093"
#   KAFKA_USERNAME     SCRAM user of the gateway
#   KAFKA_PASSWORD     its password (no double quote: it goes in a JAAS string)
#   ORDERS_KEY_SHOP    API key of the subscription "shop"
#   ORDERS_KEY_BILLING API key of the subscription "billing"
# Optional, with defaults: SLUICE_LISTEN, SLUICE_ADMIN_LISTEN, SLUICE_PLUGIN_DIR.
# Files, next to this one:
#   tls/gateway.crt, tls/gateway.key   the listener's certificate chain and key
#   tls/kafka-ca.pem                   the CA of the brokers' certificates

gateway {
  listen = env("SLUICE_LISTEN", "0.0.0.0:8443")
  # /health, /ready, /metrics, /apis, /plugins: keep it off the public
  # network. A container publishes it for Prometheus with
  # SLUICE_ADMIN_LISTEN=0.0.0.0:18082 and no published port outside the
  # cluster network.
  admin_listen = env("SLUICE_ADMIN_LISTEN", "127.0.0.1:18082")
  plugin_dir   = env("SLUICE_PLUGIN_DIR", "/opt/sluice/plugins")

  # Pin each plugin to the binary you installed (sha256sum
  # /opt/sluice/plugins/*), so a replaced binary is not started:
  # plugin "endpoint-kafka" { sha256 = "..." }

  tls {
    cert_file = "tls/gateway.crt" # SIGHUP (or the file watch) reloads a renewed pair
    key_file  = "tls/gateway.key"
  }

  limits {
    max_connections             = 20000
    max_connections_per_ip      = 200
    max_request_body_bytes      = 1048576 # 1 MiB: one POST is one Kafka record
    read_timeout_ms             = 15000
    idle_timeout_ms             = 60000
    websocket_max_message_bytes = 1048576
  }

  log {
    format     = "json"
    level      = "info"
    access_log = true
  }

  # Under systemd, `systemctl reload sluice` sends SIGHUP. Where files are
  # replaced whole (a mounted ConfigMap, a deployment tool), the gateway can
  # reload by itself when they change; a broken file is rejected either way.
  reload {
    watch       = false
    debounce_ms = 1000
  }
}

api "orders" {
  context_path = "/orders"

  # Only callers with a key; each subscription is its own Kafka consumer
  # group. For tokens from an identity provider, use plan "jwt" with
  # jwks_url instead (docs/hcl.md#plan-jwt).
  plan "api-key" {
    subscription "shop" { api_key = env("ORDERS_KEY_SHOP") }
    subscription "billing" { api_key = env("ORDERS_KEY_BILLING") }
  }

  entrypoint "http-post" {}
  entrypoint "sse" {
    qos                 = "at-least-once"
    metadata_as_comment = true
  }
  entrypoint "http-get" {
    qos                  = "at-least-once"
    messages_limit_count = 100
  }

  endpoint "kafka" "default" {
    bootstrap_servers = env("KAFKA_BOOTSTRAP")
    security {
      protocol = "SASL_SSL"
      sasl {
        mechanism   = "SCRAM-SHA-512"
        jaas_config = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"${env("KAFKA_USERNAME")}\" password=\"${env("KAFKA_PASSWORD")}\";"
      }
      ssl {
        truststore {
          type         = "PEM"
          certificates = file("tls/kafka-ca.pem")
        }
      }
    }
    producer {
      enabled          = true
      topics           = ["orders"]
      compression_type = "zstd"
    }
    consumer {
      enabled           = true
      topics            = ["orders"]
      auto_offset_reset = "earliest"
    }
  }
}
