gateway {
  tls { # ERROR: client_auth "require" needs client_ca_file
    cert_file   = "missing-cert.pem" # ERROR: Cannot load the certificate and key
    key_file    = "missing-key.pem"
    client_auth = "require"
  }
  tls { # ERROR: Duplicate tls block
    cert_file = "a"
    key_file  = "b"
  }
  limits {
    max_connections  = 0 # ERROR: Invalid max_connections 0
    max_header_bytes = 100 # ERROR: Invalid max_header_bytes 100
    read_timeout_ms  = "soon" # ERROR: Incorrect attribute value type
    max_body         = 1 # ERROR: Unsupported argument
  }
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
