gateway {
  listen       = "8082" # ERROR: Invalid listen address "8082"
  admin_listen = "127.0.0.1:99999" # ERROR: port 99999 is out of range
  plugin_dir   = "" # ERROR: plugin_dir must not be empty
  plugin "endpoint-kafka" { sha256 = "abc" } # ERROR: Invalid sha256 "abc"
  plugin "endpoint-kafka" { sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" } # ERROR: Duplicate pin for plugin "endpoint-kafka"
  plugin "policy-x" {} # ERROR: The argument "sha256" is required
}

gateway {} # ERROR: Duplicate gateway block

dev_kafka {
  listen   = "localhost" # ERROR: dev_kafka: Invalid listen address
  topics   = { demo = 0 } # ERROR: Topic "demo" has 0 partitions
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
