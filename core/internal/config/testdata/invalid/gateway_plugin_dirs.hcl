gateway {
  plugin_dirs = [
    "", # ERROR: a plugin_dirs entry is empty
    "bin/plugins",
    "./bin/plugins", # ERROR: plugin_dirs lists
  ]
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
