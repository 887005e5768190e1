api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { # ERROR: api "demo" > endpoint "kafka" "default": Missing required argument
    consumer { topics = ["demo"] }
  }
  flow "f" {
    request {
      policy "assign-attributes" {
        attribute { name = "x" } # ERROR: The argument "value" is required
      }
    }
  }
}

api "no-path" { # ERROR: api "no-path": Missing required argument
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
