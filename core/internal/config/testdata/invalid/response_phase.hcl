# Message APIs have no response phase. The block is rejected with its own
# message, not as an unknown phase, and its policies are not decoded (the
# unknown type inside draws no second diagnostic).
api "x" {
  context_path = "/x"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  flow "f" {
    request {
      policy "transform-headers" { set = { "X-A" = "1" } }
    }
    response { # ERROR: api "x" > flow "f": Message APIs have no response phase # ERROR: move these policies into a subscribe block
      policy "transform-headers" { remove = ["Server"] }
      policy "no-such-policy" {}
    }
  }
  flow "g" {
    response {} # ERROR: Message APIs have no response phase
    respons {} # ERROR: Unknown phase "respons" # ERROR: A flow holds the phases request, publish, subscribe.
  }
}
