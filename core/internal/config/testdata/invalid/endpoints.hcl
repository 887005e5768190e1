# Several endpoints per API are fine (the first serves the API, the others
# are named targets); their names must be unique and each is decoded.
api "x" {
  context_path = "/x"
  entrypoint "http-post" {}
  endpoint "kafka" "first" { bootstrap_servers = "k:9092" }
  endpoint "kafka" "second" { bootstrap_servers = "k:9093" }
  endpoint "kafka" "third" { nope = 1 } # ERROR: An argument named "nope" is not expected here # ERROR: The argument "bootstrap_servers" is required
}

api "y" {
  context_path = "/y"
  entrypoint "http-post" {}
  endpoint "kafka" "only" { bootstrap_servers = "k:9092" }
}
