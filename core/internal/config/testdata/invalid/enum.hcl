api "demo" {
  context_path = "/demo"
  entrypoint "sse" { qos = "at_least_once" } # ERROR: Invalid value for "qos": "at_least_once"; allowed values are "none", "auto", "at-most-once", "at-least-once"
  endpoint "kafka" "default" {
    bootstrap_servers = "127.0.0.1:9092"
    security { protocol = "plaintext" } # ERROR: Values are case-sensitive: write "PLAINTEXT".
    consumer {
      auto_offset_reset = "bogus" # ERROR: Invalid value for "auto_offset_reset": "bogus"; allowed values are "earliest", "latest", "none"
    }
    producer {
      compression_type = "lz5" # ERROR: Did you mean "lz4"?
    }
  }
}
