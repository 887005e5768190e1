api "demo" {
  context_path = "/demo"
  entrypoint "http-get" { messages_limit_count = "many" } # ERROR: Incorrect attribute value type
  entrypoint "websocket" {
    publisher { enabled = "yes" } # ERROR: a bool is required
    subscriber {}
    subscriber {} # ERROR: Duplicate subscriber block
  }
  endpoint "kafka" "default" {
    bootstrap_servers = ["a", "b"] # ERROR: string required
    properties        = { a = ["x"] } # ERROR: Incorrect attribute value type
  }
}
