api "orders" {
  context_path = "/orders"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }

  flow "paths" {
    path = "orders" # ERROR: Invalid path "orders" # ERROR: starts with "/"
  }
  flow "params" {
    path = "/:a/:a" # ERROR: parameter "a" appears twice
  }
  flow "operator" {
    path          = "/:topic"
    path_operator = "startsWith" # ERROR: Invalid path_operator "startsWith" # ERROR: Did you mean "starts-with"?
  }
  flow "operator-alone" {
    path_operator = "equals" # ERROR: path_operator without a path
  }
  flow "methods" {
    methods = ["POST", "get", "FETCH"] # ERROR: Unknown method "get" # ERROR: write "GET" # ERROR: Unknown method "FETCH"
  }
  flow "methods-type" {
    methods = "POST" # ERROR: Invalid methods
  }
  flow "condition" {
    condition = "{#request.headres['X'] != null}" # ERROR: Invalid condition # ERROR: at column
  }
  flow "literal-condition" {
    condition = "true" # ERROR: condition is not an EL expression
  }
  flow "typo" {
    methds = ["GET"] # ERROR: Did you mean "methods"?
  }
  flow "steps" {
    request {
      policy "assign-attributes" {
        message_condition = "{#message.content == 'x'}" # ERROR: message_condition does not apply in the request phase
        condition         = "{#request.method == }" # ERROR: Invalid condition
        attribute {
          name  = "a"
          value = "b"
        }
      }
    }
    publish {
      policy "assign-attributes" {
        condition = "{#request.method == 'POST'}" # ERROR: condition does not apply in the publish phase
        enabled   = "sometimes" # ERROR: Invalid enabled
        attribute {
          name  = "a"
          value = "b"
        }
      }
    }
    subscribe {
      policy "assign-attributes" {
        message_condition = "{#message.conten == 'x'}" # ERROR: Invalid message_condition
        enabled           = false
        bogus             = 1 # ERROR: Unsupported argument
        attribute {
          name  = "a"
          value = "b"
        }
      }
    }
  }
}
