/**
 * A real cluster on loopback addresses: three servers and one client agent.
 * The SDK reads through the client agent (or a list of agents) while the test
 * kills Raft servers.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, freeLoopbackHost, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, destroySession } from './support/contender.js';
import { delay, record } from './support/recorder.js';

const Node = z.object({ host: z.string() });
const KEY = 'cluster/service/leader';
const OTHER_KEY = 'cluster/other/leader';
let servers: ConsulAgent[] = [];
let client: ConsulAgent;
const discoveries: LeaderDiscovery[] = [];

function discoveryOf(options: Parameters<typeof createLeaderDiscovery>[0]): LeaderDiscovery {
  const d = createLeaderDiscovery(options);
  discoveries.push(d);
  return d;
}

async function raftLeader(via: ConsulAgent): Promise<string> {
  const res = await fetch(`http://${via.address}/v1/status/leader`);
  return (await res.json()) as string;
}

async function untilRaftLeader(via: ConsulAgent, not?: string): Promise<string> {
  for (let i = 0; i < 300; i += 1) {
    const leader = await raftLeader(via).catch(() => '');
    if (leader && leader !== not) return leader;
    await delay(100);
  }
  throw new Error('the cluster elected no Raft leader');
}

/** Retries a write until the client agent's node is registered (anti-entropy runs just after a join). */
async function whenRegistered<T>(write: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i += 1) {
    try {
      return await write();
    } catch (error) {
      if (i > 100 || !/Missing (node|check 'serfHealth') registration|No cluster leader/.test(String(error)))
        throw error;
      await delay(100);
    }
  }
}

beforeAll(async () => {
  const hosts = await Promise.all([freeLoopbackHost(), freeLoopbackHost(), freeLoopbackHost()]);
  const join = hosts.flatMap((h) => ['-retry-join', h]);
  servers = await Promise.all(
    hosts.map((host) =>
      startConsulAgent({
        host,
        dev: false,
        waitForLeader: false,
        args: ['-server', '-bootstrap-expect', '3', '-node', `server-${host}`, ...join],
        // Fast failure detection on loopback.
        hcl: 'performance { raft_multiplier = 1 }',
      }),
    ),
  );
  client = await startConsulAgent({
    dev: false,
    waitForLeader: false,
    args: ['-node', 'client-agent', ...join],
  });
  await untilRaftLeader(client);
  await whenRegistered(() => createSession(consulClient(client.address), { name: 'warm-up' }));
}, 90_000);

afterAll(async () => {
  for (const d of discoveries) d.close();
  await Promise.all([client, ...servers].map((a) => a?.destroy()));
});

it('fails over to the next agent of its list when one stops answering', async () => {
  const writer = consulClient(client.address);
  const a = await createSession(writer, { name: 'a' });
  expect(await acquire(writer, KEY, a, JSON.stringify({ host: 'a' }))).toBe(true);
  const fallback = servers[0];
  if (!fallback) throw new Error('no server');
  const dead = await freeLoopbackHost(); // nothing listens there
  const d = discoveryOf({
    consul: [
      { host: dead, port: 8500 },
      { host: client.host, port: client.port },
      { host: fallback.host, port: fallback.port },
    ],
    retry: { initialDelayMs: 100, maxDelayMs: 500 },
  });
  const states = record(d.watch(KEY, { schema: Node }));
  const first = await states.next((v) => v.status === 'leader');
  expect(states.values[0]?.status).toBe('unreachable');
  expect(first.status === 'leader' && first.leader.session.id).toBe(a);
  await client.kill();
  const unreachable = await states.next((v) => v.status === 'unreachable', {
    from: states.values.indexOf(first),
  });
  // Meanwhile the leadership changes (written through a server).
  const viaServer = consulClient(fallback.address);
  await destroySession(viaServer, a);
  const b = await createSession(viaServer, { name: 'b' });
  expect(await acquire(viaServer, KEY, b, JSON.stringify({ host: 'b' }))).toBe(true);
  const back = await states.next((v) => v.status === 'leader' && v.leader.session.id === b, {
    from: states.values.indexOf(unreachable),
  });
  expect(back.status === 'leader' && back.leader.node.host).toBe('b');
  states.unsubscribe();
  await client.start();
  await untilRaftLeader(client);
}, 60_000);

it('carries on through the loss of the Raft leader, and serves stale reads without quorum', async () => {
  const writer = consulClient(client.address);
  const a = await createSession(writer, { name: 'c' });
  expect(await acquire(writer, OTHER_KEY, a, JSON.stringify({ host: 'c' }))).toBe(true);

  const d = discoveryOf({ consul: { host: client.host, port: client.port }, wait: '5s' });
  const leaders = record(d.leader(OTHER_KEY, { schema: Node }));
  const stale = record(d.watch(OTHER_KEY, { schema: Node, consistency: 'stale' }));
  await leaders.next((v) => v?.node.host === 'c');
  await stale.next((v) => v.status === 'leader');

  // Kill the Raft leader: Consul elects another, and the watch carries on.
  const oldRaftLeader = await raftLeader(client);
  const victim = servers.find((s) => oldRaftLeader.startsWith(`${s.host}:`));
  if (!victim) throw new Error(`no server is ${oldRaftLeader}`);
  await victim.kill();
  await untilRaftLeader(client, oldRaftLeader);
  await destroySession(writer, a);
  const b = await createSession(writer, { name: 'b' });
  expect(await acquire(writer, OTHER_KEY, b, JSON.stringify({ host: 'b' }))).toBe(true);
  const after = await leaders.next((v) => v?.node.host === 'b', { timeoutMs: 30_000 });
  expect(after?.session.id).toBe(b);
  await stale.next((v) => v.status === 'leader' && v.leader.session.id === b, { timeoutMs: 30_000 });

  // Kill a second server: no quorum. A stale read is still answered, and says it is stale.
  const second = servers.find((s) => s !== victim);
  await second?.kill();
  const noQuorum = discoveryOf({ consul: { host: client.host, port: client.port }, wait: '2s' });
  const staleNow = record(noQuorum.watch(OTHER_KEY, { schema: Node, consistency: 'stale' }));
  // The surviving follower may not have learnt that the last writes committed: its
  // answer can be older than what was acknowledged. That is what `stale` means.
  const seen = await staleNow.next((v) => v.status !== 'unreachable' && !v.consul.knownLeader, {
    timeoutMs: 30_000,
  });
  expect(seen.status !== 'unreachable' && seen.consul.lastContactMs).toBeGreaterThan(0);
  // A default-consistency read needs a Raft leader: it reports the outage, never "no leader".
  const strictNow = record(noQuorum.watch(OTHER_KEY, { schema: Node }));
  const failed = await strictNow.next((v) => v.status === 'unreachable', { timeoutMs: 30_000 });
  expect(failed.status === 'unreachable' && failed.error.code).toBe('CONSUL_HTTP_ERROR');
  expect(strictNow.values.some((v) => v.status === 'vacant')).toBe(false);
  expect(leaders.values.at(-1)?.node.host).toBe('b');
  for (const r of [leaders, stale, staleNow, strictNow]) r.unsubscribe();
}, 120_000);
