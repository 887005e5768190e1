api "origins" {
  context_path = "/origins"
  entrypoint "sse" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  cors {
    allow_origins = [
      "https://app.example.com",
      "https://app.example.com/", # ERROR: write "https://app.example.com"
      "https://app.example.com/path", # ERROR: Invalid origin "https://app.example.com/path"
      "app.example.com", # ERROR: An origin is scheme://host[:port]
      "https://*.example.com", # ERROR: put patterns in allow_origin_regex
      "https://app.example.com:99999", # ERROR: The port "99999" is not a number from 0 to 65535
      "https://user@app.example.com", # ERROR: An origin has no user name or password
      "https://bücher.example", # ERROR: punycode
      "", # ERROR: Invalid origin ""
      "*", # ERROR: allow_credentials with the "*" origin
    ]
    allow_origin_regex = [
      "https://(app\\.example\\.com", # ERROR: Invalid allow_origin_regex # ERROR: missing closing )
      "", # ERROR: A pattern must not be empty
    ]
    allow_methods = [
      "GET",
      "get", # ERROR: Did you mean "GET"?
      "GET POST", # ERROR: Invalid method "GET POST"
    ]
    allow_headers = ["Last-Event-ID", "X Header"] # ERROR: Invalid allow_headers entry "X Header"
    expose_headers = ["*"] # ERROR: browsers read "*" as a header named "*"
    max_age_seconds = -1 # ERROR: max_age_seconds must not be negative
    allow_credentials = true
  }
}

api "shapes" {
  context_path = "/shapes"
  entrypoint "sse" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  cors { # ERROR: No allowed origin
    allow_methods   = [] # ERROR: allow_methods is empty
    max_age_seconds = 1.5 # ERROR: whole number of seconds
  }
  cors { allow_origins = ["*"] } # ERROR: Duplicate cors block
}

api "types" {
  context_path = "/types"
  entrypoint "sse" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
  cors {
    allow_origins     = "https://app.example.com" # ERROR: list of string required
    allow_credentials = "maybe" # ERROR: a bool is required
    max_age_seconds   = "soon" # ERROR: a number is required
    allow_origin      = ["*"] # ERROR: Unsupported argument
  }
}
