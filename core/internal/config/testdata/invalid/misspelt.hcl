api "demo" {
  context_path = "/demo"
  entrypoint "http-post" { request_header_to_message = true } # ERROR: Did you mean "request_headers_to_message"?
  endpoint "kafka" "default" { # ERROR: The argument "bootstrap_servers" is required
    bootstrap_server = "127.0.0.1:9092" # ERROR: Did you mean "bootstrap_servers"?
    consumer {
      auto_offset_rest = "earliest" # ERROR: An argument named "auto_offset_rest" is not expected here
    }
  }
}
