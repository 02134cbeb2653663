#!/usr/bin/env bash
# Runs every native fuzz target for a while each: scripts/fuzz.sh 30s
set -euo pipefail
dur=${1:-20s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $f"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$dur" "$pkg"
  done
done
