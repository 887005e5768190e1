api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  flow "f" {
    pubish {} # ERROR: Unknown phase "pubish"
    enabled = true # ERROR: put it inside a policy block
    request {
      policy "transform-headers" {}
    }
    publish {
      policy "transform-headers" {} # ERROR: Policy "transform-headers" does not run in the publish phase # ERROR: runs in: request, response. Move it
      polcy "assign-attributes" {} # ERROR: Did you mean "policy"?
    }
    request {} # ERROR: Duplicate request phase
  }
}
