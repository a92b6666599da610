#!/usr/bin/env bash
# Packs both packages the way they are published (pnpm pack: the prepack build runs and
# workspace:* ranges are rewritten) into .cache/pack/, lists each tarball, and fails when a
# test file, a test fixture or a source test (src/**/*.test.ts) is inside, when an expected
# file is missing, or when a packed package.json still holds a workspace: range.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.cache/pack
# The pnpm this repository pins (packageManager), through npx: only Node.js is needed.
PNPM=(npx -y "$(node -p 'require("./package.json").packageManager')")

rm -rf "$out"
mkdir -p "$out"
status=0
fail() {
  echo "pack-check: $*" >&2
  status=1
}

for pkg in types discovery; do
  (cd "packages/$pkg" && "${PNPM[@]}" pack --pack-destination "$out" >"$out/$pkg.log" 2>&1) || {
    cat "$out/$pkg.log" >&2
    fail "pnpm pack failed in packages/$pkg"
    continue
  }
  name=$(node -p "require('./packages/$pkg/package.json').name")
  version=$(node -p "require('./packages/$pkg/package.json').version")
  tgz=$out/$(echo "${name#@}" | tr / -)-$version.tgz
  [ -f "$tgz" ] || { fail "no tarball $tgz"; continue; }

  files=$(tar -tzf "$tgz" | sed 's#^package/##' | sort)
  echo "== $name@$version: $(wc -l <<<"$files") files ($(du -k "$tgz" | cut -f1) kB packed)"
  sed 's/^/  /' <<<"$files"

  bad=$(grep -Ei '\.(test|spec)\.|fixture|(^|/)(test|tests|__tests__)/|\.tsbuildinfo$' <<<"$files" || true)
  [ -z "$bad" ] || fail "$name ships test files or fixtures:"$'\n'"$bad"

  required=(package.json README.md LICENSE dist/index.js dist/index.d.ts)
  [ "$pkg" = discovery ] && required+=(bin/consul-leader.js dist/cli/main.js)
  for f in "${required[@]}"; do
    grep -qxF "$f" <<<"$files" || fail "$name is missing $f"
  done

  manifest=$(tar -xOzf "$tgz" package/package.json)
  if grep -n 'workspace:' <<<"$manifest"; then
    fail "$name: the packed package.json still has a workspace: range (pack and publish with pnpm)"
  fi
done

[ "$status" = 0 ] && echo "pack-check: ok (tarballs in .cache/pack/)"
exit "$status"
