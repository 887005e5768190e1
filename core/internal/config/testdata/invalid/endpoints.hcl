# The data path serves one endpoint per API: every endpoint after the first
# is reported on its name label, and still decoded (stage 2 reports its body).
api "x" {
  context_path = "/x"
  entrypoint "http-post" {}
  endpoint "kafka" "first" { bootstrap_servers = "k:9092" }
  endpoint "kafka" "second" { bootstrap_servers = "k:9093" } # ERROR: api "x" > endpoint "kafka" "second": More than one endpoint in an API # ERROR: Remove this endpoint block, or move it into an api block of its own
  endpoint "kafka" "third" { nope = 1 } # ERROR: api "x" > endpoint "kafka" "third": More than one endpoint in an API # ERROR: An argument named "nope" is not expected here # ERROR: The argument "bootstrap_servers" is required
}

api "y" {
  context_path = "/y"
  entrypoint "http-post" {}
  endpoint "kafka" "only" { bootstrap_servers = "k:9092" }
}
