// Run by scripts/consumer-test.sh: `import` of both packages from an ES module app.
import assert from 'node:assert/strict';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { createLeaderDiscovery, isLeaderDiscoveryError } from '@consul-leader/discovery';
import { leaderStateSchema } from '@consul-leader/types';

const Node = z.object({ host: z.string(), port: z.number().int() });
// Port 1 on loopback: nothing listens, so the read fails at once.
const discovery = createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 1 } });

const leader$ = discovery.leader('service/db/leader', { schema: Node });
assert.ok(leader$ instanceof Observable, "leader() is not an instance of the app's rxjs Observable");
assert.equal(typeof leader$[Symbol.asyncIterator], 'function', 'leader() is not async-iterable');

const error = await discovery.current('service/db/leader', { schema: Node, timeout: '5s' }).then(
  (value) => assert.fail(`current() resolved ${JSON.stringify(value)} with no Consul`),
  (e) => e,
);
assert.ok(isLeaderDiscoveryError(error), `current() rejected with a foreign error: ${error}`);
discovery.close();

// @consul-leader/types on the app's zod (zod/v4).
const state = leaderStateSchema(Node).parse({
  status: 'vacant',
  key: 'service/db/leader',
  reason: 'no-session',
  consul: { index: '42', lastContactMs: 0, knownLeader: true },
});
assert.equal(state.consul.index, 42n);
console.log(`import ok on Node ${process.versions.node}; current() with no Consul: ${error.code}`);
