/**
 * `leaders(prefix)` and `watchLeaders(prefix)`: every leader key under a
 * prefix from one recursive blocking query, against a real agent behind the
 * counting proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, put, release } from './support/contender.js';
import { type ConsulProxy, startProxy } from './support/proxy.js';
import { record, until } from './support/recorder.js';

const Node = z.object({ host: z.string() });
let agent: ConsulAgent;
let consul: Consul;
let proxy: ConsulProxy;
let discovery: LeaderDiscovery;
let n = 0;
const uniquePrefix = (): string => `fleet${++n}-${Date.now()}/`;
const hostsOf = (leaders: ReadonlyMap<string, { node: { host: string } }>): Record<string, string> =>
  Object.fromEntries([...leaders].map(([key, leader]) => [key, leader.node.host]));

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  proxy = await startProxy(agent);
  discovery = createLeaderDiscovery({
    consul: { host: proxy.host, port: proxy.port },
    retry: { initialDelayMs: 100, maxDelayMs: 500 },
  });
});

afterAll(async () => {
  discovery?.close();
  await proxy?.close();
  await agent?.destroy();
});

describe('leaders(prefix)', () => {
  it('maps every key with a valid leader, and follows acquires and releases', async () => {
    const prefix = uniquePrefix();
    const a = await createSession(consul, { name: 'a' });
    const b = await createSession(consul, { name: 'b' });
    await acquire(consul, `${prefix}a/leader`, a, JSON.stringify({ host: 'a' }));
    await acquire(consul, `${prefix}b/leader`, b, JSON.stringify({ host: 'b' }));
    await put(consul, `${prefix}c/leader`, ''); // a key nobody holds
    await acquire(consul, `${prefix}d/leader`, b, 'not json'); // held, invalid

    const leaders = record(discovery.leaders(prefix, { schema: Node }));
    const states = record(discovery.watchLeaders(prefix, { schema: Node }));
    const first = await leaders.next((m) => m.size === 2);
    expect(hostsOf(first)).toEqual({ [`${prefix}a/leader`]: 'a', [`${prefix}b/leader`]: 'b' });
    expect(first.get(`${prefix}a/leader`)?.session.name).toBe('a');
    const all = await states.next((m) => m.size === 4);
    expect(Object.fromEntries([...all].map(([k, s]) => [k, s.status]))).toEqual({
      [`${prefix}a/leader`]: 'leader',
      [`${prefix}b/leader`]: 'leader',
      [`${prefix}c/leader`]: 'vacant',
      [`${prefix}d/leader`]: 'invalid',
    });

    await release(consul, `${prefix}a/leader`, a);
    await leaders.next((m) => m.size === 1 && m.has(`${prefix}b/leader`));
    const c = await createSession(consul, { name: 'c' });
    await acquire(consul, `${prefix}c/leader`, c, JSON.stringify({ host: 'c' }));
    const last = await leaders.next((m) => m.has(`${prefix}c/leader`));
    expect(hostsOf(last)).toEqual({ [`${prefix}b/leader`]: 'b', [`${prefix}c/leader`]: 'c' });
    // Each emission differs from the one before it.
    expect(leaders.values.map((m) => Object.keys(hostsOf(m)).join())).toEqual([
      `${prefix}a/leader,${prefix}b/leader`,
      `${prefix}b/leader`,
      `${prefix}b/leader,${prefix}c/leader`,
    ]);
    leaders.unsubscribe();
    states.unsubscribe();
  });

  it('follows 50 keys with one connection: one blocking read in flight, one session list for the first load', async () => {
    const prefix = uniquePrefix();
    const sessions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => createSession(consul, { name: `s${i}` })),
    );
    for (let i = 0; i < 50; i += 1) {
      const key = `${prefix}svc${i}/leader`;
      if (i < 10) await acquire(consul, key, sessions[i] ?? '', JSON.stringify({ host: `h${i}` }));
      else await put(consul, key, '');
    }
    const before = proxy.requests.length;
    const leaders = record(discovery.leaders(prefix, { schema: Node }));
    await leaders.next((m) => m.size === 10);
    await until('one blocking read', () => proxy.inFlight(`/v1/kv/${prefix}`) === 1);
    const seen = proxy.requests.slice(before);
    expect(seen.filter((r) => r.path === '/v1/session/list')).toHaveLength(1);
    expect(seen.filter((r) => r.path.startsWith('/v1/session/info/'))).toHaveLength(0);
    expect(seen.every((r) => !r.path.startsWith('/v1/kv/') || r.query.has('recurse'))).toBe(true);

    // One more leader: one more session info, one more KV read.
    const extra = await createSession(consul, { name: 'extra' });
    await acquire(consul, `${prefix}svc42/leader`, extra, JSON.stringify({ host: 'h42' }));
    const after = await leaders.next((m) => m.size === 11);
    expect(after.get(`${prefix}svc42/leader`)?.session.id).toBe(extra);
    expect(proxy.requests.filter((r) => r.path === `/v1/session/info/${extra}`)).toHaveLength(1);
    expect(proxy.inFlight(`/v1/kv/`)).toBeLessThanOrEqual(1);
    leaders.unsubscribe();
  });

  it('reports an outage per key in watchLeaders(), keeps the leaders in leaders(), and recovers', async () => {
    const prefix = uniquePrefix();
    const s = await createSession(consul);
    await acquire(consul, `${prefix}x/leader`, s, JSON.stringify({ host: 'x' }));
    const leaders = record(discovery.leaders(prefix, { schema: Node }));
    const states = record(discovery.watchLeaders(prefix, { schema: Node }));
    await leaders.next((m) => m.size === 1);
    await until('blocking', () => proxy.inFlight(`/v1/kv/${prefix}`) === 1);
    let failures = 0;
    proxy.rule = (req) =>
      req.path === `/v1/kv/${prefix}` && failures++ < 2
        ? { action: 'respond', status: 503, body: 'busy' }
        : undefined;
    try {
      const y = await createSession(consul);
      await acquire(consul, `${prefix}y/leader`, y, JSON.stringify({ host: 'y' }));
      const outage = await states.next((m) => [...m.values()].some((v) => v.status === 'unreachable'));
      const state = outage.get(`${prefix}x/leader`);
      expect(state?.status).toBe('unreachable');
      if (state?.status !== 'unreachable') throw new Error('unexpected');
      expect(state.error.code).toBe('CONSUL_HTTP_ERROR');
      expect(state.lastKnown?.status).toBe('leader');
      const recovered = await leaders.next((m) => m.size === 2);
      expect(hostsOf(recovered)).toEqual({ [`${prefix}x/leader`]: 'x', [`${prefix}y/leader`]: 'y' });
      // leaders() never dropped x during the outage.
      expect(leaders.values.every((m) => m.has(`${prefix}x/leader`))).toBe(true);
    } finally {
      proxy.rule = undefined;
    }
    leaders.unsubscribe();
    states.unsubscribe();
  });

  it('replays the current map to late subscribers, and an empty prefix is an empty map', async () => {
    const prefix = uniquePrefix();
    const leaders$ = discovery.leaders(prefix);
    const early = record(leaders$);
    const empty = await early.next(() => true);
    expect(empty.size).toBe(0);
    const late = record(leaders$);
    expect(late.values).toHaveLength(1);
    early.unsubscribe();
    late.unsubscribe();
  });

  it('watchPrefix() tells an outage with no known key from an empty prefix', async () => {
    const prefix = uniquePrefix();
    const healthy = record(discovery.watchPrefix(prefix));
    const empty = await healthy.next(() => true);
    expect(empty.unreachable).toBeNull();
    expect(empty.states.size).toBe(0);
    expect(empty.consul?.knownLeader).toBe(true);
    healthy.unsubscribe();

    const dead = createLeaderDiscovery({
      consul: { host: agent.host, port: 1 },
      retry: { initialDelayMs: 100, maxDelayMs: 200 },
    });
    const down = record(dead.watchPrefix(prefix));
    const outage = await down.next(() => true);
    expect(outage.states.size).toBe(0);
    expect(outage.unreachable?.error.code).toBe('CONSUL_UNREACHABLE');
    expect(outage.unreachable?.attempt).toBe(1);
    expect(outage.consul).toBeNull();
    down.unsubscribe();
    dead.close();
  });

  it('watchPrefix() carries the current read meta while every key is unchanged', async () => {
    const prefix = uniquePrefix();
    const s = await createSession(consul);
    await acquire(consul, `${prefix}a/leader`, s, JSON.stringify({ host: 'a' }));
    const states = record(discovery.watchPrefix(prefix, { schema: Node }));
    const first = await states.next((v) => v.states.size === 1);
    await acquire(consul, `${prefix}b/leader`, s, JSON.stringify({ host: 'b' }));
    const second = await states.next((v) => v.states.size === 2);
    expect(second.consul?.index).toBeGreaterThan(first.consul?.index ?? 0n);
    // The unchanged key keeps its state object (its descriptor is not decoded again).
    expect(second.states.get(`${prefix}a/leader`)).toBe(first.states.get(`${prefix}a/leader`));
    states.unsubscribe();
  });
});
