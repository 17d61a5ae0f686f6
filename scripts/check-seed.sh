#!/usr/bin/env bash
# Compares the repo's catalog copy (crates/orghooks-core/catalog) with the
# original seed, given as the argument (wherever the planning files keep
# it). Not part of the test suite: a clone has only the repo. The beta types (beta.json,
# beta/) and the operational notices (operational.json, operational/) are
# orghooks's own additions and are not compared.
# Usage: scripts/check-seed.sh SEED_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:?usage: scripts/check-seed.sh SEED_DIR (the original seed folder)}"
if [ ! -d "$seed" ]; then
  echo "check-seed: no seed folder at $seed; nothing to compare" >&2
  exit 0
fi
diff -r --exclude='*.txt' --exclude=beta.json --exclude=beta --exclude=operational.json --exclude=operational "$seed" crates/orghooks-core/catalog
echo "check-seed: crates/orghooks-core/catalog equals $seed"
