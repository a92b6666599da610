/**
 * `splitPrefixes`: with `http2`, a big prefix is followed as recursive blocking
 * queries on disjoint sub-prefixes ("leaves") plus one `?keys` query, over one
 * connection, against a real agent serving HTTPS. An HTTP/2 proxy in front of
 * the agent records every stream's path (which reads were made) and injects
 * faults; a TCP proxy counts connections. Subscribers must see what one
 * recursive query on the prefix would show them.
 */
import https from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Leader,
  type LeaderDiscovery,
  type LeaderDiscoveryOptions,
  type LeaderState,
  type PrefixState,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { acquire, createSession, release } from './support/contender.js';
import { type H2Proxy, startH2Proxy } from './support/h2-proxy.js';
import { type KvRead, kvRead } from './support/kv-read.js';
import { delay, record, until } from './support/recorder.js';
import { type TcpProxy, startTcpProxy } from './support/tcp-proxy.js';
import {
  HTTPS_PORT,
  type TlsAgent,
  type TlsMaterial,
  createTlsMaterial,
  startTlsAgent,
} from './support/tls.js';

const Node = z.object({ host: z.string() });
type Node = z.infer<typeof Node>;
const SPLIT = { minKeys: 20, maxQueries: 8 } as const;

let material: TlsMaterial;
let agent: TlsAgent;
let n = 0;
/** A top-level folder per test (the default `coalesce.prefixOf` groups keys by it). */
const uniquePrefix = (): string => `split${++n}-${Date.now()}/`;
const keyOf = (prefix: string, i: number): string => `${prefix}svc-${String(i).padStart(3, '0')}/leader`;

// What a test opened, closed after it whatever its outcome.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(async () => {
  material = createTlsMaterial();
  agent = await startTlsAgent(material);
});

afterAll(async () => {
  await agent?.destroy();
  material?.remove();
});

/** A discovery with `http2` to `port` on the agent's address (the agent itself or a proxy in front of it). */
function open(port: number, options: Partial<LeaderDiscoveryOptions> = {}): LeaderDiscovery {
  const discovery = createLeaderDiscovery({
    consul: { host: agent.host, port, secure: true, ca: material.caPem },
    http2: true,
    coalesce: false,
    retry: { initialDelayMs: 100, maxDelayMs: 500 },
    splitPrefixes: SPLIT,
    ...options,
  });
  cleanups.push(() => discovery.close());
  return discovery;
}

async function h2Proxy(): Promise<H2Proxy> {
  const proxy = await startH2Proxy(material, agent.host, HTTPS_PORT);
  cleanups.push(() => proxy.close());
  return proxy;
}

async function tcpProxy(port: number): Promise<TcpProxy> {
  const proxy = await startTcpProxy(agent.host, port);
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A new prefix with keys `0` … `count - 1` written by `seed`, held by a new session named `name`. */
async function seededPrefix(count: number, name: string): Promise<{ prefix: string; session: string }> {
  const prefix = uniquePrefix();
  const session = await createSession(agent.writer, { name });
  await seed(prefix, session, count);
  return { prefix, session };
}

/** A split discovery through an HTTP/2 proxy (its paths recorded) and one with `splitPrefixes: false`, to compare. */
async function splitBesideWhole(): Promise<{
  proxy: H2Proxy;
  split: LeaderDiscovery;
  whole: LeaderDiscovery;
}> {
  const proxy = await h2Proxy();
  return { proxy, split: open(proxy.port), whole: open(agent.port, { splitPrefixes: false }) };
}

/** `PUT /v1/txn` over HTTPS; fails the test unless Consul applied it. */
function txn(ops: readonly unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: agent.host, port: agent.port, path: '/v1/txn', method: 'PUT', ca: material.caPem },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`txn: ${res.statusCode} ${body}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(ops));
  });
}

const base64 = (text: string): string => Buffer.from(text).toString('base64');

/**
 * Writes keys `from` … `to - 1` of `prefix` (`<prefix>svc-NNN/leader`), 64 per
 * transaction: held by `session` with `{"host":"h<i>"}`, except every tenth
 * (i % 10 === 9), left unheld, and key 5, held with a value that is not JSON.
 */
async function seed(prefix: string, session: string, to: number, from = 0): Promise<void> {
  for (let start = from; start < to; start += 64) {
    const ops = [];
    for (let i = start; i < Math.min(to, start + 64); i += 1) {
      const Key = keyOf(prefix, i);
      if (i % 10 === 9)
        ops.push({ KV: { Verb: 'set', Key, Value: base64(JSON.stringify({ host: `h${i}` })) } });
      else {
        const value = i === 5 ? 'not json' : JSON.stringify({ host: `h${i}` });
        ops.push({ KV: { Verb: 'lock', Key, Value: base64(value), Session: session } });
      }
    }
    await txn(ops);
  }
}
/** How many of keys `0` … `count - 1` have a leader after `seed`. */
const leadersSeeded = (count: number): number =>
  Array.from({ length: count }, (_, i) => i).filter((i) => i % 10 !== 9 && i !== 5).length;

/** The reads of `prefix` among `paths`: whole (`?recurse` of the prefix), its key list, and its leaves. */
function readsOf(paths: readonly string[], prefix: string) {
  const reads = paths.map(kvRead).filter((r): r is KvRead => r !== undefined && r.key.startsWith(prefix));
  return {
    whole: reads.filter((r) => r.key === prefix && r.recurse),
    keys: reads.filter((r) => r.key === prefix && r.keys),
    leafReads: reads.filter((r) => r.key !== prefix && r.recurse),
    /** Distinct leaves read, in order of first read. */
    leaves: [...new Set(reads.filter((r) => r.key !== prefix && r.recurse).map((r) => r.key))],
    /** Reads of one key (no `?recurse`, no `?keys`). */
    single: reads.filter((r) => !r.recurse && !r.keys),
  };
}

/**
 * Waits until `prefix` is followed split: every leaf read so far and the key
 * list have a blocking read out. Resolves the leaves and the position in
 * `proxy.paths` from which on reads belong to this plan.
 */
async function splitDone(
  proxy: H2Proxy,
  prefix: string,
  from = 0,
): Promise<{ leaves: string[]; mark: number }> {
  let leaves: string[] = [];
  await until(`${prefix} split, every leaf blocking`, () => {
    const reads = readsOf(proxy.paths.slice(from), prefix);
    leaves = reads.leaves;
    return (
      leaves.length >= 2 &&
      reads.keys.some((r) => r.blocking) &&
      leaves.every((leaf) => reads.leafReads.some((r) => r.key === leaf && r.blocking))
    );
  });
  return { leaves, mark: proxy.paths.length };
}

/** Leaders by key, as plain data that `toEqual` compares (key order included). */
const plainLeaders = (leaders: ReadonlyMap<string, Leader<Node>>): [string, Leader<Node>][] => [...leaders];
/** States by key without their read meta (the index of the answer that made each differs between plans). */
const plainStates = (states: ReadonlyMap<string, LeaderState<Node>>): [string, unknown][] =>
  [...states].map(([key, state]) => {
    const rest: Record<string, unknown> = { ...state };
    delete rest.consul;
    return [key, rest];
  });
const stateHost = (states: ReadonlyMap<string, LeaderState<Node>>, key: string): string | undefined => {
  const state = states.get(key);
  return state?.status === 'leader' ? state.leader.node.host : undefined;
};
const hostOf = (leaders: ReadonlyMap<string, Leader<Node>>, key: string): string | undefined =>
  leaders.get(key)?.node.host;

describe('splitPrefixes', () => {
  it('shows the same leaders and states as one recursive query, read as sub-prefixes and a key list', async () => {
    const count = 160;
    const { prefix, session } = await seededPrefix(count, 'split-a');

    const { proxy, split, whole } = await splitBesideWhole();
    const splitLeaders = record(split.leaders(prefix, { schema: Node }));
    const wholeLeaders = record(whole.leaders(prefix, { schema: Node }));
    const splitStates = record(split.watchLeaders(prefix, { schema: Node }));
    const wholeStates = record(whole.watchLeaders(prefix, { schema: Node }));

    const expected = leadersSeeded(count);
    const got = await splitLeaders.next((m) => m.size === expected);
    const want = await wholeLeaders.next((m) => m.size === expected);
    expect(plainLeaders(got)).toEqual(plainLeaders(want));
    expect(got.get(keyOf(prefix, 0))?.session.id).toBe(session);
    expect(got.get(keyOf(prefix, 0))?.session.name).toBe('split-a');
    expect(hostOf(got, keyOf(prefix, 123))).toBe('h123');
    expect(got.has(keyOf(prefix, 19))).toBe(false); // unheld
    expect(got.has(keyOf(prefix, 5))).toBe(false); // held, not JSON

    const states = await splitStates.next((m) => m.size === count);
    const wholeAll = await wholeStates.next((m) => m.size === count);
    expect(plainStates(states)).toEqual(plainStates(wholeAll));
    expect(states.get(keyOf(prefix, 5))?.status).toBe('invalid');
    expect(states.get(keyOf(prefix, 9))).toMatchObject({ status: 'vacant', reason: 'no-session' });

    // The split really happened: sub-prefixes of the prefix, disjoint, at most maxQueries, covering every key.
    const { leaves } = await splitDone(proxy, prefix);
    const reads = readsOf(proxy.paths, prefix);
    expect(reads.whole.length).toBeGreaterThanOrEqual(1);
    expect(leaves.length).toBeGreaterThanOrEqual(2);
    expect(leaves.length).toBeLessThanOrEqual(SPLIT.maxQueries);
    for (const leaf of leaves) {
      expect(leaf.length).toBeGreaterThan(prefix.length);
      expect(leaves.filter((other) => other.startsWith(leaf))).toEqual([leaf]);
    }
    for (let i = 0; i < count; i += 1) {
      expect(leaves.filter((leaf) => keyOf(prefix, i).startsWith(leaf))).toHaveLength(1);
    }

    // Once split, the answers come from the sub-prefixes laid end to end: still the same map, in the same order.
    const key158 = keyOf(prefix, 158);
    await acquire(agent.writer, key158, session, JSON.stringify({ host: 'changed' }));
    const changed = await splitStates.next((m) => stateHost(m, key158) === 'changed');
    const wholeChanged = await wholeStates.next((m) => stateHost(m, key158) === 'changed');
    expect(plainStates(changed)).toEqual(plainStates(wholeChanged));
    const changedLeaders = await splitLeaders.next((m) => hostOf(m, key158) === 'changed');
    expect(plainLeaders(changedLeaders)).toEqual(
      plainLeaders(await wholeLeaders.next((m) => hostOf(m, key158) === 'changed')),
    );
  });

  it('after the split, an acquire, a release, a new value and a delete are seen through leaf reads alone', async () => {
    const count = 160;
    const { prefix, session: a } = await seededPrefix(count, 'split-a');
    const b = await createSession(agent.writer, { name: 'split-b' });

    const { proxy, split, whole } = await splitBesideWhole();
    const leaders = record(split.leaders(prefix, { schema: Node }));
    const states = record(split.watchLeaders(prefix, { schema: Node }));
    const wholeLeaders = record(whole.leaders(prefix, { schema: Node }));
    const wholeStates = record(whole.watchLeaders(prefix, { schema: Node }));
    const expected = leadersSeeded(count);
    await leaders.next((m) => m.size === expected);
    await wholeLeaders.next((m) => m.size === expected);
    const { mark } = await splitDone(proxy, prefix);

    /** Runs `write`, then waits until both discoveries show `seen` and agree. */
    const step = async (
      write: () => Promise<unknown>,
      seen: (m: ReadonlyMap<string, Leader<Node>>) => boolean,
    ): Promise<ReadonlyMap<string, Leader<Node>>> => {
      const from = leaders.values.length;
      const wholeFrom = wholeLeaders.values.length;
      await write();
      const got = await leaders.next(seen, { from });
      const want = await wholeLeaders.next(seen, { from: wholeFrom });
      expect(plainLeaders(got)).toEqual(plainLeaders(want));
      return got;
    };

    // A new leader takes an unheld key.
    const key9 = keyOf(prefix, 9);
    const taken = await step(
      () => acquire(agent.writer, key9, b, JSON.stringify({ host: 'b9' })),
      (m) => m.has(key9),
    );
    expect(taken.get(key9)?.session.id).toBe(b);
    expect(taken.get(key9)?.node).toEqual({ host: 'b9' });
    // A leader steps down.
    const key100 = keyOf(prefix, 100);
    await step(
      () => release(agent.writer, key100, a),
      (m) => !m.has(key100),
    );
    // Another one takes it over.
    const moved = await step(
      () => acquire(agent.writer, key100, b, JSON.stringify({ host: 'b100' })),
      (m) => hostOf(m, key100) === 'b100',
    );
    expect(moved.get(key100)?.session.id).toBe(b);
    // A leader writes a new descriptor.
    const key157 = keyOf(prefix, 157);
    await step(
      () => acquire(agent.writer, key157, a, JSON.stringify({ host: 'new157' })),
      (m) => hostOf(m, key157) === 'new157',
    );
    // A key is deleted.
    const key42 = keyOf(prefix, 42);
    await step(
      () => agent.writer.kv.del(key42),
      (m) => !m.has(key42),
    );
    const last = await states.next((m) => m.size === count - 1 && !m.has(key42));
    expect(last.get(key100)?.status).toBe('leader');
    expect(last.get(keyOf(prefix, 19))).toMatchObject({ status: 'vacant', reason: 'no-session' });
    const wholeLast = await wholeStates.next((m) => m.size === count - 1);
    expect(plainStates(last)).toEqual(plainStates(wholeLast));

    // Every change came through the sub-prefixes' queries (one answer each, then the next read):
    // the prefix was never read whole again.
    await until(
      'a leaf read after each change',
      () => readsOf(proxy.paths.slice(mark), prefix).leafReads.length >= 5,
    );
    expect(readsOf(proxy.paths.slice(mark), prefix).whole).toEqual([]);
    // The same emissions, one per change, as with one recursive query.
    expect(leaders.values.map(plainLeaders)).toEqual(wholeLeaders.values.map(plainLeaders));
    expect(states.values.map(plainStates)).toEqual(wholeStates.values.map(plainStates));
  });

  it('a key created outside every sub-prefix is seen, after one whole read and a new plan', async () => {
    const count = 160;
    const { prefix } = await seededPrefix(count, 'split-a');
    const b = await createSession(agent.writer, { name: 'split-b' });

    const { proxy, split, whole } = await splitBesideWhole();
    const leaders = record(split.leaders(prefix, { schema: Node }));
    const prefixStates = record(split.watchPrefix(prefix, { schema: Node }));
    const wholeLeaders = record(whole.leaders(prefix, { schema: Node }));
    const wholePrefixStates = record(whole.watchPrefix(prefix, { schema: Node }));
    await leaders.next((m) => m.size === leadersSeeded(count));
    await wholeLeaders.next((m) => m.size === leadersSeeded(count));
    const first = await splitDone(proxy, prefix);

    const born = `${prefix}zzz-new/leader`;
    expect(first.leaves.some((leaf) => born.startsWith(leaf))).toBe(false);
    await acquire(agent.writer, born, b, JSON.stringify({ host: 'zzz' }));
    const seen = await leaders.next((m) => m.has(born));
    expect(seen.get(born)?.session.id).toBe(b);
    expect(seen.size).toBe(leadersSeeded(count) + 1);
    const state = await prefixStates.next((s) => s.states.has(born));
    expect(state.unreachable).toBeNull();
    expect(state.states.size).toBe(count + 1);
    expect(state.states.get(born)).toMatchObject({ status: 'leader', leader: { node: { host: 'zzz' } } });

    // The prefix was read whole again, then split anew with a leaf that covers the new key.
    const replanned = await splitDone(proxy, prefix, first.mark);
    expect(readsOf(proxy.paths.slice(first.mark), prefix).whole.length).toBeGreaterThanOrEqual(1);
    expect(replanned.leaves.filter((leaf) => born.startsWith(leaf))).toHaveLength(1);

    // The new plan follows the new key by its leaf: a release is seen without reading the prefix whole.
    await release(agent.writer, born, b);
    await leaders.next((m) => !m.has(born));
    const released = await prefixStates.next((s) => s.states.get(born)?.status === 'vacant');
    expect(released.states.size).toBe(count + 1);
    expect(readsOf(proxy.paths.slice(replanned.mark), prefix).whole).toEqual([]);

    // The same emissions as one recursive query: the re-plan added none.
    await wholePrefixStates.next((s) => s.states.get(born)?.status === 'vacant');
    await wholeLeaders.next((m) => m.size === leadersSeeded(count));
    expect(leaders.values.map(plainLeaders)).toEqual(wholeLeaders.values.map(plainLeaders));
    const statesOf = (s: PrefixState<Node>) => ({
      unreachable: s.unreachable,
      states: plainStates(s.states),
    });
    expect(prefixStates.values.map(statesOf)).toEqual(wholePrefixStates.values.map(statesOf));
  });

  it('splits 300 keys into many queries over one connection (default maxQueries)', async () => {
    const count = 300;
    const { prefix, session } = await seededPrefix(count, 'split-many');

    // SDK → TCP proxy (counts connections) → HTTP/2 proxy (records paths) → agent.
    const h2 = await h2Proxy();
    const tcp = await tcpProxy(h2.port);
    const split = open(tcp.port, { splitPrefixes: { minKeys: SPLIT.minKeys } });
    const leaders = record(split.leaders(prefix, { schema: Node }));
    const got = await leaders.next((m) => m.size === leadersSeeded(count));
    expect(hostOf(got, keyOf(prefix, 0))).toBe('h0');
    expect(hostOf(got, keyOf(prefix, 150))).toBe('h150');
    expect(hostOf(got, keyOf(prefix, 298))).toBe('h298');
    // More queries than the small setting of the other tests allows, within the default's 64.
    const { leaves } = await splitDone(h2, prefix);
    expect(leaves.length).toBeGreaterThan(SPLIT.maxQueries);
    expect(leaves.length).toBeLessThanOrEqual(64);

    const key298 = keyOf(prefix, 298);
    await acquire(agent.writer, key298, session, JSON.stringify({ host: 'last' }));
    await leaders.next((m) => hostOf(m, key298) === 'last');
    expect(tcp.accepted()).toBe(1);
    expect(tcp.open()).toBe(1);
  });

  it("keys beyond ASCII keep Consul's (byte) order, and an emptied sub-prefix that fills again is seen", async () => {
    const prefix = uniquePrefix();
    const session = await createSession(agent.writer, { name: 'split-utf8' });
    // UTF-16 and UTF-8 order differ: U+FF5E sorts after U+1F600 in JavaScript, before it in bytes.
    const groups = ['Z', 'a', 'é', '\uFF5E', '\u{1F600}'];
    const keys = groups.flatMap((g) =>
      Array.from({ length: 25 }, (_, i) => `${prefix}${g}${String(i).padStart(2, '0')}/leader`),
    );
    for (let start = 0; start < keys.length; start += 64) {
      await txn(
        keys.slice(start, start + 64).map((Key) => ({
          KV: {
            Verb: 'lock',
            Key,
            Value: base64(JSON.stringify({ host: Key.slice(prefix.length) })),
            Session: session,
          },
        })),
      );
    }

    const { proxy, split, whole } = await splitBesideWhole();
    const leaders = record(split.leaders(prefix, { schema: Node }));
    const wholeLeaders = record(whole.leaders(prefix, { schema: Node }));
    const got = await leaders.next((m) => m.size === keys.length);
    expect(plainLeaders(got)).toEqual(plainLeaders(await wholeLeaders.next((m) => m.size === keys.length)));
    const { leaves } = await splitDone(proxy, prefix);
    // The two groups whose order differs between UTF-16 and UTF-8 are followed by different queries.
    const leafOf = (key: string) => leaves.filter((leaf) => key.startsWith(leaf));
    expect(leafOf(keys[75] as string)).toHaveLength(1);
    expect(leafOf(keys[100] as string)).toHaveLength(1);
    expect(leafOf(keys[75] as string)).not.toEqual(leafOf(keys[100] as string));

    // Every key of one sub-prefix deleted, then one written again.
    await agent.writer.kv.del({ key: `${prefix}é`, recurse: true } as never);
    await leaders.next((m) => m.size === keys.length - 25);
    const back = `${prefix}é07/leader`;
    await acquire(agent.writer, back, session, JSON.stringify({ host: 'back' }));
    const emoji = `${prefix}\u{1F600}03/leader`;
    await acquire(agent.writer, emoji, session, JSON.stringify({ host: 'emoji' }));
    const last = await leaders.next((m) => hostOf(m, back) === 'back' && hostOf(m, emoji) === 'emoji');
    const wholeLast = await wholeLeaders.next(
      (m) => hostOf(m, back) === 'back' && hostOf(m, emoji) === 'emoji',
    );
    expect(plainLeaders(last)).toEqual(plainLeaders(wholeLast));
    expect(last.size).toBe(keys.length - 24);
  });

  it('while a sub-prefix query fails the prefix is unreachable, leaders() holds, and it recovers with every key', async () => {
    const count = 160;
    const { prefix, session } = await seededPrefix(count, 'split-fault');

    const proxy = await h2Proxy();
    const split = open(proxy.port);
    const leaders = record(split.leaders(prefix, { schema: Node }));
    const prefixStates = record(split.watchPrefix(prefix, { schema: Node }));
    const expected = leadersSeeded(count);
    await leaders.next((m) => m.size === expected);
    const { leaves } = await splitDone(proxy, prefix);

    const key0 = keyOf(prefix, 0);
    const faulty = leaves.find((leaf) => key0.startsWith(leaf)) as string;
    const other = keyOf(prefix, count - 2);
    expect(other.startsWith(faulty)).toBe(false);
    // Every read of that leaf is reset from now on; its blocking query returns on the next write to it.
    proxy.rule = (path) => (kvRead(path)?.key === faulty ? 'reset' : undefined);
    const from = prefixStates.values.length;
    const leadersFrom = leaders.values.length;
    await acquire(agent.writer, key0, session, JSON.stringify({ host: 'moved' }));
    const lost = await prefixStates.next((s) => s.unreachable !== null && s.unreachable.attempt >= 3, {
      from,
    });
    expect(lost.unreachable?.error.code).toBe('CONSUL_UNREACHABLE');
    expect(lost.states.size).toBe(count);
    expect([...lost.states.values()].every((s) => s.status === 'unreachable' && s.lastKnown !== null)).toBe(
      true,
    );
    // One report per retry round: attempts 1, 2, 3, … once each.
    const attempts = prefixStates.values
      .slice(from)
      .flatMap((s) => (s.unreachable ? [s.unreachable.attempt] : []));
    expect(attempts).toEqual(attempts.map((_, i) => i + 1));
    // A change to another sub-prefix during the outage.
    await acquire(agent.writer, other, session, JSON.stringify({ host: 'during' }));
    await delay(300);
    // Unreachable all along: while one sub-prefix cannot be read, the prefix cannot.
    const firstLost = prefixStates.values.findIndex((s, i) => i >= from && s.unreachable !== null);
    expect(prefixStates.values.slice(firstLost).every((s) => s.unreachable !== null)).toBe(true);
    // leaders() kept its map: never emptied, no key lost.
    expect(leaders.values.slice(leadersFrom).every((m) => m.size === expected)).toBe(true);

    proxy.rule = undefined;
    const recovered = (s: PrefixState<Node>): boolean =>
      s.unreachable === null && stateHost(s.states, other) === 'during';
    const back = await prefixStates.next(recovered, { from });
    expect(back.states.size).toBe(count);
    expect([...back.states.values()].filter((s) => s.status === 'leader')).toHaveLength(expected);
    expect(back.states.get(key0)).toMatchObject({ status: 'leader', leader: { node: { host: 'moved' } } });
    const now = await leaders.next((m) => hostOf(m, other) === 'during', { from: leadersFrom });
    expect(now.size).toBe(expected);
    expect(hostOf(now, key0)).toBe('moved');
    expect(leaders.values.slice(leadersFrom).every((m) => m.size === expected)).toBe(true);
  });

  it('a lost connection is one report per retry round, not one per sub-prefix, then every change is seen', async () => {
    const count = 160;
    const { prefix, session } = await seededPrefix(count, 'split-goaway');

    const proxy = await h2Proxy();
    const split = open(proxy.port);
    const leaders = record(split.leaders(prefix, { schema: Node }));
    const prefixStates = record(split.watchPrefix(prefix, { schema: Node }));
    await leaders.next((m) => m.size === leadersSeeded(count));
    const { mark } = await splitDone(proxy, prefix);
    const from = prefixStates.values.length;
    proxy.goAway();
    await prefixStates.next((s) => s.unreachable !== null, { from });
    const key77 = keyOf(prefix, 77);
    await acquire(agent.writer, key77, session, JSON.stringify({ host: 'after' }));
    await leaders.next((m) => hostOf(m, key77) === 'after');
    const back = await prefixStates.next((s) => s.unreachable === null, { from });
    expect(back.states.size).toBe(count);
    const attempts = prefixStates.values
      .slice(from)
      .flatMap((s) => (s.unreachable ? [s.unreachable.attempt] : []));
    expect(attempts).toEqual([1]);
    // Split again over the new connection.
    await splitDone(proxy, prefix, mark);
  });

  it('below minKeys the prefix is one recursive query; it splits once it holds minKeys keys', async () => {
    const prefix = uniquePrefix();
    const session = await createSession(agent.writer, { name: 'split-small' });
    // 19 keys: enough to split in two (were minKeys not heeded), one short of minKeys.
    await seed(prefix, session, 19);

    const proxy = await h2Proxy();
    const split = open(proxy.port);
    const leaders = record(split.leaders(prefix, { schema: Node }));
    await leaders.next((m) => m.size === leadersSeeded(19));
    await until('the whole query blocking', () => readsOf(proxy.paths, prefix).whole.some((r) => r.blocking));
    await delay(300);
    const small = readsOf(proxy.paths, prefix);
    expect(small.keys).toEqual([]);
    expect(small.leafReads).toEqual([]);

    await seed(prefix, session, 40, 19);
    const grown = await leaders.next((m) => m.size === leadersSeeded(40));
    expect(hostOf(grown, keyOf(prefix, 38))).toBe('h38');
    const { leaves } = await splitDone(proxy, prefix);
    expect(leaves.length).toBeGreaterThanOrEqual(2);
  });

  it('with watchSessions, a new leader in a split prefix is joined from the session list, without a session read', async () => {
    const count = 160;
    const { prefix } = await seededPrefix(count, 'split-a');
    const proxy = await h2Proxy();
    const split = open(proxy.port, { watchSessions: true });
    const leaders = record(split.leaders(prefix, { schema: Node }));
    await leaders.next((m) => m.size === leadersSeeded(count));
    const { mark } = await splitDone(proxy, prefix);

    // Created before it acquires, as Consul's leader-election guide does: the list names it first.
    const b = await createSession(agent.writer, { name: 'split-listed' });
    const info = (await agent.writer.session.info(b)) as { CreateIndex: number } | undefined;
    const created = BigInt(info?.CreateIndex ?? Number.MAX_SAFE_INTEGER);
    // A list read blocking on an index at or past the session's creation follows an answer that names it.
    await until('a session list read blocking past the new session', () =>
      proxy.paths.some((path) => {
        const url = new URL(path, 'https://proxy');
        const index = url.searchParams.get('index');
        return url.pathname === '/v1/session/list' && index !== null && BigInt(index) >= created;
      }),
    );
    const key9 = keyOf(prefix, 9);
    await acquire(agent.writer, key9, b, JSON.stringify({ host: 'listed' }));
    const got = await leaders.next((m) => hostOf(m, key9) === 'listed');
    expect(got.get(key9)?.session.name).toBe('split-listed');
    expect(proxy.paths.slice(mark).filter((path) => path.startsWith('/v1/session/info'))).toEqual([]);
    expect(readsOf(proxy.paths.slice(mark), prefix).whole).toEqual([]);
  });

  it('coalesced leader(key)s of a split prefix see their own changes, and only theirs', async () => {
    const count = 160;
    const { prefix, session: a } = await seededPrefix(count, 'split-a');
    const b = await createSession(agent.writer, { name: 'split-b' });

    const proxy = await h2Proxy();
    const split = open(proxy.port, { coalesce: { minKeys: 2 } });
    const [key0, key105, key150, key158] = [0, 105, 150, 158].map((i) => keyOf(prefix, i)) as [
      string,
      string,
      string,
      string,
    ];
    const follow = (key: string) => record(split.leader(key, { schema: Node }));
    const [r0, r105, r150, r158] = [follow(key0), follow(key105), follow(key150), follow(key158)];
    await Promise.all([
      r0.next((v) => v?.node.host === 'h0'),
      r105.next((v) => v?.node.host === 'h105'),
      r150.next((v) => v?.node.host === 'h150'),
      r158.next((v) => v?.node.host === 'h158'),
    ]);
    const { mark } = await splitDone(proxy, prefix);
    const firstOf0 = r0.values.length;

    await release(agent.writer, key105, a);
    await r105.next((v) => v === null);
    await acquire(agent.writer, key105, b, JSON.stringify({ host: 'b105' }));
    expect((await r105.next((v) => v?.node.host === 'b105'))?.session.id).toBe(b);
    await acquire(agent.writer, key150, a, JSON.stringify({ host: 'new150' }));
    await r150.next((v) => v?.node.host === 'new150');
    await agent.writer.kv.del(key158);
    await r158.next((v) => v === null);
    // A key nobody follows changes: no emission for the followed ones.
    await acquire(agent.writer, keyOf(prefix, 151), a, JSON.stringify({ host: 'unfollowed' }));
    await delay(300);
    expect(r0.values).toHaveLength(firstOf0);
    expect(r105.values.map((v) => v?.node.host ?? null)).toEqual(['h105', null, 'b105']);
    expect(r150.values.map((v) => v?.node.host)).toEqual(['h150', 'new150']);
    expect(r158.values.map((v) => v?.node.host ?? null)).toEqual(['h158', null]);

    const after = readsOf(proxy.paths.slice(mark), prefix);
    expect(after.whole).toEqual([]);
    expect(after.single).toEqual([]);
    expect(after.leafReads.length).toBeGreaterThanOrEqual(4);
  });

  it('close() completes every stream and leaves no connection or query behind', async () => {
    const count = 160;
    const { prefix, session } = await seededPrefix(count, 'split-close');

    const h2 = await h2Proxy();
    const tcp = await tcpProxy(h2.port);
    // Default coalescing and retries: leader() below has its own query.
    const split = createLeaderDiscovery({
      consul: { host: agent.host, port: tcp.port, secure: true, ca: material.caPem },
      http2: true,
      splitPrefixes: SPLIT,
    });
    cleanups.push(() => split.close());
    const recs = [
      record(split.leaders(prefix)),
      record(split.watchLeaders(prefix)),
      record(split.watchPrefix(prefix)),
      record(split.leader(keyOf(prefix, 3))),
    ];
    await Promise.all(recs.map((rec) => rec.next(() => true)));
    await splitDone(h2, prefix);
    expect(tcp.open()).toBe(1);

    split.close();
    await until('the connection closed', () => tcp.open() === 0);
    expect(recs.every((rec) => rec.completed)).toBe(true);
    const streams = h2.paths.length;
    // Nothing retries after close(): no new stream, no new connection.
    await acquire(agent.writer, keyOf(prefix, 0), session, JSON.stringify({ host: 'after-close' }));
    await delay(500);
    expect(h2.paths.length).toBe(streams);
    expect(tcp.accepted()).toBe(1);
  });
});
