// Run by scripts/consumer-test.sh against a real Consul agent (CONSUL_HTTP_ADDR):
// current() validates the leader's descriptor with a zod 4 mini schema.
import assert from 'node:assert/strict';
import * as z from 'zod/mini';
import { createLeaderDiscovery } from '@consul-leader/discovery';

const key = process.env.LEADER_KEY;
const expected = JSON.parse(process.env.EXPECT_NODE);
const discovery = createLeaderDiscovery();
try {
  const Node = z.object({ host: z.string(), port: z.number().check(z.int()) });
  const leader = await discovery.current(key, { schema: Node, timeout: '5s' });
  assert.deepEqual(leader?.node, expected);
  const Wrong = z.object({ host: z.string(), port: z.string() });
  const none = await discovery.current(key, { schema: Wrong, timeout: '5s' });
  assert.equal(none, null, 'a descriptor the schema refuses gave a leader');
  console.log(`zod/mini schema: ${JSON.stringify(leader.node)}; a refusing schema: null`);
} finally {
  discovery.close();
}
