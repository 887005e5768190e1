api "demo" {
  context_path = "/demo"
  plan "keyless" {}
  plan "keyless" {} # ERROR: Duplicate plan "keyless"
  plan "oauth2" {} # ERROR: Unsupported plan "oauth2"
  plan "api_key" {} # ERROR: Did you mean "api-key"?
  plan "api-key" {
    header = "" # ERROR: header must not be empty
    bogus  = 1 # ERROR: Unsupported argument
    subscription "acme" { api_key = "k1" }
    subscription "acme" { api_key = "k2" } # ERROR: Duplicate subscription "acme"
    subscription "empty" { api_key = "" } # ERROR: api_key must not be empty
    subscription "none" {} # ERROR: Missing required argument
    subscription "jwt-ish" {
      api_key   = "k3"
      client_id = "x" # ERROR: Unsupported argument
    }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "jwt" {
  context_path = "/jwt"
  plan "jwt" { # ERROR: No subscription # ERROR: Give exactly one of secret
    signature = "none" # ERROR: Unsupported signature "none"
    clock_skew_seconds = -1 # ERROR: Invalid clock_skew_seconds -1
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "jwt2" {
  context_path = "/jwt2"
  plan "jwt" { # ERROR: Invalid plan
    signature          = "HS256"
    secret             = "too-short"
    subscription "m" { client_id = "m" }
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}

api "jwt3" {
  context_path = "/jwt3"
  plan "jwt" {
    signature  = "RS256"
    public_key = "k"
    jwks_url   = "ftp://id.example/jwks" # ERROR: Give exactly one # ERROR: Invalid jwks_url
    subscription "m" { client_id = "m" }
  }
  plan "mtls" { # ERROR: The gateway asks for no client certificate # ERROR: no PEM CERTIFICATE block
    subscription "billing" { client_certificate = "not a pem" }
  }
  limits {
    max_request_body_bytes = 0 # ERROR: Invalid max_request_body_bytes 0
  }
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
