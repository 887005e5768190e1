#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for a short time each.
#
# A target is any `func FuzzXxx(f *testing.F)` in a _test.go file of core,
# sdk or plugins; each runs alone (`go test -fuzz` takes one target per run)
# in its package directory. When a target fails, Go writes the failing input
# under that package's testdata/fuzz/FuzzXxx/: commit it with the fix, and
# it runs as a regression test in every plain `go test` from then on.
#
# Environment (all optional):
#   GO          go command (default go)
#   FUZZTIME    time per target, as `go test -fuzztime` reads it (default 10s)
#   FUZZ_PAR    fuzzing workers per target (default 2)
#   FUZZ_MATCH  only targets whose "dir:FuzzName" matches this regex
# Exit status: 0 when every target passed, 1 otherwise (all targets still run).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
go="${GO:-go}"
fuzztime="${FUZZTIME:-10s}"
par="${FUZZ_PAR:-2}"
match="${FUZZ_MATCH:-.}"

cd "${root}"
targets=()
while IFS= read -r line; do
  file="${line%%:*}"
  name="${line#*func }"
  name="${name%%(*}"
  targets+=("$(dirname "${file}"):${name}")
done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' core sdk plugins | sort)

failed=()
ran=0
for target in "${targets[@]}"; do
  [[ "${target}" =~ ${match} ]] || continue
  dir="${target%%:*}"
  name="${target#*:}"
  ran=$((ran + 1))
  echo "fuzz.sh: ${dir} ${name} for ${fuzztime}" >&2
  if ! (cd "${dir}" && "${go}" test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" -parallel "${par}" . ); then
    failed+=("${target}")
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: failing targets (inputs saved under their testdata/fuzz):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz.sh: ${ran} targets passed" >&2
