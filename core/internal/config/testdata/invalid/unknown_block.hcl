gatway {} # ERROR: Did you mean "gateway"?

gateway {
  listen_addr = "0.0.0.0:80" # ERROR: gateway: Unsupported argument
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpiont "kafka" "x" {} # ERROR: Did you mean "endpoint"?
  endpoint "kafka" "default" {
    bootstrap_servers = "k:9092"
    consumr { enabled = true } # ERROR: Blocks of type "consumr" are not expected here. Did you mean "consumer"?
  }
}
