gateway {
  plugin_dir  = "bin/plugins"
  plugin_dirs = ["bin/plugins", "third-party"] # ERROR: plugin_dir and plugin_dirs are both set
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
