// Run by scripts/consumer-test.sh: @consul-leader/types's schemas on zod 3.25's zod/v4.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import { z } from 'zod/v4';
import { bigintReplacer, leaderStateSchema } from '@consul-leader/types';

const Node = z.object({ host: z.string(), port: z.number().int() });
const session = {
  id: 'a1b2c3d4-0000-0000-0000-000000000001',
  name: 'db',
  node: 'node-1',
  checks: ['serfHealth'],
  behavior: 'release',
  ttl: '',
  ttlMs: null,
  lockDelayMs: 0,
  createIndex: 10n,
  modifyIndex: 10n,
};
const state = {
  status: 'leader',
  key: 'service/db/leader',
  leader: {
    key: 'service/db/leader',
    lockIndex: 1n,
    modifyIndex: 12n,
    createIndex: 11n,
    flags: 0n,
    node: { host: '10.0.0.1', port: 5432 },
    session,
  },
  consul: { index: 12n, lastContactMs: 0, knownLeader: true },
};
const relayed = JSON.parse(JSON.stringify(state, bigintReplacer));
const parsed = leaderStateSchema(Node).parse(relayed);
assert.deepEqual(parsed, state);
const bad = leaderStateSchema(Node).safeParse({
  ...relayed,
  leader: { ...relayed.leader, node: { host: 1 } },
});
assert.equal(bad.success, false, 'a bad descriptor passed');
const { version } = JSON.parse(
  readFileSync(new URL('node_modules/zod/package.json', import.meta.url), 'utf8'),
);
console.log(`leaderStateSchema round trip ok on zod ${version}'s zod/v4`);
