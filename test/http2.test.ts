/**
 * `http2: true` against a real agent serving HTTPS only (Consul offers HTTP/2
 * over TLS): many blocking queries over one connection, one more connection per
 * 100 streams, a lost connection reported and replaced, nothing left after
 * close(). A TCP proxy in front of the agent counts and cuts connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConsulUnreachableError,
  type LeaderDiscovery,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession } from './support/contender.js';
import { record, until } from './support/recorder.js';
import { type H2Proxy, startH2Proxy } from './support/h2-proxy.js';
import { type TcpProxy, startTcpProxy } from './support/tcp-proxy.js';
import {
  HTTPS_PORT,
  type TlsAgent,
  type TlsMaterial,
  createTlsMaterial,
  startTlsAgent,
} from './support/tls.js';

const Node = z.object({ host: z.string() });

let material: TlsMaterial;
let agent: TlsAgent;
let n = 0;
const uniqueKey = (): string => `h2/t${++n}-${Date.now()}/leader`;

/** A discovery with `http2` through `proxy` (a TCP pass-through or an HTTP/2 proxy), both closed after `run`. */
async function through<P extends { readonly port: number; close(): Promise<void> }>(
  proxy: P,
  run: (proxy: P, discovery: LeaderDiscovery) => Promise<void>,
): Promise<void> {
  const discovery = createLeaderDiscovery({
    consul: { host: agent.host, port: proxy.port, secure: true, ca: material.caPem },
    http2: true,
    coalesce: false,
    retry: { initialDelayMs: 100, maxDelayMs: 500 },
  });
  try {
    await run(proxy, discovery);
  } finally {
    discovery.close();
    await proxy.close();
  }
}

const withDiscovery = async (run: (proxy: TcpProxy, discovery: LeaderDiscovery) => Promise<void>) =>
  through(await startTcpProxy(agent.host, HTTPS_PORT), run);

beforeAll(async () => {
  material = createTlsMaterial();
  agent = await startTlsAgent(material);
});

afterAll(async () => {
  await agent?.destroy();
  material?.remove();
});

describe('http2', () => {
  it('follows 20 keys, one blocking query each, over one connection', async () => {
    await withDiscovery(async (proxy, discovery) => {
      const keys = Array.from({ length: 20 }, uniqueKey);
      const recs = keys.map((key) => record(discovery.leader(key, { schema: Node })));
      await Promise.all(recs.map((rec) => rec.next((v) => v === null)));
      const session = await agent.campaign(keys[7] ?? '', { host: 'seven' });
      const leader = await recs[7]?.next((v) => v !== null);
      expect(leader?.session.id).toBe(session);
      expect(leader?.node).toEqual({ host: 'seven' });
      expect(proxy.accepted()).toBe(1);
      for (const rec of recs) rec.unsubscribe();
    });
  });

  it("opens one more connection past the agent's 100 streams, and every key is followed", async () => {
    await withDiscovery(async (proxy, discovery) => {
      const keys = Array.from({ length: 130 }, uniqueKey);
      const recs = keys.map((key) => record(discovery.leader(key, { schema: Node })));
      await Promise.all(recs.map((rec) => rec.next((v) => v === null)));
      // The last key's blocking query is on the second connection: it still sees its change.
      await agent.campaign(keys[129] ?? '', { host: 'last' });
      await recs[129]?.next((v) => v?.node.host === 'last');
      expect(proxy.accepted()).toBe(2);
      for (const rec of recs) rec.unsubscribe();
    });
  });

  it('reports a lost connection as unreachable (reset), then follows over a new one', async () => {
    await withDiscovery(async (proxy, discovery) => {
      const key = uniqueKey();
      const states = record(discovery.watch(key, { schema: Node }));
      await states.next((s) => s.status === 'vacant');
      proxy.cut();
      const lost = await states.next((s) => s.status === 'unreachable');
      if (lost.status !== 'unreachable') throw new Error('unexpected');
      expect(lost.error).toBeInstanceOf(ConsulUnreachableError);
      expect((lost.error as ConsulUnreachableError).reason).toBe('reset');
      await states.next((s) => s.status === 'vacant');
      await agent.campaign(key, { host: 'back' });
      await states.next((s) => s.status === 'leader' && s.leader.node.host === 'back');
      expect(proxy.accepted()).toBe(2);
      states.unsubscribe();
    });
  });

  it('leaves no connection open after close()', async () => {
    const proxy = await startTcpProxy(agent.host, HTTPS_PORT);
    const discovery = createLeaderDiscovery({
      consul: { host: agent.host, port: proxy.port, secure: true, ca: material.caPem },
      http2: true,
    });
    const recs = [record(discovery.leader(uniqueKey())), record(discovery.watch(uniqueKey()))];
    await Promise.all(recs.map((rec) => rec.next(() => true)));
    expect(proxy.open()).toBe(1);
    discovery.close();
    await until('the connection closed', () => proxy.open() === 0);
    expect(recs.every((rec) => rec.completed)).toBe(true);
    await proxy.close();
  });
});

describe('http2 faults, injected by an HTTP/2 proxy in front of the agent', () => {
  const withH2Proxy = async (run: (proxy: H2Proxy, discovery: LeaderDiscovery) => Promise<void>) =>
    through(await startH2Proxy(material, agent.host, HTTPS_PORT), run);

  /** The key (held) is first read through `fault`; the state says `message`; once the fault is gone, the leader shows. */
  async function reportsThenRecovers(
    fault: 'stall-body' | 'cut-body' | 'reset',
    message: RegExp,
  ): Promise<void> {
    await withH2Proxy(async (proxy, discovery) => {
      const key = uniqueKey();
      await agent.campaign(key, { host: fault });
      proxy.rule = (path) => (decodeURIComponent(path).startsWith(`/v1/kv/${key}`) ? fault : undefined);
      const states = record(discovery.watch(key, { schema: Node }));
      const lost = await states.next((s) => s.status === 'unreachable', { timeoutMs: 20_000 });
      if (lost.status !== 'unreachable') throw new Error('unexpected');
      expect((lost.error as ConsulUnreachableError).reason).toBe('reset');
      expect(lost.error.message).toMatch(message);
      proxy.rule = undefined;
      await states.next((s) => s.status === 'leader' && s.leader.node.host === fault);
      states.unsubscribe();
    });
  }

  it('a body that stalls after its headers is reported (after the body timeout), then the key is followed', () =>
    reportsThenRecovers('stall-body', /did not arrive within/));

  it('a body cut short by a stream reset is reported, then the key is followed', () =>
    reportsThenRecovers('cut-body', /closed in the middle/));

  it('a stream reset before any answer is reported, then the key is followed', () =>
    reportsThenRecovers('reset', /RST_STREAM|stream/i));

  it('after a GOAWAY that drops the connection, the next change is seen over a new one', async () => {
    await withH2Proxy(async (proxy, discovery) => {
      const key = uniqueKey();
      const rec = record(discovery.leader(key, { schema: Node }));
      await rec.next((v) => v === null);
      const before = proxy.paths.length;
      proxy.goAway();
      await agent.campaign(key, { host: 'after-goaway' });
      await rec.next((v) => v?.node.host === 'after-goaway');
      expect(proxy.paths.length).toBeGreaterThan(before);
      rec.unsubscribe();
    });
  });
});

describe('http2 with a plain-HTTP agent', () => {
  let plain: ConsulAgent;
  beforeAll(async () => {
    plain = await startConsulAgent();
  });
  afterAll(async () => {
    await plain?.destroy();
  });

  it('stays on HTTP/1.1 (Consul has no HTTP/2 without TLS)', async () => {
    const discovery = createLeaderDiscovery({ consul: { host: plain.host, port: plain.port }, http2: true });
    try {
      const key = uniqueKey();
      const rec = record(discovery.leader(key, { schema: Node }));
      await rec.next((v) => v === null);
      const writer = consulClient(plain.address);
      const session = await createSession(writer);
      await acquire(writer, key, session, JSON.stringify({ host: 'plain' }));
      expect((await rec.next((v) => v !== null))?.node).toEqual({ host: 'plain' });
      rec.unsubscribe();
      writer.destroy();
    } finally {
      discovery.close();
    }
  });
});
