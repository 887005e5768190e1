gateway {
  plugin_dir = env("SLUICE_CONFIG_TEST_DEFINITELY_UNSET") # ERROR: environment variable "SLUICE_CONFIG_TEST_DEFINITELY_UNSET" is not set
}

api "demo" {
  context_path = "/demo"
  entrypoint "http-post" {}
  endpoint "kafka" "default" {
    bootstrap_servers = file("does-not-exist.txt") # ERROR: no such file or directory
    security {
      sasl { jaas_config = file("../invalid") } # ERROR: is not a regular file
    }
    consumer { topics = [env("A", "b", "c")] } # ERROR: env takes a name and at most one default value
    producer { topics = [nosuchfunc("x")] } # ERROR: Call to unknown function
  }
}
