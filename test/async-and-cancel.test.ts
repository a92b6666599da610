/**
 * Async iteration, cancellation and disposal against a real Consul agent (issue #14):
 * `for await` over the SDK's streams, `current({ signal, timeout })`,
 * `handle.ready({ signal, timeout })`, `using` and `await using`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import * as zm from 'zod/mini';
import {
  type LeaderDiscovery,
  createLeaderDiscovery,
  isLeaderDiscoveryError,
} from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { type ConsulProxy, startProxy } from './support/proxy.js';
import { acquire, consulClient, createSession, release } from './support/contender.js';
import { delay } from './support/recorder.js';

const Node = z.object({ host: z.string() });
let agent: ConsulAgent;
let consul: Consul;
let discovery: LeaderDiscovery;
let n = 0;
const uniqueKey = (): string => `async/t${++n}-${Date.now()}/leader`;

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
});
afterAll(async () => {
  discovery?.close();
  await agent?.destroy();
});

const codeOf = (error: unknown): string | undefined =>
  isLeaderDiscoveryError(error) ? error.code : undefined;

describe('for await over the streams', () => {
  it('leader(): null, then the leader a contender acquires, then null again; break unsubscribes', async () => {
    const key = uniqueKey();
    const session = await createSession(consul, { name: 'db-1' });
    const seen: (string | null)[] = [];
    for await (const leader of discovery.leader(key, { schema: Node })) {
      seen.push(leader?.node.host ?? null);
      if (seen.length === 1) await acquire(consul, key, session, '{"host":"db-1"}');
      else if (seen.length === 2) await release(consul, key, session);
      else break;
    }
    expect(seen).toEqual([null, 'db-1', null]);
  });

  it('watch(), watchPrefix(), watchLeaders() and leaders() are iterable too', async () => {
    const key = uniqueKey();
    const prefix = key.slice(0, key.lastIndexOf('/') + 1);
    const session = await createSession(consul, { name: 'db-2' });
    await acquire(consul, key, session, '{"host":"db-2"}');
    for await (const state of discovery.watch(key, { schema: Node })) {
      expect(state.status).toBe('leader');
      break;
    }
    for await (const prefixState of discovery.watchPrefix(prefix)) {
      expect([...prefixState.states.keys()]).toEqual([key]);
      break;
    }
    for await (const states of discovery.watchLeaders(prefix)) {
      expect(states.get(key)?.status).toBe('leader');
      break;
    }
    for await (const leaders of discovery.leaders(prefix, { schema: Node })) {
      expect(leaders.get(key)?.node.host).toBe('db-2');
      break;
    }
    // Any Standard Schema validator types `node`: here zod/mini.
    for await (const leader of discovery.leader(key, { schema: zm.object({ host: zm.string() }) })) {
      const host: string | undefined = leader?.node.host;
      expect(host).toBe('db-2');
      break;
    }
  });

  it('a consumer slower than the changes gets the newest leader, not a backlog', async () => {
    const key = uniqueKey();
    const sessions = await Promise.all([1, 2, 3, 4].map((i) => createSession(consul, { name: `c${i}` })));
    const iterator = discovery.leader(key, { schema: Node })[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBeNull();
    // Four leaders while the consumer is away; then it asks.
    for (const [i, s] of sessions.entries()) {
      await acquire(consul, key, s, JSON.stringify({ host: `c${i + 1}` }));
      await delay(60);
      if (i < 3) await release(consul, key, s);
    }
    await delay(200);
    const next = await iterator.next();
    expect(next.value?.node.host).toBe('c4');
    await iterator.return?.();
  });
});

describe("decode: 'text' without a schema", () => {
  it('types leader.node as string (and is one)', async () => {
    const key = uniqueKey();
    const session = await createSession(consul, { name: 'text' });
    await acquire(consul, key, session, session);
    const leader = await discovery.current(key, { decode: 'text' });
    const node: string | undefined = leader?.node;
    expect(node).toBe(session);
    // @ts-expect-error a string has no such property
    expect(leader?.node.host).toBeUndefined();
    for await (const state of discovery.watch(key, { decode: 'text' })) {
      if (state.status === 'leader') expect(state.leader.node.toUpperCase()).toBe(session.toUpperCase());
      break;
    }
    using handle = discovery.follow(key, { decode: 'text' });
    const ready: string | undefined = (await handle.ready())?.node;
    expect(ready).toBe(session);
  });
});

describe('cancellation and timeouts', () => {
  let proxy: ConsulProxy;
  let slow: LeaderDiscovery;
  beforeAll(async () => {
    proxy = await startProxy({ host: agent.host, port: agent.port });
    slow = createLeaderDiscovery({ consul: { host: proxy.host, port: proxy.port }, requestTimeout: '60s' });
  });
  afterAll(async () => {
    slow?.close();
    await proxy?.close();
  });

  it('current({ signal }): aborting rejects with ABORTED and aborts the request in flight', async () => {
    proxy.rule = (req) => (req.path.startsWith('/v1/kv/') ? { action: 'hang' } : undefined);
    const controller = new AbortController();
    const pending = slow.current(uniqueKey(), { signal: controller.signal });
    await delay(100);
    expect(proxy.inFlight('/v1/kv/')).toBe(1);
    controller.abort();
    const error = await pending.catch((e: unknown) => e);
    expect(codeOf(error)).toBe('ABORTED');
    await delay(100);
    expect(proxy.inFlight('/v1/kv/')).toBe(0);
    proxy.rule = undefined;
  });

  it('current({ timeout }): a read Consul does not answer rejects with TIMEOUT, nothing left open', async () => {
    proxy.rule = (req) => (req.path.startsWith('/v1/kv/') ? { action: 'hang' } : undefined);
    const started = Date.now();
    const error = await slow.current(uniqueKey(), { timeout: '300ms' }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe('TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    await delay(100);
    expect(proxy.inFlight('/v1/kv/')).toBe(0);
    proxy.rule = undefined;
  });

  it('handle.ready({ timeout }) and ready({ signal }) while Consul cannot be read', async () => {
    const down = createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 1 } });
    try {
      using handle = down.follow(uniqueKey());
      const timedOut = await handle.ready({ timeout: 200 }).catch((e: unknown) => e);
      expect(codeOf(timedOut)).toBe('TIMEOUT');
      const controller = new AbortController();
      const waiting = handle.ready({ signal: controller.signal });
      controller.abort();
      expect(codeOf(await waiting.catch((e: unknown) => e))).toBe('ABORTED');
    } finally {
      down.close();
    }
  });

  it('ready() with no bound still resolves once Consul answers', async () => {
    const key = uniqueKey();
    using handle = discovery.follow(key, { schema: Node });
    expect(await handle.ready({ timeout: '10s' })).toBeNull();
  });
});

describe('disposal', () => {
  it('await using closes the discovery, using closes the handle', async () => {
    const key = uniqueKey();
    let handleRef: { readonly current: unknown } | undefined;
    let streamCompleted = false;
    {
      await using scoped = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
      scoped.watch(key).subscribe({ complete: () => (streamCompleted = true) });
      {
        using handle = scoped.follow(key);
        handleRef = handle;
        await handle.ready();
      }
      expect(handleRef.current).toBeNull();
    }
    expect(streamCompleted).toBe(true);
  });
});
