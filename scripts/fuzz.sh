#!/usr/bin/env bash
# Runs every fuzz target in the repository for a fixed time each.
#
#   ./scripts/fuzz.sh [fuzztime]     e.g. ./scripts/fuzz.sh 5s   (default 5s)
#
# Targets are the `func FuzzX(` declarations in every package's test files
# (read from the source: listing them with `go test -list` would compile every
# dependency once more on a cold cache), so a new target is picked up without
# editing this script. A failing input is written by the go command under the package's
# testdata/fuzz/<Target>/ directory (commit it as a regression seed) and the
# script exits non-zero after running the remaining targets.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${1:-5s}"
case "$fuzztime" in
  *[0-9]s|*[0-9]m|*[0-9]h|*[0-9]x) ;;
  *) echo "usage: $0 [fuzztime]  (a duration like 5s or 1m, or a count like 1000x)" >&2; exit 2 ;;
esac

start=$(date +%s)
failed=()
ran=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -hsoE '^func Fuzz[A-Za-z0-9_]*\(\w+ \*testing\.F\)' "$dir"/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' | sort -u || true)
  for target in $targets; do
    echo "--- fuzz $pkg $target ($fuzztime)"
    ran=$((ran + 1))
    if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
      echo "$out"
      # On a loaded machine the go command's fuzz coordinator can miss its own
      # end-of-run deadline and report "context deadline exceeded" without a
      # failing input (no "Failing input written"). That is not a finding:
      # run the target once more; a real failure fails again.
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "--- fuzz $pkg $target: coordinator deadline missed, no failing input; retrying once"
        if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
          continue
        fi
      fi
      failed+=("$pkg $target")
    else
      echo "$out" | tail -n 3
    fi
  done
done

echo "--- fuzz: $ran targets in $(( $(date +%s) - start ))s"
if [ "$ran" -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
