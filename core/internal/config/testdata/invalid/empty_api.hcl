api "empty" { # ERROR: api "empty": No entrypoint # ERROR: api "empty": No endpoint
  context_path = "/empty"
}
