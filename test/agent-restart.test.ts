/**
 * A dev agent keeps everything in memory: restarted, its Raft index starts
 * again far below the one a watcher holds. The watch must notice at once
 * (not after its blocking wait), and emit the new leader once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, put } from './support/contender.js';
import { delay, record } from './support/recorder.js';

const Node = z.object({ host: z.string() });
let agent: ConsulAgent;
let discovery: LeaderDiscovery;

beforeAll(async () => {
  agent = await startConsulAgent();
  discovery = createLeaderDiscovery({
    consul: { host: agent.host, port: agent.port },
    // A long wait: had the watch blocked on its old index, it would wait 5 minutes.
    wait: '5m',
    retry: { initialDelayMs: 200, maxDelayMs: 2_000 },
  });
});

afterAll(async () => {
  discovery?.close();
  await agent?.destroy();
});

it('reports unreachable with growing capped delays, keeps the last leader, and follows the leader elected after a restart once', async () => {
  const key = 'service/restart/leader';
  const before = consulClient(agent.address);
  for (let i = 0; i < 40; i += 1) await put(before, `filler/${i}`, 'x'); // push the index up
  const a = await createSession(before, { name: 'before-restart' });
  await acquire(before, key, a, JSON.stringify({ host: 'a' }));

  const leaders = record(discovery.leader(key, { schema: Node }));
  const strict = record(discovery.leader(key, { schema: Node, nullWhenUnreachableFor: '1s' }));
  const states = record(discovery.watch(key, { schema: Node }));
  await leaders.next((v) => v?.node.host === 'a');
  const held = await states.next((v) => v.status === 'leader');
  const indexBefore = held.status === 'leader' ? held.consul.index : 0n;

  await agent.kill();
  const fourth = await states.next((v) => v.status === 'unreachable' && v.attempt === 4);
  const outage = states.values.filter((v) => v.status === 'unreachable');
  const delays = outage.map((v) => (v.status === 'unreachable' ? v.retryInMs : -1));
  expect(outage.map((v) => (v.status === 'unreachable' ? v.attempt : 0))).toEqual([1, 2, 3, 4]);
  expect(delays[1]).toBeGreaterThanOrEqual(delays[0] ?? 0);
  expect(delays[2]).toBeGreaterThanOrEqual(delays[1] ?? 0);
  expect(Math.max(...delays)).toBeLessThanOrEqual(2_000);
  if (fourth.status !== 'unreachable') throw new Error('unexpected');
  expect(fourth.error.code).toBe('CONSUL_UNREACHABLE');
  expect(fourth.lastKnown?.status).toBe('leader');
  // leader() keeps the last leader while Consul cannot be read...
  expect(leaders.values.map((v) => v?.node.host ?? null)).toEqual(['a']);
  // ...unless told to give up on it after a while.
  await strict.next((v) => v === null);
  expect(strict.values.map((v) => v?.node.host ?? null)).toEqual(['a', null]);

  await agent.start();
  const after = consulClient(agent.address);
  const b = await createSession(after, { name: 'after-restart' });
  expect(await acquire(after, key, b, JSON.stringify({ host: 'b' }))).toBe(true);
  const settled = await states.next((v) => v.status === 'leader' && v.leader.node.host === 'b', {
    timeoutMs: 15_000,
  });
  expect(settled.status === 'leader' && settled.consul.index < indexBefore).toBe(true);
  await leaders.next((v) => v?.node.host === 'b');
  await delay(1_000);
  const hosts = leaders.values.map((v) => v?.node.host ?? null);
  expect(hosts.filter((h) => h === 'b')).toHaveLength(1);
  expect(hosts.at(-1)).toBe('b');
  await strict.next((v) => v?.node.host === 'b');
  leaders.unsubscribe();
  strict.unsubscribe();
  states.unsubscribe();
}, 60_000);
