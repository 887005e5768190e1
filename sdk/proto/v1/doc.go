// Package pluginv1 is the generated wire protocol (major version 1) between the
// sluice core and plugins. It is not the plugin author API: authors use
// sdk/endpoint, sdk/entrypoint, sdk/policy and sdk/serve, which convert to and
// from these types. Regenerate with `make proto`.
package pluginv1
