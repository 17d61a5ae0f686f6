#!/usr/bin/env bash
# Runs the README's test command N times in a row (default 10) while two busy
# loops (`yes > /dev/null`) hold both cores: the suite must pass on a busy
# machine. Usage: scripts/soak.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
yes > /dev/null &
busy1=$!
yes > /dev/null &
busy2=$!
trap 'kill $busy1 $busy2 2>/dev/null || true' EXIT
for i in $(seq 1 "$runs"); do
  echo "== soak: run $i of $runs, both cores busy"
  scripts/test
done
echo "soak: $runs runs in a row passed with both cores busy"
