/**
 * Consul's blocking-query rules, observed from the wire: a proxy between the
 * SDK and a real agent counts and shapes the requests the SDK sends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, put, release } from './support/contender.js';
import { type ConsulProxy, startProxy } from './support/proxy.js';
import { delay, record, until } from './support/recorder.js';

const Node = z.object({ host: z.string() });
let agent: ConsulAgent;
let consul: Consul;
let proxy: ConsulProxy;
let discovery: LeaderDiscovery;
let n = 0;
const uniqueKey = (): string => `bq/t${++n}-${Date.now()}/leader`;
const kvPath = (key: string): string => `/v1/kv/${key}`;
const kvRequests = (key: string) => proxy.requests.filter((r) => r.path === kvPath(key));

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  proxy = await startProxy(agent);
  discovery = createLeaderDiscovery({ consul: { host: proxy.host, port: proxy.port } });
});

afterAll(async () => {
  discovery?.close();
  await proxy?.close();
  await agent?.destroy();
});

describe('index handling', () => {
  it('starts non-blocking, then blocks on the X-Consul-Index of each answer (404 included) with an explicit wait', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node, wait: '30s' }));
    await rec.next((v) => v === null);
    await until('a blocking read in flight', () => proxy.inFlight(kvPath(key)) === 1);
    const [first, second] = kvRequests(key);
    expect(first?.query.has('index')).toBe(false);
    expect(first?.status).toBe(404);
    expect(second?.query.get('index')).toBe(first?.index);
    expect(second?.query.get('wait')).toBe('30000ms');
    rec.unsubscribe();
  });

  it('holds uint64 indexes exactly (strings on the wire, bigint in states)', async () => {
    const key = uniqueKey();
    const states = record(discovery.watch(key));
    const state = await states.next(() => true);
    if (state.status === 'unreachable') throw new Error('unexpected');
    expect(typeof state.consul.index).toBe('bigint');
    expect(state.consul.index.toString()).toBe(kvRequests(key)[0]?.index);
    states.unsubscribe();
  });
});

describe('one query per key', () => {
  it('serves many subscribers and several watch() calls from one blocking query', async () => {
    const key = uniqueKey();
    const leader$ = discovery.leader(key, { schema: Node });
    const subscribers = Array.from({ length: 50 }, () => record(leader$));
    const others = [record(discovery.watch(key)), record(discovery.leader(key, { decode: 'text' }))];
    await until('all subscribers have a value', () => subscribers.every((s) => s.values.length === 1));
    const s = await createSession(consul);
    for (const host of ['a', 'b', 'c']) {
      await acquire(consul, key, s, JSON.stringify({ host }));
      await Promise.all(subscribers.map((sub) => sub.next((v) => v?.node.host === host)));
    }
    await until('the next blocking read is in flight', () => proxy.inFlight(kvPath(key)) === 1);
    // 1 first read + 1 blocking read per answer (3 changes) + at most one wake-up for the subscribers' setup.
    expect(kvRequests(key).length).toBeLessThanOrEqual(1 + 1 + 3 + 1);
    expect(proxy.inFlight(kvPath(key))).toBe(1);
    // The session is read once, however many times its key was written.
    expect(proxy.requests.filter((r) => r.path === `/v1/session/info/${s}`)).toHaveLength(1);
    for (const sub of [...subscribers, ...others]) sub.unsubscribe();
  });

  it("reads each contender's session once when two take turns", async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    await rec.next((v) => v === null);
    const [a, b] = [await createSession(consul), await createSession(consul)];
    for (let turn = 0; turn < 6; turn += 1) {
      const s = turn % 2 === 0 ? a : b;
      await acquire(consul, key, s, JSON.stringify({ host: `turn${turn}` }));
      await rec.next((v) => v?.session.id === s && v.node.host === `turn${turn}`);
      await release(consul, key, s);
      await rec.next((v) => v === null);
    }
    expect(proxy.requests.filter((r) => r.path === `/v1/session/info/${a}`)).toHaveLength(1);
    expect(proxy.requests.filter((r) => r.path === `/v1/session/info/${b}`)).toHaveLength(1);
    rec.unsubscribe();
  });

  it('aborts the in-flight blocking read when the last subscriber leaves', async () => {
    const key = uniqueKey();
    const a = record(discovery.leader(key));
    const b = record(discovery.leader(key));
    await until('blocking', () => proxy.inFlight(kvPath(key)) === 1);
    a.unsubscribe();
    await delay(200);
    expect(proxy.inFlight(kvPath(key))).toBe(1);
    b.unsubscribe();
    await until('aborted', () => proxy.inFlight(kvPath(key)) === 0);
  });

  it('follows a key over one connection: a new session is read before the next blocking read', async () => {
    const ownProxy = await startProxy(agent);
    const own = createLeaderDiscovery({ consul: { host: ownProxy.host, port: ownProxy.port } });
    const key = uniqueKey();
    const rec = record(own.leader(key, { schema: Node }));
    await rec.next((v) => v === null);
    for (const host of ['a', 'b', 'c']) {
      const s = await createSession(consul);
      await acquire(consul, key, s, JSON.stringify({ host }));
      await rec.next((v) => v?.session.id === s && v.node.host === host);
      await release(consul, key, s);
      await rec.next((v) => v === null);
    }
    await until('the next blocking read is in flight', () => ownProxy.inFlight(kvPath(key)) === 1);
    expect(ownProxy.requests.filter((r) => r.path.startsWith('/v1/session/info/'))).toHaveLength(3);
    // One HTTP/1.1 connection carries one request at a time: the join went first.
    expect(ownProxy.connectionsAccepted()).toBe(1);
    rec.unsubscribe();
    own.close();
    await ownProxy.close();
  });

  it('leaves no socket open after close()', async () => {
    const ownProxy = await startProxy(agent);
    const own = createLeaderDiscovery({ consul: { host: ownProxy.host, port: ownProxy.port } });
    const recs = [record(own.leader(uniqueKey())), record(own.watch(uniqueKey()))];
    await until('two blocking reads', () => ownProxy.inFlight('/v1/kv/') === 2);
    expect(ownProxy.openConnections()).toBeGreaterThan(0);
    own.close();
    await until('all sockets closed', () => ownProxy.openConnections() === 0);
    expect(recs.every((r) => r.completed)).toBe(true);
    await ownProxy.close();
  });
});

describe('wake-ups that bring nothing new', () => {
  it('are rate-limited, while a real change still comes through', async () => {
    const key = uniqueKey();
    // The proxy strips index/wait, so Consul answers every read at once with the same data.
    proxy.rule = (req) =>
      req.path === kvPath(key) ? { action: 'forward', path: `${kvPath(key)}` } : undefined;
    try {
      const rec = record(discovery.leader(key, { schema: Node }));
      await rec.next((v) => v === null);
      const start = performance.now();
      const before = kvRequests(key).length;
      await delay(3_000);
      const seconds = (performance.now() - start) / 1000;
      const count = kvRequests(key).length - before;
      // Default bucket: burst 5, then 2 per second.
      expect(count).toBeLessThanOrEqual(5 + Math.ceil(2 * seconds) + 1);
      expect(count).toBeGreaterThan(0);
      const s = await createSession(consul);
      await acquire(consul, key, s, JSON.stringify({ host: 'through' }));
      await rec.next((v) => v?.node.host === 'through');
      expect(rec.values.map((v) => v?.node.host ?? null)).toEqual([null, 'through']);
      rec.unsubscribe();
    } finally {
      proxy.rule = undefined;
    }
  });

  it('do not re-emit: unrelated writes wake a missing key’s query without an emission', async () => {
    const key = uniqueKey();
    const states = record(discovery.watch(key));
    await states.next(() => true);
    await until('blocking', () => proxy.inFlight(kvPath(key)) === 1);
    const before = kvRequests(key).length;
    for (let i = 0; i < 3; i += 1) await put(consul, `${key}-sibling-${i}`, 'x');
    await until('woken by the writes', () => kvRequests(key).length > before);
    await delay(200);
    expect(states.values).toHaveLength(1);
    states.unsubscribe();
  });
});

describe('after a failed request', () => {
  it('reads without blocking before it blocks again, and reports the failure', async () => {
    const key = uniqueKey();
    const states = record(discovery.watch(key, { schema: Node }));
    await states.next(() => true);
    await until('blocking', () => proxy.inFlight(kvPath(key)) === 1);
    const s = await createSession(consul);
    await acquire(consul, key, s, JSON.stringify({ host: 'x' }));
    await states.next((v) => v.status === 'leader');
    await until('blocking', () => proxy.inFlight(kvPath(key)) === 1);
    let failed = false;
    proxy.rule = (req) => {
      if (req.path !== kvPath(key) || failed) return undefined;
      failed = true;
      return { action: 'respond', status: 500, body: 'boom' };
    };
    try {
      // Wake the blocked read (same session: its info is cached) so the next one meets the fault.
      await acquire(consul, key, s, JSON.stringify({ host: 'y' }));
      const unreachable = await states.next((v) => v.status === 'unreachable');
      if (unreachable.status !== 'unreachable') throw new Error('unexpected');
      expect(unreachable.error.code).toBe('CONSUL_HTTP_ERROR');
      expect(unreachable.error.status).toBe(500);
      expect(unreachable.attempt).toBe(1);
      expect(unreachable.lastKnown?.status).toBe('leader');
      await states.next((v) => v.status === 'leader', { from: states.values.indexOf(unreachable) });
      const failedAt = kvRequests(key).findIndex((r) => r.status === 500);
      expect(kvRequests(key)[failedAt + 1]?.query.has('index')).toBe(false);
    } finally {
      proxy.rule = undefined;
    }
    states.unsubscribe();
  });

  it('drops a session answer that arrives after the key moved on', async () => {
    const key = uniqueKey();
    const slow = await createSession(consul, { name: 'slow' });
    const fast = await createSession(consul, { name: 'fast' });
    proxy.rule = (req) =>
      req.path === `/v1/session/info/${slow}` ? { action: 'forward', delayMs: 1_500 } : undefined;
    try {
      const rec = record(discovery.leader(key, { schema: Node }));
      await rec.next((v) => v === null);
      await acquire(consul, key, slow, JSON.stringify({ host: 'slow' }));
      await until('slow session info asked', () =>
        proxy.requests.some((r) => r.path === `/v1/session/info/${slow}`),
      );
      await release(consul, key, slow);
      await acquire(consul, key, fast, JSON.stringify({ host: 'fast' }));
      await rec.next((v) => v?.node.host === 'fast');
      await delay(2_000);
      const hosts = rec.values.map((v) => v?.node.host ?? null);
      expect(hosts.at(-1)).toBe('fast');
      expect(hosts.slice(hosts.indexOf('fast'))).toEqual(['fast']);
      rec.unsubscribe();
    } finally {
      proxy.rule = undefined;
    }
  });
});

describe('a value that is not base64', () => {
  it('is an invalid descriptor (null for leader()), and the next good value is followed', async () => {
    const key = uniqueKey();
    const s = await createSession(consul);
    await acquire(consul, key, s, JSON.stringify({ host: 'before' }));
    const states = record(discovery.watch(key, { schema: Node }));
    const leaders = record(discovery.leader(key, { schema: Node }));
    await states.next((v) => v.status === 'leader');
    await until('blocking', () => proxy.inFlight(kvPath(key)) === 1);
    const index = kvRequests(key).at(-1)?.query.get('index') ?? '1';
    let served = false;
    proxy.rule = (req) => {
      if (req.path !== kvPath(key) || served) return undefined;
      served = true;
      const entry = {
        Key: key,
        Value: '%%% not base64 %%%',
        Session: s,
        Flags: 0,
        LockIndex: 1,
        CreateIndex: 1,
        ModifyIndex: Number(index),
      };
      return {
        action: 'respond',
        status: 200,
        headers: { 'x-consul-index': index },
        body: JSON.stringify([entry]),
      };
    };
    try {
      await acquire(consul, key, s, JSON.stringify({ host: 'wake' })); // wakes the blocked read
      const invalid = await states.next((v) => v.status === 'invalid');
      if (invalid.status !== 'invalid') throw new Error('unexpected');
      expect(invalid.error.code).toBe('INVALID_DESCRIPTOR');
      expect(invalid.issues[0]?.message).toBe('value is not base64');
      await leaders.next((v) => v === null);
    } finally {
      proxy.rule = undefined;
    }
    await acquire(consul, key, s, JSON.stringify({ host: 'after' }));
    await states.next((v) => v.status === 'leader' && v.leader.node.host === 'after');
    const hosts = leaders.values.map((v) => v?.node.host ?? null);
    expect(hosts.indexOf(null)).toBeGreaterThan(0);
    expect(hosts.at(-1)).toBe('after');
    states.unsubscribe();
    leaders.unsubscribe();
  });
});
