api "demo" {
  context_path = "/demo"
  plan "keyless" {}
  plan "keyless" {} # ERROR: Duplicate plan "keyless"
  plan "jwt" {} # ERROR: Unsupported plan "jwt"
  plan "keyless" { x = 1 } # ERROR: Unsupported argument # ERROR: Duplicate plan
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
