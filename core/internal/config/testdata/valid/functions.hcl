# env() and file() are available in every expression, plugin blocks included.
gateway {
  plugin_dir = env("SLUICE_CONFIG_TEST_PLUGIN_DIR", "/opt/sluice/plugins")
}

dev_kafka {}

api "demo" {
  context_path = "/${env("SLUICE_CONFIG_TEST_API")}"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = env("SLUICE_CONFIG_TEST_SERVERS")
    security {
      protocol = "SASL_PLAINTEXT"
      sasl {
        mechanism   = "PLAIN"
        jaas_config = file("jaas.txt")
      }
    }
  }
}
