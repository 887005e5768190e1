#!/usr/bin/env bash
# Builds the Python policy plugin into one executable file, OUT (for example
# bin/plugins/sluice-plugin-policy-python-uppercase):
#   1. generates the Python code of sdk/proto/v1/plugin.proto and of the two
#      small protos in proto/ with grpcio-tools into build/ (git-ignored);
#   2. packs it with src/ into a zipapp whose shebang is the interpreter that
#      has grpcio, so the core can start it like any plugin binary.
# Exits 3, printing what to install, when Python 3 or a package is missing.
#
#   PYTHON=python3.12 ./build.sh /opt/sluice/plugins/sluice-plugin-policy-python-uppercase
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$(cd "$here/../../proto/v1" && pwd)"
out="${1:?usage: build.sh OUT (the plugin file to write)}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "python-policy: $python not found; install Python 3, then: pip install -r $here/requirements.txt" >&2
  exit 3
fi
if ! "$python" -c 'import grpc, grpc_tools, google.protobuf, cryptography' 2>/dev/null; then
  echo "python-policy: $python lacks grpcio, grpcio-tools or cryptography: pip install -r $here/requirements.txt" >&2
  exit 3
fi
# The real interpreter, not a shim (pyenv) or an alias: the zipapp's shebang.
interp="$("$python" -c 'import sys; print(sys.executable)')"

# A fresh directory per build, so concurrent builds (make build, the e2e
# test) do not mix; build/ is git-ignored, generated code is never committed.
mkdir -p "$here/build"
stage="$(mktemp -d "$here/build/stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
"$python" -m grpc_tools.protoc -I "$proto_dir" -I "$here/proto" \
  --python_out="$stage" --pyi_out="$stage" --grpc_python_out="$stage" \
  "$proto_dir/plugin.proto" "$here/proto/health.proto" "$here/proto/go_plugin.proto"
cp "$here"/src/*.py "$stage/"

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
"$python" -m zipapp "$stage" --python "$interp" --output "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
echo "python-policy: built $out ($interp)"
