# An alias names the same type as its canonical name.
api "alias" {
  context_path = "/alias"
  entrypoint "server-sent-events" { heartbeat_interval_in_ms = 1000 }
  entrypoint "http-get" {}
  endpoint "kafka" "a" { bootstrap_servers = "k:9092" }
}
