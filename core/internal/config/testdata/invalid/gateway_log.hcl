gateway {
  log {
    format     = "logfmt" # ERROR: Invalid format "logfmt"
    level      = "verbose" # ERROR: Invalid level "verbose"
    access_log = "sometimes" # ERROR: Incorrect attribute value type
    colour     = true # ERROR: Unsupported argument
  }
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
