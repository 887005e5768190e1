gateway {
  plugin_dirs = ["third-party", "/opt/sluice/plugins/", "bin/plugins"]
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
