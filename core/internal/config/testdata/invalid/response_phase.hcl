# The response phase takes the request phase's meta-arguments (enabled,
# condition); what it cannot hold is reported at the offending attribute.
api "x" {
  context_path = "/x"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  flow "f" {
    response {
      policy "transform-headers" {
        message_condition = "{#message.content == 'x'}" # ERROR: message_condition does not apply in the response phase # ERROR: The response phase runs once per request
        set               = { "X-A" = "1" }
      }
      policy "transform-headers" {
        condition = "{#request.headres['X'] != null}" # ERROR: Invalid condition
        enabled   = "later" # ERROR: Invalid enabled
      }
      policy "no-such-policy" {} # ERROR: no-such-policy
    }
    response {} # ERROR: Duplicate response phase
  }
  flow "g" {
    respons {} # ERROR: Unknown phase "respons" # ERROR: Did you mean "response"? # ERROR: A flow holds the phases request, response, publish, subscribe.
  }
}
