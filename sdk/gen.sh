#!/usr/bin/env bash
# Regenerates the protocol code; run through `make proto`.
set -euo pipefail
cd "$(dirname "$0")"
protoc -I proto/v1 --go_out=proto/v1 --go_opt=paths=source_relative \
  --go-grpc_out=proto/v1 --go-grpc_opt=paths=source_relative proto/v1/plugin.proto
