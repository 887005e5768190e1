api "demo" {
  context_path = "/demo"
  entrypoint "http-pst" {} # ERROR: Did you mean "http-post"? Known entrypoint types: "http-get", "http-post", "server-sent-events", "sse", "webhook", "websocket".
  entrypoint "grpc" {} # ERROR: Unknown entrypoint type "grpc"
  endpoint "rabbitmq" "default" {} # ERROR: api "demo" > endpoint "rabbitmq" "default": Unknown endpoint type "rabbitmq"
  flow "f" {
    request {
      policy "rate-limit" {} # ERROR: api "demo" > flow "f" > request > policy "rate-limit": Unknown policy type
    }
  }
}
