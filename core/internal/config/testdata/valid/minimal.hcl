# No gateway block: every gateway setting takes its default.
api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }
}
