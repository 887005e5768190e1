#!/usr/bin/env bash
# Lints the plugin protocol and checks it for breaking changes with buf.
#
# Baseline for `buf breaking`: the last sdk release tag (sdk/v*) when there
# is one; otherwise the previous commit of main that changed
# sdk/proto/v1/plugin.proto, so a change is checked against what the
# protocol was before it. Minors of protocol v1 must stay wire-compatible.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=${BUF_VERSION:-v1.75.0}
BUF=${BUF:-$(go env GOPATH)/bin/buf}
if [ ! -x "$BUF" ]; then
  go install "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}"
fi
"$BUF" lint
base=$(git describe --tags --abbrev=0 --match 'sdk/v*' 2>/dev/null || true)
if [ -z "$base" ]; then
  ref=main
  git rev-parse --verify -q "$ref" >/dev/null || ref=HEAD
  # The last commit of $ref that changed plugin.proto, then the one before it.
  last=$(git log -n 1 --format=%H "$ref" -- sdk/proto/v1/plugin.proto)
  base=$(git log -n 1 --format=%H "${last}^" -- sdk/proto/v1/plugin.proto 2>/dev/null || true)
  [ -n "$base" ] || base="$last"
fi
echo "buf breaking against $base"
# The baseline is checked out into a temporary folder, which works in git
# worktrees too (buf's .git input needs a plain git directory).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$base" sdk/proto | tar -x -C "$tmp"
# Today's buf.yaml, so both sides are read with the same module layout.
cp buf.yaml "$tmp/buf.yaml"
"$BUF" breaking --against "$tmp"
