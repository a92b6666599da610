#!/usr/bin/env bash
# Consumer test (issue #14): install the SDK the way a user does and check that it works.
#
# Builds and packs both packages with pnpm (which rewrites workspace:*), then npm-installs
# the two tarballs into fresh apps outside the workspace (a mktemp -d folder, so no parent
# node_modules can leak in), each app with its own zod / valibot / rxjs versions from the
# registry (test/consumer/<app>/package.json), and checks:
#   - ESM import, CommonJS require(), the CLI from node_modules/.bin;
#   - tsc --noEmit under module nodenext, moduleResolution bundler and module commonjs,
#     with leader.node's type inferred from the schema (and a @ts-expect-error on a wrong
#     property), for zod 4 classic, zod 3.25, zod 4 mini and valibot 1.x, rxjs 7.5 and 7.8;
#   - against a real Consul agent (-dev, on its own loopback address, stopped on exit):
#     current() and one change seen by leader(), current() with each validator, the CLI's get;
#   - the /http subpath with the app's own undici (an optional peer): tsc nodenext with
#     undici 7 and 8; leaderDispatcher (undici's fetch and request, Node's global fetch),
#     createLeaderProxy, leaderHealth and NO_LEADER against the agent, with undici 7 on Node
#     20, 22 and 24, with undici 8 on Node 24 (Node 22 and 24: the binaries scripts/test-node.sh
#     installs in .cache/node<major>/, skipped when missing); an app without undici gets none
#     from npm, and the subpath then fails with ERR_MODULE_NOT_FOUND naming undici.
# Prints one line per check ("ok <what>" or "FAIL <what>" with the error text below it),
# then "<N> passed, <M> failed"; exits 1 when anything failed.
#
# Environment: CONSUMER_KEEP=1 keeps the app folders (their path is printed);
# CONSUMER_JOBS=<n> tsc runs at once (default: the number of CPUs); CONSUL_BIN as for the
# test suite (scripts/ensure-consul.sh).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/test/consumer"
PACKS="$ROOT/.cache/consumer/packs"
NPM_CACHE="$ROOT/.cache/npm"
PNPM=(npx -y pnpm@10.34.8)
MAXJ="${CONSUMER_JOBS:-$(nproc 2>/dev/null || echo 2)}"
APPS=(zod4-rxjs78 zod325-rxjs75 zod4-mini valibot rxjs75 real-consul undici7-http undici8-http)
# Files an app gets from another app's folder (the same sources against another undici).
declare -A SHARED=([undici8-http]="undici7-http/app.ts undici7-http/routing.mjs")
# More npm install arguments of an app: undici 8 declares Node >=22.19, npm on Node 20 only
# warns (EBADENGINE) unless engine-strict is set somewhere (an .npmrc): turned off here.
declare -A NPM_ARGS=([undici8-http]="--engine-strict=false")
START=$SECONDS

# The apps talk to the agent this script starts, nothing else: drop the caller's CONSUL_*
# settings (address, token, TLS), keep where the consul binary comes from.
for var in $(compgen -e | grep '^CONSUL_' || true); do
  [[ "$var" == CONSUL_BIN || "$var" == CONSUL_CACHE_DIR ]] || unset "$var"
done
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

WORK="$(mktemp -d "${TMPDIR:-/tmp}/consul-leader-consumer.XXXXXX")"
AGENT_PID=""
TSC_RUNNER=""
cleanup() {
  if [[ -n "$AGENT_PID" ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill "$AGENT_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$AGENT_PID" 2>/dev/null
  fi
  if [[ -n "$TSC_RUNNER" ]] && kill -0 "$TSC_RUNNER" 2>/dev/null; then
    kill -- "-$TSC_RUNNER" 2>/dev/null || kill "$TSC_RUNNER" 2>/dev/null
  fi
  if [[ -n "${CONSUMER_KEEP:-}" ]]; then echo "# apps kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
exec 3>&2 # the script's stderr, for the trap (a check may have redirected fd 2 when it fires)
trap 'echo "interrupted" >&3; exit 130' INT TERM

passed=0
failed=0
declare -A BROKEN # app -> why its checks are skipped

ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [[ -n "${2:-}" ]] && sed 's/^/    /' <<<"$2"
}
# check "<what>" <command...>: ok when the command exits 0 (its last output line is
# appended after " -- "), else FAIL with its whole output.
check() {
  local what=$1 out last
  shift
  if out=$("$@" 2>&1); then
    last=$(tail -n 1 <<<"$out")
    ok "$what${last:+ -- $last}"
  else
    fail "$what" "$out"
  fi
}
# in_app <app> <command...>: the command, run in that app's folder.
in_app() {
  local app=$1
  shift
  (cd "$WORK/$app" && "$@")
}
skip_if_broken() {
  if [[ -n "${BROKEN[$1]:-}" ]]; then
    echo "skip $2 (${BROKEN[$1]})"
    return 0
  fi
  return 1
}

echo "# consumer test: Node $(node --version), npm $(npm --version), apps in $WORK"

# ---- nothing above the app folders may hold a node_modules that Node or tsc would search
dir="$WORK"
while [[ "$dir" != / ]]; do
  dir="$(dirname "$dir")"
  if [[ -e "$dir/node_modules" ]]; then
    fail "app folders are isolated" "$dir/node_modules exists above $WORK: set TMPDIR elsewhere"
    echo "$passed passed, $failed failed"
    exit 1
  fi
done

# ---- build and pack both packages (prepack builds; pnpm rewrites workspace:*)
if [[ ! -d "$ROOT/node_modules" ]]; then
  (cd "$ROOT" && "${PNPM[@]}" install --frozen-lockfile) >"$WORK/pnpm-install.log" 2>&1 ||
    { fail "pnpm install" "$(tail -n 30 "$WORK/pnpm-install.log")"; echo "$passed passed, $failed failed"; exit 1; }
fi
rm -rf "$PACKS" && mkdir -p "$PACKS"
if (cd "$ROOT" && "${PNPM[@]}" --filter ./packages/types --filter ./packages/discovery pack \
  --pack-destination "$PACKS") >"$WORK/pack.log" 2>&1; then
  TYPES_TGZ=$(ls "$PACKS"/consul-leader-types-*.tgz 2>/dev/null | head -n 1)
  DISCOVERY_TGZ=$(ls "$PACKS"/consul-leader-discovery-*.tgz 2>/dev/null | head -n 1)
fi
if [[ -z "${TYPES_TGZ:-}" || -z "${DISCOVERY_TGZ:-}" ]]; then
  fail "build and pack both packages" "$(tail -n 40 "$WORK/pack.log")"
  echo "$passed passed, $failed failed"
  exit 1
fi
ok "build and pack: $(basename "$TYPES_TGZ"), $(basename "$DISCOVERY_TGZ")"

tarball_contents() {
  local tgz manifest shipped listing bad=""
  for tgz in "$TYPES_TGZ" "$DISCOVERY_TGZ"; do
    manifest=$(tar -xOzf "$tgz" package/package.json)
    grep -q '"workspace:' <<<"$manifest" && bad+="$(basename "$tgz"): package.json still has workspace: $(grep '"workspace:' <<<"$manifest")"$'\n'
    shipped=$(tar -tzf "$tgz" | grep -E '\.test\.|test-fixtures|/test/' || true)
    [[ -n "$shipped" ]] && bad+="$(basename "$tgz") ships tests: $shipped"$'\n'
    # (the listing in a variable first: grep -q would end the pipe early, failing it under pipefail)
    listing=$(tar -tzf "$tgz")
    grep -qx 'package/LICENSE' <<<"$listing" || bad+="$(basename "$tgz") has no LICENSE"$'\n'
  done
  [[ -z "$bad" ]] || { printf '%s' "$bad"; return 1; }
  echo "no workspace: protocol, no tests, a LICENSE in each"
}
check "tarballs: dependencies rewritten, contents" tarball_contents

# ---- install: every app in parallel, from the tarballs and the registry
declare -A INSTALL_PID
for app in "${APPS[@]}"; do
  mkdir -p "$WORK/$app"
  cp -R "$SRC/$app/." "$WORK/$app/"
  for shared in ${SHARED[$app]:-}; do cp "$SRC/$shared" "$WORK/$app/"; done
  # shellcheck disable=SC2086 # NPM_ARGS: words
  (cd "$WORK/$app" && npm install --no-audit --no-fund --prefer-offline --loglevel=error \
    --cache "$NPM_CACHE" ${NPM_ARGS[$app]:-} "$TYPES_TGZ" "$DISCOVERY_TGZ") >"$WORK/$app.install.log" 2>&1 &
  INSTALL_PID[$app]=$!
done
for app in "${APPS[@]}"; do
  if wait "${INSTALL_PID[$app]}"; then
    extra=(zod)
    [[ -d "$WORK/$app/node_modules/valibot" ]] && extra+=(valibot)
    [[ -d "$WORK/$app/node_modules/undici" ]] && extra+=(undici)
    [[ -d "$WORK/$app/node_modules/typescript" ]] && extra+=(typescript)
    if out=$(in_app "$app" node "$SRC/resolve-check.mjs" @consul-leader/discovery @consul-leader/types rxjs "${extra[@]}" 2>&1); then
      ok "$app: npm install, resolved inside the app -- $out"
    else
      fail "$app: npm install, resolved inside the app" "$out"
      BROKEN[$app]="its install is wrong"
    fi
  else
    fail "$app: npm install" "$(tail -n 30 "$WORK/$app.install.log")"
    BROKEN[$app]="npm install failed"
  fi
done

# ---- tsc runs: the slow part, in the background (MAXJ at once) while the rest runs
# <id>|<app>|<tsconfig>|<what>. With skipLibCheck false the run is reported twice: the
# app's own files (the inferred types) and the installed .d.ts files.
TSC_SPECS=(
  "1|zod4-rxjs78|tsconfig.nodenext.json|tsc module nodenext: leader.node inferred from a zod 4 schema, rxjs pipe(map)"
  "2|zod4-rxjs78|tsconfig.bundler.json|tsc moduleResolution bundler (module esnext): leader.node inferred"
  "3|zod4-rxjs78|tsconfig.commonjs.json|tsc module commonjs (node10 resolution; target es2016, esModuleInterop, skipLibCheck: the classic tsc --init): leader.node inferred"
  "4|zod4-rxjs78|tsconfig.commonjs-es5.json|tsc module commonjs with TypeScript's default target (es5), esModuleInterop: leader.node inferred"
  "5|zod4-rxjs78|tsconfig.nodenext-cts.json|tsc module nodenext, a CommonJS .cts file (require of the ESM SDK): leader.node inferred"
  "6|zod325-rxjs75|tsconfig.json|tsc module nodenext: leader.node inferred from a zod 3.25 classic schema, rxjs 7.5 pipe(map)"
  "7|zod325-rxjs75|tsconfig.types-v4.json|tsc module nodenext: leaderStateSchema of @consul-leader/types with zod 3.25's zod/v4, output inferred"
  "8|zod4-mini|tsconfig.json|tsc module nodenext: leader.node inferred from a zod/mini schema"
  "9|valibot|tsconfig.json|tsc module nodenext: leader.node inferred from a valibot schema"
  "10|rxjs75|tsconfig.json|tsc module commonjs (node10: rxjs < 7.5.5 ships no types for nodenext/bundler): rxjs 7.5.0 pipe(map)/filter/firstValueFrom on leader(), zod 4.0 schema inferred"
  "11|undici7-http|tsconfig.json|tsc module nodenext: /http subpath with undici 7 (leaderDispatcher's origin gets leader.node inferred from a zod schema; undici fetch/request with it; createLeaderProxy, leaderHealth in node:http; NoLeaderError, LeaderRequestError narrowed)"
  "12|undici8-http|tsconfig.json|tsc module nodenext: /http subpath with undici 8 (undici7-http's app.ts)"
)
mkdir -p "$WORK/tsc"
run_tsc() {
  local id=$1 app=$2 config=$3
  (cd "$WORK/$app" && timeout --foreground 600 node_modules/.bin/tsc -p "$config") >"$WORK/tsc/$id.out" 2>&1
  echo $? >"$WORK/tsc/$id.rc"
}
# Job control on for this one job: it gets a process group of its own, which cleanup can
# stop with its tsc children (kill -- -pgid) on an interrupt.
set -m
(
  for spec in "${TSC_SPECS[@]}"; do
    IFS='|' read -r id app config _ <<<"$spec"
    [[ -n "${BROKEN[$app]:-}" ]] && continue
    while (($(jobs -rp | wc -l) >= MAXJ)); do wait -n; done
    run_tsc "$id" "$app" "$config" &
  done
  wait
) &
TSC_RUNNER=$!
set +m

# ---- run-time checks without Consul
if ! skip_if_broken zod4-rxjs78 "zod4-rxjs78: run-time checks"; then
  check "zod4-rxjs78: ESM import (leader() instanceof the app's Observable, current() rejects with a typed error, types' schema on the app's zod)" \
    in_app zod4-rxjs78 timeout --foreground 60 node esm.mjs
  check "zod4-rxjs78: CommonJS require() of both packages (same checks)" \
    in_app zod4-rxjs78 timeout --foreground 60 node cjs.cjs
  cli_version() {
    local want got
    want=$(node -p 'require("./node_modules/@consul-leader/discovery/package.json").version')
    got=$(timeout --foreground 30 node_modules/.bin/consul-leader --version) || { echo "$got"; return 1; }
    [[ "$got" == "$want" ]] || { echo "printed '$got', the installed package is $want"; return 1; }
    echo "$got"
  }
  check "zod4-rxjs78: CLI node_modules/.bin/consul-leader --version" in_app zod4-rxjs78 cli_version
  cli_help() {
    local out
    out=$(timeout --foreground 30 node_modules/.bin/consul-leader get --help) || { echo "$out"; return 1; }
    grep -q '^Usage: consul-leader get' <<<"$out" || { echo "unexpected help: $out"; return 1; }
    head -n 1 <<<"$out"
  }
  check "zod4-rxjs78: CLI node_modules/.bin/consul-leader get --help" in_app zod4-rxjs78 cli_help
  check "zod4-rxjs78: no undici installed (optional peer), the main entry imports; import('@consul-leader/discovery/http') fails with ERR_MODULE_NOT_FOUND naming 'undici'" \
    in_app zod4-rxjs78 timeout --foreground 60 node no-undici.mjs
fi
if ! skip_if_broken zod325-rxjs75 "zod325-rxjs75: leaderStateSchema at run time"; then
  check "zod325-rxjs75: leaderStateSchema of @consul-leader/types parses a relayed state with zod 3.25's zod/v4" \
    in_app zod325-rxjs75 timeout --foreground 60 node types-v4.mjs
fi
if ! skip_if_broken rxjs75 "rxjs75: instanceof Observable"; then
  check "rxjs75: every stream instanceof the app's rxjs 7.5.0 Observable, pipe(map) works" \
    in_app rxjs75 timeout --foreground 60 node esm.mjs
fi

# node_bin <major>: the Node.js binary scripts/test-node.sh installs in .cache/node<major>/
# (not installed here: printed empty when missing).
node_bin() {
  local bin
  bin="$ROOT/.cache/node$1/node_modules/node-$(node -p 'process.platform + "-" + process.arch')/bin/node"
  [[ -x "$bin" ]] && echo "$bin"
}
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
# routing <app> <major>: routing.mjs of that app against the agent, on Node <major> (the
# machine's own when it is that major); a missing binary is a skip line, not a failure.
routing() {
  local app=$1 major=$2 bin undici
  undici=$(node -p "require('$WORK/$app/node_modules/undici/package.json').version" 2>/dev/null)
  if [[ "$major" == "$NODE_MAJOR" ]]; then
    bin=$(command -v node)
  else
    bin=$(node_bin "$major") ||
      { echo "skip $app: /http routing with undici $undici on Node $major (skipped: no binary in .cache/node$major/; scripts/test-node.sh $major installs it)"; return; }
  fi
  check "$app: /http routing against the agent with undici $undici on Node $major (leaderDispatcher through undici fetch/request and the global fetch, createLeaderProxy, leaderHealth; a vacant key: NO_LEADER)" \
    in_app "$app" timeout --foreground 60 "$bin" routing.mjs
}

# ---- a real Consul agent
start_agent() {
  local consul addr i
  consul=$(bash "$ROOT/scripts/ensure-consul.sh") || { echo "no consul binary (scripts/ensure-consul.sh)"; return 1; }
  # A loopback address of our own whose Consul ports are free, and a free HTTP port on it.
  read -r CHOST CPORT < <(node -e '
    const net = require("node:net");
    const free = (host, port) => new Promise((ok) => {
      const s = net.createServer().once("error", () => ok(0));
      s.listen(port, host, () => { const p = s.address().port; s.close(() => ok(p)); });
    });
    (async () => {
      for (let i = 0; i < 50; i++) {
        const host = `127.0.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
        const fixed = await Promise.all([8300, 8301, 8302, 8502, 8600].map((p) => free(host, p)));
        if (fixed.every(Boolean)) { console.log(host, await free(host, 0)); return; }
      }
      process.exit(1);
    })();')
  [[ -n "${CPORT:-}" ]] || { echo "no free loopback address found"; return 1; }
  addr="$CHOST:$CPORT"
  "$consul" agent -dev -bind "$CHOST" -client "$CHOST" -http-port "$CPORT" -node consumer-test \
    -log-level warn -disable-host-node-id >"$WORK/consul.log" 2>&1 &
  AGENT_PID=$!
  for i in $(seq 150); do
    kill -0 "$AGENT_PID" 2>/dev/null || { echo "the agent exited:"; cat "$WORK/consul.log"; return 1; }
    leader=$(curl -sf "http://$addr/v1/status/leader" 2>/dev/null) && [[ "$leader" == *:* ]] && break
    sleep 0.2
  done
  [[ "${leader:-}" == *:* ]] || { echo "the agent at $addr elected no leader in 30 s:"; cat "$WORK/consul.log"; return 1; }
  # The agent registers its node a moment after electing itself: retry the session.
  for i in $(seq 50); do
    SESSION_A=$(curl -sf -X PUT --data '{"Name":"consumer-a","LockDelay":"0s"}' \
      "http://$addr/v1/session/create" | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).ID' 2>/dev/null) &&
      [[ -n "$SESSION_A" ]] && break
    SESSION_A=""
    sleep 0.2
  done
  [[ -n "$SESSION_A" ]] || { echo "could not create a session on $addr"; return 1; }
  LEADER_KEY="consumer-test/$$/db/leader"
  acquired=$(curl -sf -X PUT --data '{"host":"10.0.0.1","port":5432}' \
    "http://$addr/v1/kv/$LEADER_KEY?acquire=$SESSION_A") || true
  [[ "$acquired" == true ]] || { echo "acquire of $LEADER_KEY answered '$acquired'"; return 1; }
  CONSUL_ADDR="$addr"
  echo "$("$consul" version | head -n 1) at $addr; $LEADER_KEY held by session $SESSION_A"
}
CONSUL_ADDR=""
# Not through check (a subshell): the agent's pid and the key must stay in this shell.
if start_agent >"$WORK/agent.out" 2>&1; then
  ok "consul: a -dev agent, a leader key written with a session -- $(tail -n 1 "$WORK/agent.out")"
else
  fail "consul: a -dev agent, a leader key written with a session" "$(cat "$WORK/agent.out")"
  CONSUL_ADDR=""
fi
if [[ -n "$CONSUL_ADDR" ]]; then
  export LEADER_KEY SESSION_A CONSUL_ADDR
  export EXPECT_NODE='{"host":"10.0.0.1","port":5432}'
  for app in zod325-rxjs75 zod4-mini valibot; do
    skip_if_broken "$app" "$app: current() against the agent" && continue
    check "$app: current() against the agent with the app's validator (a refusing schema gives null)" \
      in_app "$app" env CONSUL_HTTP_ADDR="$CONSUL_ADDR" timeout --foreground 60 node live.mjs
  done
  if ! skip_if_broken real-consul "real-consul: against the agent"; then
    cli_get() {
      local out
      out=$(timeout --foreground 30 node_modules/.bin/consul-leader get "$LEADER_KEY" --addr "$CONSUL_ADDR" --json) ||
        { echo "exit $?: $out"; return 1; }
      node -e 'const l = JSON.parse(process.argv[1]);
        if (l?.node?.host !== "10.0.0.1" || l.session?.id !== process.env.SESSION_A) process.exit(1);
        console.log(`${l.key}: ${JSON.stringify(l.node)}`);' "$out" || { echo "unexpected: $out"; return 1; }
    }
    check "real-consul: CLI consul-leader get --json against the agent" in_app real-consul cli_get
    check "real-consul: current() returns the leader; leader() sees one change (release, new session acquires); close() completes it and nothing stays open" \
      in_app real-consul timeout --foreground 60 node live.mjs
  fi
  # Each run on a key and a session of its own, with a backend of its own in the process.
  if ! skip_if_broken undici7-http "undici7-http: /http routing against the agent"; then
    routing undici7-http "$NODE_MAJOR"
    for major in 22 24; do [[ "$major" == "$NODE_MAJOR" ]] || routing undici7-http "$major"; done
  fi
  # undici 8 needs Node 22.19+: on Node 24 only.
  skip_if_broken undici8-http "undici8-http: /http routing against the agent" || routing undici8-http 24
fi
# The agent is stopped now (the trap does it too), so it does not compete with tsc.
if [[ -n "$AGENT_PID" ]]; then
  kill "$AGENT_PID" 2>/dev/null
  wait "$AGENT_PID" 2>/dev/null
  AGENT_PID=""
fi

# ---- the tsc results, in order
wait "$TSC_RUNNER"
TSC_RUNNER=""
for spec in "${TSC_SPECS[@]}"; do
  IFS='|' read -r id app config what <<<"$spec"
  skip_if_broken "$app" "$app: $what" && continue
  rc=$(cat "$WORK/tsc/$id.rc" 2>/dev/null || echo "no result")
  out=$(cat "$WORK/tsc/$id.out" 2>/dev/null)
  own=$(grep -v '^node_modules/' <<<"$out" | grep -E 'error TS|^[^ ]' || true)
  lib=$(grep '^node_modules/' <<<"$out" || true)
  libcheck=$(node -e 'const c = require(process.argv[1]); console.log(c.compilerOptions.skipLibCheck ? "skip" : "check")' \
    "$WORK/$app/$config")
  if [[ "$rc" == 0 ]]; then
    ok "$app: $what"
    [[ "$libcheck" == check ]] && ok "$app: the installed .d.ts files type-check too ($config, skipLibCheck false)"
  else
    if [[ -z "$own" && -n "$lib" ]]; then ok "$app: $what"; else fail "$app: $what" "exit $rc${own:+$'\n'$own}"; fi
    if [[ "$libcheck" == check ]]; then
      if [[ -z "$lib" ]]; then
        ok "$app: the installed .d.ts files type-check too ($config, skipLibCheck false)"
      else
        fail "$app: the installed .d.ts files type-check too ($config, skipLibCheck false)" "$lib"
      fi
    fi
  fi
done

echo "# consumer test took $((SECONDS - START)) s"
echo "$passed passed, $failed failed"
[[ "$failed" == 0 ]]
