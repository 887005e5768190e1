gateway {
  plugin_dirs = [] # ERROR: plugin_dirs must not be empty
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
