/**
 * Coalescing: many single keys under one prefix are served from one recursive
 * blocking query, without a repeated or lost emission when the switch happens.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, release } from './support/contender.js';
import { type ConsulProxy, startProxy } from './support/proxy.js';
import { delay, record, until } from './support/recorder.js';

const Node = z.object({ host: z.string() });
let agent: ConsulAgent;
let consul: Consul;
let proxy: ConsulProxy;

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  proxy = await startProxy(agent);
});

afterAll(async () => {
  await proxy?.close();
  await agent?.destroy();
});

const recursiveInFlight = (prefix: string): number =>
  proxy.requests.filter(
    (r) => r.path === `/v1/kv/${prefix}` && r.query.has('recurse') && r.status === undefined,
  ).length;

it('switches to one recursive query at minKeys, with no repeated or lost emission', async () => {
  const prefix = `co${Date.now()}/`;
  const session = await createSession(consul, { name: 'co' });
  for (let i = 0; i < 6; i += 1)
    await acquire(consul, `${prefix}k${i}/leader`, session, JSON.stringify({ host: `h${i}` }));
  const discovery = createLeaderDiscovery({
    consul: { host: proxy.host, port: proxy.port },
    coalesce: { minKeys: 5 },
  });
  const recs = [0, 1, 2, 3].map((i) => record(discovery.leader(`${prefix}k${i}/leader`, { schema: Node })));
  await Promise.all(recs.map((r) => r.next((v) => v !== null)));
  await until('four single blocking reads', () => proxy.inFlight(`/v1/kv/${prefix}`) === 4);

  recs.push(record(discovery.leader(`${prefix}k4/leader`, { schema: Node })));
  await until(
    'one recursive read, no single ones',
    () => proxy.inFlight(`/v1/kv/${prefix}`) === 1 && recursiveInFlight(prefix) === 1,
  );
  await recs[4]?.next((v) => v !== null);
  // A sixth key joins the coalesced group directly.
  recs.push(record(discovery.leader(`${prefix}k5/leader`, { schema: Node })));
  await recs[5]?.next((v) => v !== null);
  // Served from the prefix's answer: never a query of its own.
  expect(proxy.requests.filter((r) => r.path === `/v1/kv/${prefix}k5/leader`)).toHaveLength(0);
  // (The recursive read may be between two reads right now: its first answer's session join goes first.)
  await until(
    'the recursive read blocking again, alone',
    () => proxy.inFlight(`/v1/kv/${prefix}`) === 1 && recursiveInFlight(prefix) === 1,
  );
  expect(recs.map((r) => r.values.length)).toEqual([1, 1, 1, 1, 1, 1]);

  // A change to one key reaches its subscribers only, once.
  await release(consul, `${prefix}k2/leader`, session);
  await recs[2]?.next((v) => v === null);
  await delay(300);
  expect(recs.map((r) => r.values.length)).toEqual([1, 1, 2, 1, 1, 1]);
  discovery.close();
  await until('closed', () => proxy.inFlight(`/v1/kv/${prefix}`) === 0);
});

it('follows 1,000 keys under one prefix with one blocking read in flight', async () => {
  const prefix = `many${Date.now()}/`;
  const session = await createSession(consul, { name: 'many' });
  // One transaction per 64 keys keeps the set-up short.
  for (let start = 0; start < 1000; start += 64) {
    const ops = [];
    for (let i = start; i < Math.min(1000, start + 64); i += 1) {
      ops.push({
        KV: {
          Verb: 'lock',
          Key: `${prefix}s${i}/leader`,
          Value: Buffer.from(JSON.stringify({ host: `h${i}` })).toString('base64'),
          Session: session,
        },
      });
    }
    const res = await fetch(`http://${agent.address}/v1/txn`, { method: 'PUT', body: JSON.stringify(ops) });
    expect(res.status).toBe(200);
  }
  const discovery = createLeaderDiscovery({ consul: { host: proxy.host, port: proxy.port } });
  const recs = Array.from({ length: 1000 }, (_, i) =>
    record(discovery.leader(`${prefix}s${i}/leader`, { schema: Node })),
  );
  await until(
    'every key has its leader',
    () => recs.every((r) => r.values.at(-1)?.node.host !== undefined),
    30_000,
  );
  await until('one blocking read in flight', () => proxy.inFlight(`/v1/kv/${prefix}`) === 1);
  expect(recursiveInFlight(prefix)).toBe(1);

  const other = await createSession(consul, { name: 'other' });
  await release(consul, `${prefix}s500/leader`, session);
  expect(await acquire(consul, `${prefix}s500/leader`, other, JSON.stringify({ host: 'new' }))).toBe(true);
  const moved = await recs[500]?.next((v) => v?.node.host === 'new');
  expect(moved?.session.id).toBe(other);
  expect(recs[499]?.values).toHaveLength(1);
  expect(proxy.inFlight(`/v1/kv/${prefix}`)).toBeLessThanOrEqual(1);
  discovery.close();
}, 90_000);

it('keeps one query per key with coalesce: false', async () => {
  const prefix = `solo${Date.now()}/`;
  const discovery = createLeaderDiscovery({
    consul: { host: proxy.host, port: proxy.port },
    coalesce: false,
  });
  const recs = Array.from({ length: 40 }, (_, i) => record(discovery.leader(`${prefix}k${i}`)));
  await until('forty single blocking reads', () => proxy.inFlight(`/v1/kv/${prefix}`) === 40);
  expect(recursiveInFlight(prefix)).toBe(0);
  for (const r of recs) r.unsubscribe();
  discovery.close();
});
