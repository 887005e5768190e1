gateway {
  tls {
    cert_file      = "missing-cert.pem" # ERROR: Cannot load the certificate and key
    key_file       = "missing-key.pem"
    client_ca_file = "missing-ca.pem" # ERROR: Cannot load client_ca_file
    client_auth    = "optional" # ERROR: Invalid client_auth "optional"
  }
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" { bootstrap_servers = "k:9092" }
}
