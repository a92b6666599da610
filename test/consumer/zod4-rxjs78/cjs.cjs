// Run by scripts/consumer-test.sh: require() of the ESM-only packages from a CommonJS
// file (Node 20.19+ and 22.12+ load ES modules through require() without a flag).
/* global require */
/* eslint-disable @typescript-eslint/no-require-imports -- require() of the packages is what this file tests */
'use strict';
const assert = require('node:assert/strict');
const { Observable } = require('rxjs');
const { z } = require('zod');
const { createLeaderDiscovery, isLeaderDiscoveryError } = require('@consul-leader/discovery');
const { leaderStateSchema } = require('@consul-leader/types');

async function main() {
  const Node = z.object({ host: z.string(), port: z.number().int() });
  const discovery = createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 1 } });
  const leader$ = discovery.leader('service/db/leader', { schema: Node });
  assert.ok(leader$ instanceof Observable, "leader() is not an instance of the app's rxjs Observable");
  const error = await discovery.current('service/db/leader', { schema: Node, timeout: '5s' }).then(
    (value) => assert.fail(`current() resolved ${JSON.stringify(value)} with no Consul`),
    (e) => e,
  );
  assert.ok(isLeaderDiscoveryError(error), `current() rejected with a foreign error: ${error}`);
  discovery.close();
  const state = leaderStateSchema(Node).parse({
    status: 'vacant',
    key: 'k',
    reason: 'key-missing',
    consul: { index: '7', lastContactMs: 0, knownLeader: true },
  });
  assert.equal(state.consul.index, 7n);
  console.log(`require() ok on Node ${process.versions.node}; current() with no Consul: ${error.code}`);
}
main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
