#!/usr/bin/env bash
# Compares two commits with `pnpm bench:quick`, interleaved in one sitting: before, after,
# before, after (the run-to-run spread shows in the two runs of each side). Each commit is
# cloned into .cache/compare/<commit>, installed and built there; logs go beside them.
#   bash bench/compare.sh <before-commit> <after-commit>
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bash bench/compare.sh <before-commit> <after-commit>" >&2; exit 2; }
PNPM=(npx -y pnpm@10.34.8)
root=$PWD
out=.cache/compare
mkdir -p "$out"
for commit in "$@"; do
  dir=$out/$commit
  if [ ! -d "$dir" ]; then
    git clone -q "$root" "$dir"
    git -C "$dir" checkout -q "$commit"
    (cd "$dir" && "${PNPM[@]}" install --frozen-lockfile >/dev/null)
  fi
done
logs=()
for round in 1 2; do
  for commit in "$@"; do
    log=$out/$commit-$round.log
    echo "bench:quick at $commit, round $round" >&2
    (cd "$out/$commit" && "${PNPM[@]}" bench:quick) >"$log" 2>&1
    logs+=("$log")
  done
done
node bench/compare-summary.mjs "${logs[@]}"
