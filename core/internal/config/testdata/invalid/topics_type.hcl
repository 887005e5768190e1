dev_kafka {
  topics = ["demo"] # ERROR: dev_kafka: Invalid topics
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
