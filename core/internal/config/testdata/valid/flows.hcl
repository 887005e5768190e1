# Flow selectors and step meta-arguments.
api "orders" {
  context_path = "/orders"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }

  flow "by-topic" {
    path          = "/:topic"
    path_operator = "starts-with"
    methods       = ["POST", "GET"]
    condition     = "{#request.headers['X-Tenant'] != null}"
    request {
      policy "assign-attributes" {
        condition = "{#request.pathParams['topic'] != 'internal'}"
        attribute {
          name  = "gravitee.attribute.kafka.topics"
          value = "{#request.pathParams['topic']}"
        }
      }
    }
    response {
      policy "assign-attributes" {
        condition = "{#request.method == 'GET'}"
        attribute {
          name  = "served"
          value = "yes"
        }
      }
      policy "assign-attributes" {
        enabled = false
        attribute {
          name  = "a"
          value = "b"
        }
      }
    }
    publish {
      policy "assign-attributes" {
        enabled           = true
        message_condition = "{#message.content matches 'vip:.*'}"
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "vip"
        }
      }
    }
  }

  flow "exact" {
    path          = "/"
    path_operator = "equals"
    subscribe {
      policy "assign-attributes" {
        enabled = false
        attribute {
          name  = "a"
          value = "b"
        }
      }
    }
  }

  flow "always" {}
}
