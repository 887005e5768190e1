# Values holding EL are only known per request, so enumerations are not
# checked at load time.
api "el" {
  context_path = "/el"
  entrypoint "server-sent-events" { qos = "{#request.headers['X-Qos'][0]}" }
  endpoint "kafka" "default" {
    bootstrap_servers = "{#context.attributes['servers']}"
    consumer {
      topics            = ["{#request.pathParams['topic']}"]
      auto_offset_reset = "{#request.params['reset'][0]}"
    }
  }
}
