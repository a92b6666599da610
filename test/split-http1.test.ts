/**
 * `splitPrefixes: { http1: true }`: a big prefix split over HTTP/1.1, against
 * a real plain-HTTP agent. Each sub-prefix query then holds a connection of
 * its own, so the counting proxy in front of the agent sees one connection
 * per query; without `http1` a plain-HTTP prefix keeps its one query. The
 * split logic itself (plans, the key list, faults) is tested over HTTP/2 in
 * split-prefix.test.ts: here, what changes with the transport.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import {
  type Leader,
  type LeaderDiscovery,
  type LeaderDiscoveryOptions,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, release } from './support/contender.js';
import { type ConsulProxy, type ProxiedRequest, startProxy } from './support/proxy.js';
import { delay, record, until } from './support/recorder.js';

const Node = z.object({ host: z.string() });
type Node = z.infer<typeof Node>;

let agent: ConsulAgent;
let writer: Consul;
let n = 0;
const uniquePrefix = (): string => `h1split${++n}-${Date.now()}/`;
const keyOf = (prefix: string, i: number): string => `${prefix}svc-${String(i).padStart(3, '0')}/leader`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(async () => {
  agent = await startConsulAgent();
  writer = consulClient(agent.address);
});

afterAll(async () => {
  writer?.destroy();
  await agent?.destroy();
});

/** A discovery of `target`: the agent, or a proxy in front of it. */
function open(
  target: { readonly host: string; readonly port: number },
  options: Partial<LeaderDiscoveryOptions> = {},
): LeaderDiscovery {
  const discovery = createLeaderDiscovery({
    consul: { host: target.host, port: target.port },
    coalesce: false,
    ...options,
  });
  cleanups.push(() => discovery.close());
  return discovery;
}

async function proxy(): Promise<ConsulProxy> {
  const started = await startProxy(agent);
  cleanups.push(() => started.close());
  return started;
}

/** Keys `0` … `count - 1` of a new prefix, each held by `session` with `{"host":"h<i>"}`, 64 per transaction. */
async function seededPrefix(count: number): Promise<{ prefix: string; session: string }> {
  const prefix = uniquePrefix();
  const session = await createSession(writer, { name: prefix });
  for (let start = 0; start < count; start += 64) {
    const ops = [];
    for (let i = start; i < Math.min(count, start + 64); i += 1) {
      const Value = Buffer.from(JSON.stringify({ host: `h${i}` })).toString('base64');
      ops.push({ KV: { Verb: 'lock', Key: keyOf(prefix, i), Value, Session: session } });
    }
    const answer = await fetch(`http://${agent.address}/v1/txn`, {
      method: 'PUT',
      body: JSON.stringify(ops),
    });
    expect(answer.status).toBe(200);
  }
  return { prefix, session };
}

/** The recursive reads of `prefix`'s sub-prefixes (not of the prefix itself), from `from` on. */
function leafReads(requests: readonly ProxiedRequest[], prefix: string, from = 0): ProxiedRequest[] {
  return requests
    .slice(from)
    .filter(
      (r) => r.path.startsWith(`/v1/kv/${prefix}`) && r.path !== `/v1/kv/${prefix}` && r.query.has('recurse'),
    );
}

const wholeReads = (requests: readonly ProxiedRequest[], prefix: string, from = 0): ProxiedRequest[] =>
  requests.slice(from).filter((r) => r.path === `/v1/kv/${prefix}` && r.query.has('recurse'));

const leaves = (requests: readonly ProxiedRequest[], prefix: string): string[] => [
  ...new Set(leafReads(requests, prefix).map((r) => r.path)),
];

/** Key → host of a leaders map, to compare maps from two discoveries. */
const hosts = (map: ReadonlyMap<string, Leader<Node>> | undefined): [string, string][] =>
  [...(map ?? new Map<string, Leader<Node>>())].map(([key, leader]) => [key, leader.node.host]);

describe('splitPrefixes over HTTP/1.1', () => {
  it('without http1, a big prefix over plain HTTP stays one recursive query on one connection', async () => {
    const { prefix } = await seededPrefix(100);
    const counting = await proxy();
    const discovery = open(counting, { splitPrefixes: { minKeys: 20 } });
    const maps = record(discovery.leaders(prefix, { schema: Node }));
    await until('all leaders', () => maps.values.at(-1)?.size === 100);
    await until('the prefix blocking', () => counting.inFlight(`/v1/kv/${prefix}`) === 1);
    await delay(200);
    expect(leafReads(counting.requests, prefix)).toEqual([]);
    expect(counting.openConnections()).toBe(1);
  });

  it('with http1: sub-prefix queries on a connection each (16 at most by default), the same maps as one query, a change read from its sub-prefix only', async () => {
    const { prefix, session } = await seededPrefix(300);
    const counting = await proxy();
    const split = open(counting, { splitPrefixes: { minKeys: 20, http1: true } });
    const whole = open(agent, { splitPrefixes: false });
    const splitMaps = record(split.leaders(prefix, { schema: Node }));
    const wholeMaps = record(whole.leaders(prefix, { schema: Node }));
    await until(
      'all leaders, both ways',
      () => splitMaps.values.at(-1)?.size === 300 && wholeMaps.values.at(-1)?.size === 300,
    );

    // Split: every sub-prefix and the key list blocking, each holding a connection.
    let planned: string[] = [];
    await until('every sub-prefix blocking', () => {
      planned = leaves(counting.requests, prefix);
      return planned.length >= 2 && counting.inFlight(`/v1/kv/${prefix}`) === planned.length + 1;
    });
    expect(planned.length).toBeLessThanOrEqual(16);
    // They go on from the whole read's index: no sub-prefix or key list is read again before it blocks.
    const keyList = counting.requests.filter((r) => r.path === `/v1/kv/${prefix}` && r.query.has('keys'));
    expect(leafReads(counting.requests, prefix).filter((r) => !r.query.has('index'))).toEqual([]);
    expect(keyList.filter((r) => !r.query.has('index'))).toEqual([]);
    expect(wholeReads(counting.requests, prefix)).toHaveLength(1);
    // One per blocking query, and the keep-alive pool's idle ones (the reads made before and while it split).
    expect(counting.openConnections()).toBeGreaterThanOrEqual(planned.length + 1);
    expect(counting.openConnections()).toBeLessThanOrEqual(planned.length + 3);

    const mark = counting.requests.length;
    await release(writer, keyOf(prefix, 42), session);
    await until(
      'the release seen both ways',
      () => splitMaps.values.at(-1)?.size === 299 && wholeMaps.values.at(-1)?.size === 299,
    );
    expect(hosts(splitMaps.values.at(-1))).toEqual(hosts(wholeMaps.values.at(-1)));
    expect(wholeReads(counting.requests, prefix, mark)).toEqual([]);
    // The woken sub-prefix query follows on with its next read; the others still block where they were.
    // (That read reaches the proxy over a socket: on a loaded machine, after the maps are emitted.)
    await until(
      'the woken sub-prefix reading again',
      () => leafReads(counting.requests, prefix, mark).length > 0,
    );
    const woken = leafReads(counting.requests, prefix, mark);
    expect(new Set(woken.map((r) => r.path)).size).toBe(1);
    expect(`/v1/kv/${keyOf(prefix, 42)}`.startsWith(woken[0]?.path ?? '?')).toBe(true);

    // A new leader of the released key, from a new session: joined as with one query.
    const next = await createSession(writer, { name: 'next' });
    await acquire(writer, keyOf(prefix, 42), next, JSON.stringify({ host: 'new' }));
    await until(
      'the new leader both ways',
      () => splitMaps.values.at(-1)?.get(keyOf(prefix, 42))?.node.host === 'new',
    );
    await until('the same on one query', () => wholeMaps.values.at(-1)?.size === 300);
    expect(hosts(splitMaps.values.at(-1))).toEqual(hosts(wholeMaps.values.at(-1)));
    expect(splitMaps.values.at(-1)?.get(keyOf(prefix, 42))?.session.id).toBe(next);
  });

  it("sub-prefix queries block on their own index: none is read again plain, through wait time-outs and others' writes", async () => {
    const { prefix } = await seededPrefix(100);
    // Writes elsewhere move Consul's index past the prefix's own.
    for (let i = 0; i < 20; i += 1) await writer.kv.set(`${prefix}-elsewhere/${i}`, 'x');
    const counting = await proxy();
    const split = open(counting, { wait: '1s', splitPrefixes: { minKeys: 20, http1: true } });
    const maps = record(split.leaders(prefix, { schema: Node }));
    await until('all leaders', () => maps.values.at(-1)?.size === 100);
    await delay(3_500);
    const reads = leafReads(counting.requests, prefix);
    expect(new Set(reads.map((r) => r.path)).size).toBeGreaterThanOrEqual(2);
    // Each sub-prefix query timed out at least twice, and went on blocking where it was.
    expect(reads.length).toBeGreaterThan(2 * new Set(reads.map((r) => r.path)).size);
    expect(reads.filter((r) => !r.query.has('index'))).toEqual([]);
    expect(maps.values).toHaveLength(1);
  });

  it('maxQueries bounds the connections', async () => {
    const { prefix } = await seededPrefix(300);
    const counting = await proxy();
    const split = open(counting, { splitPrefixes: { minKeys: 20, maxQueries: 4, http1: true } });
    const maps = record(split.leaders(prefix, { schema: Node }));
    await until('all leaders', () => maps.values.at(-1)?.size === 300);
    let planned: string[] = [];
    await until('every sub-prefix blocking', () => {
      planned = leaves(counting.requests, prefix);
      return planned.length >= 2 && counting.inFlight(`/v1/kv/${prefix}`) === planned.length + 1;
    });
    expect(planned.length).toBeLessThanOrEqual(4);
    expect(counting.openConnections()).toBeLessThanOrEqual(planned.length + 3);
  });
});
