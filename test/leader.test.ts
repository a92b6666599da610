/**
 * The core contract against a real Consul dev agent: what `leader()`,
 * `watch()` and `current()` emit as contenders acquire, release, lose and
 * corrupt a leader key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type LeaderDiscovery, type LeaderState, createLeaderDiscovery } from '@consul-leader/discovery';
import { spawn } from 'node:child_process';
import { type ConsulAgent, consulBinary, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, destroySession, put, release } from './support/contender.js';
import { delay, record } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number().int() });
type Node = z.infer<typeof Node>;

let agent: ConsulAgent;
let consul: Consul;
let discovery: LeaderDiscovery;
let n = 0;
const uniqueKey = (): string => `service/t${++n}-${Date.now()}/leader`;
const descriptor = (host: string, port = 5432): string => JSON.stringify({ host, port });

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
});

afterAll(async () => {
  discovery?.close();
  await agent?.destroy();
});

describe('leader()', () => {
  it('emits null for a missing key, the leader on acquire, and null on release', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    await rec.next((v) => v === null);

    const session = await createSession(consul, { name: 'db-1' });
    expect(await acquire(consul, key, session, descriptor('db-1'))).toBe(true);
    const leader = await rec.next((v) => v !== null);
    expect(leader?.node).toEqual({ host: 'db-1', port: 5432 });
    expect(leader?.key).toBe(key);
    expect(leader?.session.id).toBe(session);
    expect(leader?.session.name).toBe('db-1');
    expect(leader?.session.behavior).toBe('release');
    expect(leader?.session.lockDelayMs).toBe(0);
    expect(leader?.session.checks).toContain('serfHealth');
    expect(typeof leader?.session.node).toBe('string');
    expect(leader?.lockIndex).toBe(1n);
    expect(typeof leader?.modifyIndex).toBe('bigint');

    await release(consul, key, session);
    await rec.next((v) => v === null, { from: 2 });
    expect(rec.values.map((v) => v?.node.host ?? null)).toEqual([null, 'db-1', null]);
    rec.unsubscribe();
  });

  it('follows a new acquire by another session after the first one is destroyed', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    const a = await createSession(consul, { name: 'a' });
    await acquire(consul, key, a, descriptor('a'));
    await rec.next((v) => v?.node.host === 'a');
    await destroySession(consul, a);
    await rec.next((v) => v === null, { from: 1 });
    const b = await createSession(consul, { name: 'b' });
    expect(await acquire(consul, key, b, descriptor('b'))).toBe(true);
    const leader = await rec.next((v) => v?.node.host === 'b');
    expect(leader?.session.id).toBe(b);
    expect(leader?.lockIndex).toBe(2n);
    rec.unsubscribe();
  });

  it('sees a delete-behaviour session destroy as the key going away', async () => {
    const key = uniqueKey();
    const states = record(discovery.watch(key, { schema: Node }));
    const s = await createSession(consul, { behavior: 'delete' });
    await acquire(consul, key, s, descriptor('d'));
    await states.next((v) => v.status === 'leader');
    await destroySession(consul, s);
    const vacant = await states.next((v) => v.status === 'vacant' && v.reason === 'key-missing', { from: 1 });
    expect(vacant.key).toBe(key);
    expect((await consul.kv.get(key)) ?? null).toBeNull();
    states.unsubscribe();
  });

  it('sees a TTL session expire (release behaviour) as no leader', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    const s = await createSession(consul, { ttl: '10s' });
    await acquire(consul, key, s, descriptor('ttl'));
    const leader = await rec.next((v) => v !== null);
    expect(leader?.session.ttl).toBe('10s');
    expect(leader?.session.ttlMs).toBe(10_000);
    // Consul invalidates a TTL session between TTL and 2×TTL; never renewed here.
    await rec.next((v) => v === null, { from: 1, timeoutMs: 40_000 });
    rec.unsubscribe();
  }, 60_000);

  it('sees a key deleted outright as no leader', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    const s = await createSession(consul);
    await acquire(consul, key, s, descriptor('x'));
    await rec.next((v) => v !== null);
    await consul.kv.del(key);
    await rec.next((v) => v === null, { from: 1 });
    rec.unsubscribe();
  });

  it('emits null once for a missing key, and nothing for unrelated KV writes', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    const states = record(discovery.watch(key, { schema: Node }));
    await rec.next((v) => v === null);
    for (let i = 0; i < 5; i += 1) await put(consul, `unrelated/${key}/${i}`, 'x');
    // A change after the unrelated writes proves the watch was awake throughout.
    const s = await createSession(consul);
    await acquire(consul, key, s, descriptor('after'));
    await rec.next((v) => v !== null);
    expect(rec.values.map((v) => v?.node.host ?? null)).toEqual([null, 'after']);
    expect(states.values.map((v) => v.status)).toEqual(['vacant', 'leader']);
    rec.unsubscribe();
    states.unsubscribe();
  });

  it('emits nothing when the leader is rewritten with the same session but follows a new descriptor', async () => {
    const key = uniqueKey();
    const rec = record(discovery.leader(key, { schema: Node }));
    const s = await createSession(consul);
    await acquire(consul, key, s, descriptor('h', 1));
    await rec.next((v) => v?.node.port === 1);
    // A contender re-acquiring with its own session updates its descriptor in place.
    await acquire(consul, key, s, descriptor('h', 2));
    const updated = await rec.next((v) => v?.node.port === 2);
    expect(updated?.session.id).toBe(s);
    expect(rec.values.filter((v) => v === null)).toHaveLength(1);
    rec.unsubscribe();
  });
});

describe('bad data never ends a stream', () => {
  const invalidCases: Array<[string, string]> = [
    ['a value that is not JSON', 'not json {'],
    ['a schema mismatch', JSON.stringify({ host: 42 })],
    ['an empty value with a schema that wants an object', ''],
  ];
  for (const [name, value] of invalidCases) {
    it(`reports ${name} as invalid, null for leader(), then follows the next good value`, async () => {
      const key = uniqueKey();
      const states = record(discovery.watch(key, { schema: Node }));
      const leaders = record(discovery.leader(key, { schema: Node }));
      const s = await createSession(consul);
      await acquire(consul, key, s, value);
      const invalid = await states.next((v) => v.status === 'invalid');
      if (invalid.status !== 'invalid') throw new Error('unreachable');
      expect(invalid.error.code).toBe('INVALID_DESCRIPTOR');
      expect(invalid.raw).toBe(value);
      expect(invalid.issues.length).toBeGreaterThan(0);
      expect(invalid.session.id).toBe(s);
      await acquire(consul, key, s, descriptor('good'));
      const good = await states.next((v) => v.status === 'leader');
      if (good.status !== 'leader') throw new Error('unreachable');
      expect(good.leader.node.host).toBe('good');
      expect(leaders.values.map((v) => v?.node.host ?? null)).toEqual([null, 'good']);
      expect(states.errors).toEqual([]);
      expect(states.completed).toBe(false);
      states.unsubscribe();
      leaders.unsubscribe();
    });
  }

  it('points zod issues at the offending field', async () => {
    const key = uniqueKey();
    const states = record(discovery.watch(key, { schema: Node }));
    const s = await createSession(consul);
    await acquire(consul, key, s, JSON.stringify({ host: 'h', port: 'eighty' }));
    const invalid = await states.next((v) => v.status === 'invalid');
    if (invalid.status !== 'invalid') throw new Error('unreachable');
    expect(invalid.issues[0]?.path).toEqual(['port']);
    expect(invalid.error.message).toContain('port');
    states.unsubscribe();
  });

  it('decodes a value near Consul’s 512 KB limit', async () => {
    const key = uniqueKey();
    const Big = z.object({ host: z.string(), pad: z.string() });
    const rec = record(discovery.leader(key, { schema: Big }));
    const pad = 'x'.repeat(500_000);
    const s = await createSession(consul);
    await acquire(consul, key, s, JSON.stringify({ host: 'big', pad }));
    const leader = await rec.next((v) => v !== null);
    expect(leader?.node.pad.length).toBe(500_000);
    rec.unsubscribe();
  });

  it('reports a value over the 512 KB limit nowhere: Consul refuses the write', async () => {
    const key = uniqueKey();
    const s = await createSession(consul);
    await expect(acquire(consul, key, s, 'x'.repeat(600_000))).rejects.toThrow();
  });
});

describe('keys without a descriptor', () => {
  it('follows a `consul lock` key: flags 0x2ddccbc058a50c18, empty value, leader known from its session', async () => {
    const key = `${uniqueKey()}/.lock`;
    const rec = record(discovery.leader(key));
    const s = await createSession(consul, { name: 'Consul lock' });
    expect(await acquire(consul, key, s, '', '3304740253564472344')).toBe(true);
    const leader = await rec.next((v) => v !== null);
    expect(leader?.flags).toBe(0x2ddccbc058a50c18n);
    expect(leader?.node).toBeNull();
    expect(leader?.session.name).toBe('Consul lock');
    rec.unsubscribe();
  });

  it('follows a lock taken by the real `consul lock` command, and its release', async () => {
    const prefix = `locks/${uniqueKey()}`;
    const child = spawn(
      consulBinary(),
      ['lock', `-http-addr=${agent.address}`, '-name=nightly-job', prefix, 'sleep 60'],
      { stdio: 'ignore' },
    );
    try {
      const rec = record(discovery.leader(`${prefix}/.lock`));
      const leader = await rec.next((v) => v !== null);
      expect(leader?.flags).toBe(0x2ddccbc058a50c18n);
      expect(leader?.session.name).toBe('nightly-job');
      child.kill('SIGTERM'); // consul lock releases the lock when interrupted
      await rec.next((v) => v === null, { from: 1 });
      rec.unsubscribe();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('accepts an empty value only when the schema says so (nullable)', async () => {
    const key = uniqueKey();
    const s = await createSession(consul);
    await acquire(consul, key, s, '');
    expect(await discovery.current(key, { schema: Node })).toBeNull();
    const leader = await discovery.current(key, { schema: Node.nullable() });
    expect(leader?.node).toBeNull();
    expect(leader?.session.id).toBe(s);
  });

  it("decodes plain text with decode: 'text'", async () => {
    const key = uniqueKey();
    const s = await createSession(consul);
    await acquire(consul, key, s, 'db-7.internal:5432');
    const leader = await discovery.current(key, { decode: 'text', schema: z.string() });
    expect(leader?.node).toBe('db-7.internal:5432');
  });

  it('decodes with a function of the raw bytes', async () => {
    const key = uniqueKey();
    const s = await createSession(consul);
    await acquire(consul, key, s, Buffer.from([1, 2, 3]));
    const leader = await discovery.current(key, {
      decode: (bytes) => Array.from(bytes),
      schema: z.array(z.number()),
    });
    expect(leader?.node).toEqual([1, 2, 3]);
  });
});

describe('current()', () => {
  it('reads the leader once, or null', async () => {
    const key = uniqueKey();
    expect(await discovery.current(key, { schema: Node })).toBeNull();
    const s = await createSession(consul, { name: 'now' });
    await acquire(consul, key, s, descriptor('now'));
    const leader = await discovery.current<Node>(key, { schema: Node });
    expect(leader?.node).toEqual({ host: 'now', port: 5432 });
    expect(leader?.session.name).toBe('now');
    await release(consul, key, s);
    expect(await discovery.current(key, { schema: Node })).toBeNull();
  });

  it('with no options, reads the address and token from the CONSUL_* environment', async () => {
    const key = uniqueKey();
    const s = await createSession(consul, { name: 'from-env' });
    await acquire(consul, key, s, descriptor('env'));
    const saved = { addr: process.env.CONSUL_HTTP_ADDR, token: process.env.CONSUL_HTTP_TOKEN };
    process.env.CONSUL_HTTP_ADDR = `http://${agent.address}`;
    process.env.CONSUL_HTTP_TOKEN = 'anonymous-is-fine-here';
    try {
      const fromEnv = createLeaderDiscovery();
      expect((await fromEnv.current(key, { schema: Node }))?.session.name).toBe('from-env');
      fromEnv.close();
    } finally {
      for (const [name, value] of [
        ['CONSUL_HTTP_ADDR', saved.addr],
        ['CONSUL_HTTP_TOKEN', saved.token],
      ] as const) {
        if (value === undefined) Reflect.deleteProperty(process.env, name);
        else process.env[name] = value;
      }
    }
  });

  it('rejects with CONSUL_UNREACHABLE when nothing listens', async () => {
    const dead = createLeaderDiscovery({ consul: { host: agent.host, port: 1 } });
    await expect(dead.current('k')).rejects.toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'refused' });
    dead.close();
  });
});

describe('sharing and teardown', () => {
  it('replays the current state to late subscribers', async () => {
    const key = uniqueKey();
    const leader$ = discovery.leader(key, { schema: Node });
    const first = record(leader$);
    const s = await createSession(consul);
    await acquire(consul, key, s, descriptor('late'));
    await first.next((v) => v !== null);
    const late = record(leader$);
    expect(late.values.map((v) => v?.node.host)).toEqual(['late']);
    first.unsubscribe();
    late.unsubscribe();
  });

  it('decodes a descriptor once per change for every call with the same key, scope and schema', async () => {
    const key = uniqueKey();
    let parses = 0;
    const Counted = Node.refine(() => {
      parses += 1;
      return true;
    });
    const recs = Array.from({ length: 10 }, () => record(discovery.leader(key, { schema: Counted })));
    // watch() and the other pipelines with the same schema and decoding share the decoded state too.
    const states = record(discovery.watch(key, { schema: Counted }));
    const s = await createSession(consul);
    await acquire(consul, key, s, descriptor('once'));
    await Promise.all(recs.map((r) => r.next((v) => v !== null)));
    await states.next((v) => v.status === 'leader');
    expect(parses).toBe(1);
    states.unsubscribe();
    expect(discovery.leader(key, { schema: Counted })).toBe(discovery.leader(key, { schema: Counted }));
    for (const r of recs) r.unsubscribe();
  });

  it('completes every stream on close() and refuses new reads', async () => {
    const own = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
    const states = record(own.watch(uniqueKey()));
    const leaders = record(own.leader(uniqueKey()));
    const prefixes = record(own.leaders('close/'));
    await states.next(() => true);
    await leaders.next(() => true);
    await prefixes.next(() => true);
    own.close();
    expect([states.completed, leaders.completed, prefixes.completed]).toEqual([true, true, true]);
    await expect(own.current('k')).rejects.toMatchObject({ code: 'DISCOVERY_CLOSED' });
    const after = record(own.leader('k'));
    expect(after.completed).toBe(true);
  });
});

describe('follow()', () => {
  it('gives the leader synchronously, resolves ready() with the first answer, and stops on close()', async () => {
    const key = uniqueKey();
    const s = await createSession(consul, { name: 'followed' });
    await acquire(consul, key, s, descriptor('f1'));
    const handle = discovery.follow(key, { schema: Node });
    expect(handle.current).toBeNull(); // nothing read yet
    const first = await handle.ready();
    expect(first?.node.host).toBe('f1');
    expect(handle.current).toBe(first); // the same object: a field read
    const changes = record(handle.changes);
    expect(changes.values.map((v) => v?.node.host)).toEqual(['f1']); // replays the current value
    await acquire(consul, key, s, descriptor('f2'));
    await changes.next((v) => v?.node.host === 'f2');
    expect(handle.current?.node.host).toBe('f2');
    handle.close();
    await acquire(consul, key, s, descriptor('f3'));
    await changes.next((v) => v?.node.host === 'f3');
    expect(handle.current).toBeNull(); // closed: nothing follows the key any more
    await expect(handle.ready()).resolves.toBeNull();
    changes.unsubscribe();
  });

  it('rejects ready() with DISCOVERY_CLOSED when closed before any answer', async () => {
    const dead = createLeaderDiscovery({ consul: { host: agent.host, port: 1 } });
    const handle = dead.follow('k');
    const ready = handle.ready();
    handle.close();
    await expect(ready).rejects.toMatchObject({ code: 'DISCOVERY_CLOSED' });
    dead.close();
  });
});

describe('state shapes', () => {
  it('exposes Consul read metadata on settled states', async () => {
    const key = uniqueKey();
    const states = record(discovery.watch(key));
    const first = await states.next(() => true);
    const settled = first as Exclude<LeaderState<unknown>, { status: 'unreachable' }>;
    expect(settled.consul.index).toBeGreaterThan(0n);
    expect(settled.consul.knownLeader).toBe(true);
    expect(settled.consul.lastContactMs).toBe(0);
    states.unsubscribe();
    await delay(0);
  });
});
