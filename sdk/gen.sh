#!/usr/bin/env bash
# Regenerates the protocol code (run through `make proto`). The generated files
# are committed, so users and CI never need protoc; this script needs protoc
# (Debian: protobuf-compiler) and installs the Go code generators it pins.
set -euo pipefail
cd "$(dirname "$0")"
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
tools="$(pwd)/../.cache/protoc-bin"
mkdir -p "$tools"
[ -x "$tools/protoc-gen-go" ] || GOBIN="$tools" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[ -x "$tools/protoc-gen-go-grpc" ] || GOBIN="$tools" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
PATH="$tools:$PATH" protoc -I proto/v1 \
  --go_out=proto/v1 --go_opt=paths=source_relative \
  --go-grpc_out=proto/v1 --go-grpc_opt=paths=source_relative \
  proto/v1/plugin.proto
