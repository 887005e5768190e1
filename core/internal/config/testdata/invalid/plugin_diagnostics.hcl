# Diagnostics returned by the plugin's own validation land on the attribute
# their path names.
api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = "127.0.0.1:9092"
    security { # ERROR: security.sasl: SASL protocols need a sasl block
      protocol = "SASL_SSL"
    }
    consumer {
      topics        = ["demo"]
      topic_pattern = "demo-.*" # ERROR: topics and topic_pattern are mutually exclusive
    }
  }
  flow "f" {
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "a"
          value = "1"
        }
        attribute {
          name  = "" # ERROR: api "demo" > flow "f" > publish > policy "assign-attributes": attribute name must not be empty
          value = "2"
        }
      }
    }
  }
}

api "empty-servers" {
  context_path = "/empty-servers"
  entrypoint "http-post" {}
  endpoint "kafka" "warn" {
    bootstrap_servers = "" # ERROR: bootstrap_servers is empty
  }
}
