api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "demo" { # ERROR: Duplicate api "demo"
  context_path = "/demo" # ERROR: Duplicate context path "/demo"
  entrypoint "http-post" {}
  entrypoint "sse" {}
  entrypoint "server-sent-events" {} # ERROR: Duplicate entrypoint "sse"
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  endpoint "kafka" "default" { bootstrap_servers = "k:9093" } # ERROR: Duplicate endpoint name "default"
}
