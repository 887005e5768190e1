api "a" {
  context_path = "demo" # ERROR: A context path starts with "/", e.g. "/demo".
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "b" {
  context_path = "/demo/" # ERROR: Invalid context_path "/demo/"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "c" {
  context_path = "/a//b" # ERROR: empty segments
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "d" {
  context_path = "/a b" # ERROR: no spaces
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
