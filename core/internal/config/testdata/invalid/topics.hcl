dev_kafka {
  topics = {
    demo        = 3
    "bad topic" = 1 # ERROR: dev_kafka: Invalid topic name "bad topic"
    half        = 1.5 # ERROR: Topic "half" has 1.5 partitions
    huge        = 30000 # ERROR: whole number from 1 to 1000
  }
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
