/**
 * `watchSessions: true`: the datacenter's sessions followed with their own
 * blocking query, so an acquisition by a session already listed is emitted
 * from the KV answer alone. A proxy in front of a real agent counts the reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, destroySession, release } from './support/contender.js';
import { type ConsulProxy, startProxy } from './support/proxy.js';
import { record, until } from './support/recorder.js';

const Node = z.object({ host: z.string() });
let agent: ConsulAgent;
let consul: Consul;
let n = 0;
const uniqueKey = (): string => `ws/t${++n}-${Date.now()}/leader`;
const LIST = '/v1/session/list';
const infoReads = (proxy: ConsulProxy) =>
  proxy.requests.filter((r) => r.path.startsWith('/v1/session/info/'));

async function withProxy(
  run: (proxy: ConsulProxy, discovery: LeaderDiscovery) => Promise<void>,
): Promise<void> {
  const proxy = await startProxy(agent);
  const discovery = createLeaderDiscovery({
    consul: { host: proxy.host, port: proxy.port },
    watchSessions: true,
  });
  try {
    await run(proxy, discovery);
  } finally {
    discovery.close();
    await proxy.close();
  }
}

/** Until the SDK has read a session list that names `session` and blocks again on the list. */
async function listed(proxy: ConsulProxy, session: string): Promise<void> {
  const created = (await consul.session.info(session)) as { CreateIndex: number } | undefined;
  const createIndex = BigInt(created?.CreateIndex ?? Number.MAX_SAFE_INTEGER);
  await until(`a session list at index >= ${createIndex} read, and the next one blocking`, () => {
    const lists = proxy.requests.filter((r) => r.path === LIST);
    const answered = lists.some(
      (r) => r.status === 200 && r.index !== undefined && BigInt(r.index) >= createIndex,
    );
    return answered && proxy.inFlight(LIST) === 1;
  });
}

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
});

afterAll(async () => {
  await agent?.destroy();
});

describe('watchSessions', () => {
  it('emits an acquisition by a listed session without reading its info', async () => {
    await withProxy(async (proxy, discovery) => {
      const key = uniqueKey();
      const rec = record(discovery.leader(key, { schema: Node }));
      await rec.next((v) => v === null);
      const s = await createSession(consul, { name: 'listed', ttl: '30s', lockDelay: '2s' });
      await listed(proxy, s);

      await acquire(consul, key, s, JSON.stringify({ host: 'a' }));
      const leader = await rec.next((v) => v?.session.id === s);
      expect(leader?.node).toEqual({ host: 'a' });
      // The same session as a plain read of its info gives.
      const plain = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
      try {
        expect(leader?.session).toEqual((await plain.current(key, { schema: Node }))?.session);
      } finally {
        plain.close();
      }
      expect(leader?.session).toMatchObject({
        name: 'listed',
        ttl: '30s',
        ttlMs: 30_000,
        lockDelayMs: 2_000,
      });
      expect(infoReads(proxy)).toHaveLength(0);

      // One list followed for the discovery, however many keys: blocking on its index.
      const other = record(discovery.leader(uniqueKey()));
      await other.next((v) => v === null);
      expect(proxy.inFlight(LIST)).toBe(1);
      expect(proxy.requests.filter((r) => r.path === LIST && !r.query.has('index'))).toHaveLength(1);
      expect(
        proxy.requests
          .filter((r) => r.path === LIST && r.query.has('index'))
          .every((r) => r.query.has('wait')),
      ).toBe(true);

      await release(consul, key, s);
      await rec.next((v) => v === null);
      await destroySession(consul, s);
      rec.unsubscribe();
      other.unsubscribe();
      // The list is followed only while a key is.
      await until('the session list read aborted', () => proxy.inFlight(LIST) === 0);
    });
  });

  it('reads the info of a session the list does not name yet (list held back)', async () => {
    await withProxy(async (proxy, discovery) => {
      // The first (non-blocking) list reaches the SDK; no later one does.
      proxy.rule = (req) => (req.path === LIST && req.query.has('index') ? { action: 'hang' } : undefined);
      const key = uniqueKey();
      const rec = record(discovery.leader(key, { schema: Node }));
      await rec.next((v) => v === null);
      // A blocking list read is sent once the first answer is in: only then is the session made
      // (on a loaded machine the first, non-blocking read could otherwise still be on its way).
      await until('the list blocking', () =>
        proxy.requests.some((r) => r.path === LIST && r.query.has('index')),
      );
      const s = await createSession(consul);
      await acquire(consul, key, s, JSON.stringify({ host: 'b' }));
      const leader = await rec.next((v) => v?.session.id === s);
      expect(leader?.node).toEqual({ host: 'b' });
      expect(infoReads(proxy).map((r) => r.path)).toEqual([`/v1/session/info/${s}`]);
      rec.unsubscribe();
      await destroySession(consul, s);
    });
  });

  it('keeps following keys while the session list cannot be read', async () => {
    await withProxy(async (proxy, discovery) => {
      proxy.rule = (req) =>
        req.path === LIST ? { action: 'respond', status: 500, body: 'session list down' } : undefined;
      const key = uniqueKey();
      const states = record(discovery.watch(key, { schema: Node }));
      await states.next((st) => st.status === 'vacant');
      await until(
        'the list was refused at least twice',
        () => proxy.requests.filter((r) => r.path === LIST && r.status === 500).length >= 2,
      );
      const s = await createSession(consul);
      await acquire(consul, key, s, JSON.stringify({ host: 'c' }));
      await states.next((st) => st.status === 'leader' && st.leader.session.id === s);
      expect(states.values.map((st) => st.status)).toEqual(['vacant', 'leader']);
      states.unsubscribe();
      await destroySession(consul, s);
    });
  });

  it('joins the listed sessions of a prefix without reading them', async () => {
    await withProxy(async (proxy, discovery) => {
      const prefix = `ws/p${++n}-${Date.now()}/`;
      const sessions = await Promise.all(
        Array.from({ length: 6 }, (_, i) => createSession(consul, { name: `p${i}` })),
      );
      const leaders = record(discovery.leaders(prefix, { schema: Node }));
      await leaders.next((m) => m.size === 0);
      await listed(proxy, sessions[5] ?? '');
      const plainLists = proxy.requests.filter((r) => r.path === LIST && !r.query.has('index')).length;

      await Promise.all(
        sessions.map((s, i) =>
          acquire(consul, `${prefix}svc${i}/leader`, s, JSON.stringify({ host: `h${i}` })),
        ),
      );
      const all = await leaders.next((m) => m.size === 6);
      sessions.forEach((s, i) => {
        expect(all.get(`${prefix}svc${i}/leader`)?.session).toMatchObject({ id: s, name: `p${i}` });
      });
      expect(infoReads(proxy)).toHaveLength(0);
      // No extra non-blocking list read either (the prefix's own way to join many new sessions).
      expect(proxy.requests.filter((r) => r.path === LIST && !r.query.has('index'))).toHaveLength(plainLists);
      leaders.unsubscribe();
      await Promise.all(sessions.map((s) => destroySession(consul, s)));
    });
  });

  it('leaves no socket open after close()', async () => {
    const proxy = await startProxy(agent);
    const discovery = createLeaderDiscovery({
      consul: { host: proxy.host, port: proxy.port },
      watchSessions: true,
    });
    const rec = record(discovery.leader(uniqueKey()));
    await until('key and list blocking', () => proxy.inFlight('/v1/kv/') === 1 && proxy.inFlight(LIST) === 1);
    discovery.close();
    await until('all sockets closed', () => proxy.openConnections() === 0);
    expect(rec.completed).toBe(true);
    await proxy.close();
  });
});
