/**
 * Soak of `splitPrefixes` (`pnpm test:soak`): a big prefix on a real Consul
 * agent serving HTTPS, followed with `http2` as many recursive blocking queries
 * on its sub-prefixes ("leaves") plus one `?keys` query, over one connection,
 * while several writers change its keys as fast as Consul acknowledges them:
 * acquisitions with fresh or shared sessions, releases, session ends (behavior
 * release and delete), deletes, plain PUTs, invalid values, and new keys whose
 * names fall outside the current plan's leaves (so the key list sees them and
 * the prefix is planned anew). Subscribers of one `createLeaderDiscovery`
 * (`leaders()`, `watchLeaders()`, `watchPrefix()` of the prefix, `leader()` of a
 * sample of its keys, coalesced into the prefix's query) must end on Consul's
 * final state, with no error, no outage, one TCP connection, a bounded number
 * of HTTP/2 streams, and nothing left behind by `close()`.
 *
 * Knobs (environment): SOAK_SPLIT_KEYS (600 keys to start with), SOAK_SPLIT_FLIPS
 * (6000 writes that change the prefix), SOAK_SEED (random; printed, to replay a run),
 * SOAK_SPLIT_HTTP1=1 (the same soak over plain HTTP/1.1 with `splitPrefixes.http1`).
 *
 * SDK → test/support/tcp-proxy.ts (counts connections) → test/support/h2-proxy.ts
 * (records each stream's path, counts open streams) → agent. With SOAK_SPLIT_HTTP1=1,
 * a plain-HTTP agent instead, SDK → test/support/proxy.ts (records each request,
 * counts connections and requests in flight) → agent: each sub-prefix query on a
 * connection of its own, a bounded number of KV reads in flight and of connections
 * (split-transport.ts holds what differs). The writers talk to the agent directly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import type { Observable, Subscription } from 'rxjs';
import { z } from 'zod';
import {
  type Leader,
  type LeaderDiscovery,
  type LeaderState,
  type PrefixState,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { acquire, createSession, destroySession, put, release } from '../support/contender.js';
import { type KvRead, kvRead } from '../support/kv-read.js';
import { delay } from '../support/recorder.js';
import { intEnv, leftBehind, mb, settledHeap, until } from './harness.js';
import { type SplitTransport, startHttp1Transport, startHttp2Transport } from './split-transport.js';
import { spread } from './trackers.js';
import { rng } from './writer.js';

/** Below this many keys the prefix would hardly split into several leaves. */
const MIN_KEYS = 128;
const KEYS = Math.max(MIN_KEYS, intEnv('SOAK_SPLIT_KEYS', 600));
const FLIPS = intEnv('SOAK_SPLIT_FLIPS', 6000);
const SEED = intEnv('SOAK_SEED', Math.floor(Math.random() * 2 ** 31));
/** `SOAK_SPLIT_HTTP1=1`: plain HTTP/1.1 with `splitPrefixes.http1` instead of HTTPS with `http2`. */
const HTTP1 = intEnv('SOAK_SPLIT_HTTP1', 0) === 1;
const TRANSPORT = HTTP1 ? 'HTTP/1.1' : 'HTTP/2';
const random = rng(SEED);

const PREFIX = 'soaksplit/';
/** Small enough that the prefix splits into several leaves (no sub-prefix of 16 keys or fewer is split). */
const SPLIT = { minKeys: 64, maxQueries: 16 } as const;
/** Writers at once, each owning every WRITERS-th key and the keys it creates. */
const WRITERS = 6;
/** Share of the writes that create a key (mostly outside the current plan's leaves). */
const CREATE_RATE = 0.03;
/** Keys of the prefix followed one by one with leader() (32 or more: they coalesce into its query). */
const LEADER_KEYS = 40;
const CONVERGE_TIMEOUT_MS = 30_000;
const QUIET_MS = 1_000;
/**
 * Heap growth allowed between before createLeaderDiscovery() and after close():
 * 4–5 MB measured at 6,000 to 15,000 writes; errors that kept past answers alive
 * (see errors.ts) made it 8.6 MB at 6,000 and 16 MB at 15,000.
 */
const HEAP_GROWTH_LIMIT = 8 * 1024 * 1024;
const SOAK_TIMEOUT_MS = 120_000 + FLIPS * 40;

const Node = z.object({ host: z.string(), seq: z.number().int() });
type Node = z.infer<typeof Node>;

const width = Math.max(3, String(KEYS - 1).length);
const keyOf = (i: number): string => `${PREFIX}svc-${String(i).padStart(width, '0')}/leader`;
const log = (...lines: string[]): void => console.log(lines.map((l) => `[split-soak] ${l}`).join('\n'));
const base64 = (text: string): string => Buffer.from(text).toString('base64');

let transport: SplitTransport;
let discovery: LeaderDiscovery;
let writers: KeyWriter[] = [];
let subscribers: Subscriber[] = [];
const baseline = { heapUsed: 0, resources: [] as string[] };
/** What the per-emission checks found (the first few), and how many in all. */
const violations: string[] = [];
let violationCount = 0;

function violation(message: string): void {
  violationCount += 1;
  if (violations.length < 20) violations.push(message);
}

// ---------------------------------------------------------------------------------------------
// The write side
// ---------------------------------------------------------------------------------------------

type Op =
  /** A new session (behavior release or delete) acquires a free or missing key. */
  | 'acquire-new'
  /** A live session that holds other keys acquires one more (its end then changes several leaves). */
  | 'acquire-shared'
  /** A live session that holds nothing acquires the key again. */
  | 'acquire-again'
  /** The holder writes a new descriptor with `?acquire=` on its own session. */
  | 'rewrite'
  /** The holder releases the key (the value kept or cleared). */
  | 'release'
  /** The holder's session is destroyed: Consul releases or deletes every key it holds. */
  | 'destroy'
  /** The key is deleted, held or not. */
  | 'delete'
  /** A PUT without a session: the holder (if any) keeps the key, with the new value. */
  | 'put'
  /** A value that is not a descriptor (not JSON, or not the schema) written under a session. */
  | 'invalid'
  /** A new key, named outside the current leaves mostly, acquired or PUT. */
  | 'create';

const OPS: readonly Op[] = [
  'acquire-new',
  'acquire-shared',
  'acquire-again',
  'rewrite',
  'release',
  'destroy',
  'delete',
  'put',
  'invalid',
  'create',
];

/** Values that no leader may be decoded from: not JSON, or JSON that is not a Node. */
const INVALID_VALUES: readonly string[] = [
  'not json {',
  '{"host":42,"seq":1}',
  '{"host":"no-seq"}',
  '[1,2,3]',
  '"just text"',
  '',
];

/** How the writers name the keys they create: before, between, after the first keys, or beside them. */
const NEW_KEY_KINDS = ['after', 'before', 'last', 'between', 'gap', 'sibling'] as const;
type NewKeyKind = (typeof NEW_KEY_KINDS)[number];

/** The `count`-th new key of kind `kind` of writer `w` (`pick` chooses among existing keys). */
function newKeyName(kind: NewKeyKind, w: number, count: number, pick: () => number): string {
  switch (kind) {
    // After every first key (svc-600, ... for 600 keys): outside the first plan.
    case 'after':
      return keyOf(KEYS + count * WRITERS + w);
    // A folder that sorts before `svc-`: outside every leaf until planned anew.
    case 'before':
      return `${PREFIX}aaa-w${w}-${count}/leader`;
    // A folder that sorts after `svc-`.
    case 'last':
      return `${PREFIX}zzz-w${w}-${count}/leader`;
    // Right before an existing key (`-` sorts before `/`): inside that key's leaf.
    case 'between':
      return `${keyOf(Math.floor(pick() * KEYS)).slice(0, -'/leader'.length)}-w${w}x${count}/leader`;
    // `svc-0:…` sorts after `svc-099/…`, before `svc-100/…`: outside leaves `svc-0N`, inside a leaf `svc-0`.
    case 'gap':
      return `${PREFIX}svc-${Math.floor(pick() * Math.ceil(KEYS / 10 ** (width - 1)))}:w${w}-${count}/leader`;
    // A key right under the prefix, with no folder.
    case 'sibling':
      return `${PREFIX}sibling-w${w}-${count}`;
  }
}

interface SessionModel {
  readonly id: string;
  readonly name: string;
  readonly behavior: 'release' | 'delete';
  /** The keys this session holds, as far as its writer knows (it is their only writer). */
  readonly keys: Set<string>;
}

interface KeyModel {
  exists: boolean;
  holder: SessionModel | null;
}

/** Live sessions that hold nothing are kept for `acquire-again`, up to this many; older ones are destroyed. */
const IDLE_SESSIONS = 2;

/**
 * One writer: the only one to write its keys, so it knows who holds each and
 * every write it makes must succeed (a refused one fails the test: the model
 * of Consul's rules is wrong). It never waits for the SDK.
 */
class KeyWriter {
  readonly keys: string[] = [];
  private readonly model = new Map<string, KeyModel>();
  /** Live sessions that hold at least one key. */
  private readonly holding = new Set<SessionModel>();
  private readonly idle: SessionModel[] = [];
  private seq = 0;
  private sessionsMade = 0;
  private readonly created: Record<NewKeyKind, number> = {
    after: 0,
    before: 0,
    last: 0,
    between: 0,
    gap: 0,
    sibling: 0,
  };
  readonly counts = Object.fromEntries(OPS.map((op) => [op, 0])) as Record<Op, number>;
  /** Writes that changed the prefix (a session's end counts once, however many keys it held). */
  flips = 0;
  /** Writes that did not: session creation, destruction of idle sessions. */
  otherWrites = 0;
  readonly newKeys: string[] = [];

  constructor(
    private readonly consul: Consul,
    readonly w: number,
    private readonly random: () => number,
  ) {}

  private descriptor(host: string): string {
    this.seq += 1;
    const node: Node = { host, seq: this.seq };
    return JSON.stringify(node);
  }

  private invalidValue(): string {
    return INVALID_VALUES[Math.floor(this.random() * INVALID_VALUES.length)] as string;
  }

  private modelOf(key: string): KeyModel {
    let model = this.model.get(key);
    if (!model) {
      model = { exists: false, holder: null };
      this.model.set(key, model);
      this.keys.push(key);
    }
    return model;
  }

  async newSession(): Promise<SessionModel> {
    this.sessionsMade += 1;
    const name = `w${this.w}-s${this.sessionsMade}`;
    const behavior = this.random() < 0.5 ? 'release' : 'delete';
    const id = await createSession(this.consul, { name, behavior, lockDelay: '0s' });
    this.otherWrites += 1;
    return { id, name, behavior, keys: new Set() };
  }

  /** The seed: a key's state as written by the seeding transaction. */
  seeded(key: string, exists: boolean, holder: SessionModel | null): void {
    const model = this.modelOf(key);
    model.exists = exists;
    model.holder = holder;
    if (holder) {
      holder.keys.add(key);
      this.holding.add(holder);
    }
  }

  private async take(key: string, session: SessionModel, value: string): Promise<void> {
    if (!(await acquire(this.consul, key, session.id, value))) {
      throw new Error(
        `${key}: session ${session.name} could not acquire it (the writer's model says it may)`,
      );
    }
    const model = this.modelOf(key);
    if (model.holder && model.holder !== session) throw new Error(`${key}: acquired while held`);
    model.exists = true;
    model.holder = session;
    session.keys.add(key);
    this.holding.add(session);
    const idle = this.idle.indexOf(session);
    if (idle >= 0) this.idle.splice(idle, 1);
  }

  /** The session holds nothing any more: kept for `acquire-again`, or destroyed. */
  private async park(session: SessionModel): Promise<void> {
    if (session.keys.size > 0) return;
    this.holding.delete(session);
    this.idle.push(session);
    while (this.idle.length > IDLE_SESSIONS) {
      const oldest = this.idle.shift();
      if (oldest === undefined) break;
      await destroySession(this.consul, oldest.id);
      this.otherWrites += 1;
    }
  }

  private choose(model: KeyModel): Op {
    const r = this.random();
    if (model.holder) {
      if (r < 0.15) return 'rewrite';
      if (r < 0.4) return 'release';
      if (r < 0.58) return 'destroy';
      if (r < 0.68) return 'delete';
      if (r < 0.82) return 'put';
      return 'invalid';
    }
    if (r < 0.35) return 'acquire-new';
    if (r < 0.5 && this.holding.size > 0) return 'acquire-shared';
    if (r < 0.6 && this.idle.length > 0) return 'acquire-again';
    if (r < 0.72) return 'put';
    if (r < 0.84) return 'invalid';
    return model.exists ? 'delete' : 'acquire-new';
  }

  /** One write that changes the prefix, acknowledged by Consul. */
  async flip(): Promise<Op> {
    if (this.random() < CREATE_RATE) {
      await this.create();
      return this.done('create');
    }
    const key = this.keys[Math.floor(this.random() * this.keys.length)] as string;
    const model = this.modelOf(key);
    const op = this.choose(model);
    const holder = model.holder;
    switch (op) {
      case 'acquire-new': {
        const session = await this.newSession();
        await this.take(key, session, this.descriptor(session.name));
        break;
      }
      case 'acquire-shared': {
        const sessions = [...this.holding];
        const session = sessions[Math.floor(this.random() * sessions.length)] as SessionModel;
        await this.take(key, session, this.descriptor(session.name));
        break;
      }
      case 'acquire-again': {
        const session = this.idle[Math.floor(this.random() * this.idle.length)] as SessionModel;
        await this.take(key, session, this.descriptor(session.name));
        break;
      }
      case 'rewrite':
        if (!holder) throw new Error('rewrite without a holder');
        await this.take(key, holder, this.descriptor(holder.name));
        break;
      case 'release': {
        if (!holder) throw new Error('release without a holder');
        const value = this.random() < 0.5 ? '' : this.descriptor(holder.name);
        if (!(await release(this.consul, key, holder.id, value))) {
          throw new Error(`${key}: release by ${holder.name} refused`);
        }
        model.holder = null;
        holder.keys.delete(key);
        await this.park(holder);
        break;
      }
      case 'destroy': {
        if (!holder) throw new Error('destroy without a holder');
        await destroySession(this.consul, holder.id);
        this.holding.delete(holder);
        for (const held of holder.keys) {
          const heldModel = this.modelOf(held);
          heldModel.holder = null;
          if (holder.behavior === 'delete') heldModel.exists = false;
        }
        holder.keys.clear();
        break;
      }
      case 'delete':
        await this.consul.kv.del(key);
        model.exists = false;
        model.holder = null;
        if (holder) {
          holder.keys.delete(key);
          await this.park(holder);
        }
        break;
      case 'put': {
        // Mostly a descriptor, sometimes not one.
        const value = this.random() < 0.75 ? this.descriptor(`plain-w${this.w}`) : this.invalidValue();
        await put(this.consul, key, value);
        model.exists = true;
        break;
      }
      case 'invalid': {
        const session = holder ?? (await this.newSession());
        await this.take(key, session, this.invalidValue());
        break;
      }
      case 'create':
        throw new Error('create is chosen apart');
    }
    return this.done(op);
  }

  private done(op: Op): Op {
    this.counts[op] += 1;
    this.flips += 1;
    return op;
  }

  /** The next new key, by kind in turn, named after this writer: never one of another writer. */
  nextNewKey(): string {
    const total = Object.values(this.created).reduce((s, n) => s + n, 0);
    const kind = NEW_KEY_KINDS[total % NEW_KEY_KINDS.length] as NewKeyKind;
    const name = newKeyName(kind, this.w, this.created[kind], this.random);
    this.created[kind] += 1;
    return name;
  }

  private async create(): Promise<void> {
    let key = this.nextNewKey();
    // A `between` or `gap` name can come twice (it is picked at random): then take the next one.
    while (this.model.has(key)) key = this.nextNewKey();
    this.newKeys.push(key);
    this.modelOf(key);
    if (this.random() < 0.7) {
      const session = await this.newSession();
      await this.take(key, session, this.descriptor(session.name));
    } else {
      await put(this.consul, key, this.descriptor(`plain-w${this.w}`));
      this.modelOf(key).exists = true;
    }
  }

  /** Destroys the sessions that hold nothing (no change to the prefix). */
  async dropIdleSessions(): Promise<void> {
    for (const session of this.idle.splice(0)) {
      await destroySession(this.consul, session.id);
      this.otherWrites += 1;
    }
  }
}

/** `PUT /v1/txn` with up to 64 KV operations. */
async function txn(consul: Consul, ops: readonly object[]): Promise<void> {
  const result = (await consul.transaction.create(ops as never)) as { Errors?: unknown[] | null } | undefined;
  if (result?.Errors && result.Errors.length > 0) throw new Error(`txn: ${JSON.stringify(result.Errors)}`);
}

/**
 * The first keys, `svc-000/leader` …, written by transactions: per writer, most
 * held by one of two sessions, some unheld, some held with an invalid value, some missing.
 */
async function seed(consul: Consul, all: readonly KeyWriter[]): Promise<void> {
  const ops: object[] = [];
  for (const writer of all) {
    const sessions = [await writer.newSession(), await writer.newSession()];
    for (let i = writer.w; i < KEYS; i += WRITERS) {
      const key = keyOf(i);
      const r = random();
      const session = sessions[Math.floor(i / WRITERS) % 2] as SessionModel;
      if (r < 0.1) {
        writer.seeded(key, false, null);
        continue;
      }
      if (r < 0.2) {
        const value = JSON.stringify({ host: `seed-w${writer.w}`, seq: 0 });
        ops.push({ KV: { Verb: 'set', Key: key, Value: base64(value) } });
        writer.seeded(key, true, null);
        continue;
      }
      const value = r < 0.25 ? 'not json {' : JSON.stringify({ host: session.name, seq: 0 });
      ops.push({ KV: { Verb: 'lock', Key: key, Value: base64(value), Session: session.id } });
      writer.seeded(key, true, session);
    }
  }
  for (let start = 0; start < ops.length; start += 64) await txn(consul, ops.slice(start, start + 64));
}

// ---------------------------------------------------------------------------------------------
// Consul's final state, read directly
// ---------------------------------------------------------------------------------------------

type Expected =
  | {
      readonly status: 'leader';
      readonly sessionId: string;
      readonly sessionNode: string;
      readonly node: Node;
      readonly modifyIndex: bigint;
      readonly lockIndex: bigint;
    }
  | { readonly status: 'vacant'; readonly reason: 'no-session' | 'session-gone' }
  | { readonly status: 'invalid'; readonly sessionId: string; readonly modifyIndex: bigint };

interface FinalState {
  /** Every key under the prefix, in Consul's order. */
  readonly keys: readonly string[];
  readonly byKey: ReadonlyMap<string, Expected>;
  readonly leaders: number;
}

interface RawEntry {
  readonly Key: string;
  readonly ModifyIndex: number;
  readonly LockIndex: number;
  readonly Session?: string;
  readonly Value: string | null;
}

function decodeNode(value: string | null): Node | undefined {
  if (value === null || value === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return undefined;
  }
  const parsed = Node.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** One recursive read of the prefix and one session list, from the agent itself. */
async function readFinalState(consul: Consul): Promise<FinalState> {
  const entries = ((await consul.kv.get({ key: PREFIX, recurse: true })) ?? []) as RawEntry[];
  const sessions = (await consul.session.list()) as { ID: string; Node: string }[];
  const nodes = new Map(sessions.map((s) => [s.ID, s.Node]));
  const byKey = new Map<string, Expected>();
  let leaders = 0;
  for (const entry of entries) {
    let expected: Expected;
    const sessionNode = entry.Session ? nodes.get(entry.Session) : undefined;
    const node = decodeNode(entry.Value);
    if (!entry.Session) expected = { status: 'vacant', reason: 'no-session' };
    else if (sessionNode === undefined) expected = { status: 'vacant', reason: 'session-gone' };
    else if (node === undefined) {
      expected = { status: 'invalid', sessionId: entry.Session, modifyIndex: BigInt(entry.ModifyIndex) };
    } else {
      leaders += 1;
      expected = {
        status: 'leader',
        sessionId: entry.Session,
        sessionNode,
        node,
        modifyIndex: BigInt(entry.ModifyIndex),
        lockIndex: BigInt(entry.LockIndex),
      };
    }
    byKey.set(entry.Key, expected);
  }
  return { keys: entries.map((e) => e.Key), byKey, leaders };
}

const describeLeader = (l: Leader<Node> | null): string =>
  l === null
    ? 'null'
    : `${l.session.id}@${l.session.node} ${JSON.stringify(l.node)} at ${l.modifyIndex}/${l.lockIndex}`;
const describeExpected = (e: Expected | undefined): string =>
  e === undefined
    ? 'no key'
    : e.status === 'leader'
      ? `leader ${e.sessionId}@${e.sessionNode} ${JSON.stringify(e.node)} at ${e.modifyIndex}/${e.lockIndex}`
      : e.status === 'invalid'
        ? `invalid (session ${e.sessionId}) at ${e.modifyIndex}`
        : `vacant ${e.reason}`;

/** Why `leader` is not Consul's leader `expected` of `key`, or null when it is. */
function leaderMismatch(
  key: string,
  leader: Leader<Node> | null,
  expected: Expected | undefined,
): string | null {
  if (expected?.status !== 'leader') {
    return leader === null
      ? null
      : `${key}: leader ${describeLeader(leader)}, Consul: ${describeExpected(expected)}`;
  }
  const same =
    leader !== null &&
    leader.key === key &&
    leader.session.id === expected.sessionId &&
    leader.session.node === expected.sessionNode &&
    leader.node.host === expected.node.host &&
    leader.node.seq === expected.node.seq &&
    leader.modifyIndex === expected.modifyIndex &&
    leader.lockIndex === expected.lockIndex;
  return same ? null : `${key}: leader ${describeLeader(leader)}, Consul: ${describeExpected(expected)}`;
}

function leadersMismatch(leaders: ReadonlyMap<string, Leader<Node>>, final: FinalState): string | null {
  for (const [key, leader] of leaders) {
    const mismatch = leaderMismatch(key, leader, final.byKey.get(key));
    if (mismatch) return mismatch;
  }
  if (leaders.size !== final.leaders) {
    const missing = [...final.byKey].find(([key, e]) => e.status === 'leader' && !leaders.has(key));
    return `${leaders.size} leaders, Consul has ${final.leaders}${missing ? `; missing ${missing[0]}: ${describeExpected(missing[1])}` : ''}`;
  }
  return null;
}

function stateMismatch(key: string, state: LeaderState<Node>, expected: Expected | undefined): string | null {
  const shown =
    state.status === 'vacant'
      ? `vacant ${state.reason}`
      : state.status === 'invalid'
        ? `invalid (session ${state.session.id}) at ${state.entry.modifyIndex}`
        : state.status;
  const wrong = `${key}: ${shown}, Consul: ${describeExpected(expected)}`;
  if (expected === undefined || state.status !== expected.status) {
    return state.status === 'leader' ? leaderMismatch(key, state.leader, expected) : wrong;
  }
  switch (state.status) {
    case 'leader':
      return leaderMismatch(key, state.leader, expected);
    case 'vacant':
      return expected.status === 'vacant' && state.reason === expected.reason ? null : wrong;
    case 'invalid':
      return expected.status === 'invalid' &&
        state.session.id === expected.sessionId &&
        state.entry.modifyIndex === expected.modifyIndex
        ? null
        : wrong;
  }
}

/** Every key of Consul's answer, in its order, with the right state. */
function statesMismatch(states: ReadonlyMap<string, LeaderState<Node>>, final: FinalState): string | null {
  let i = 0;
  for (const [key, state] of states) {
    const want = final.keys[i];
    if (key !== want) {
      return `key #${i} is ${key}, Consul's is ${want ?? 'none'} (${states.size} keys, Consul has ${final.keys.length})`;
    }
    const mismatch = stateMismatch(key, state, final.byKey.get(key));
    if (mismatch) return mismatch;
    i += 1;
  }
  return states.size === final.keys.length ? null : `${states.size} keys, Consul has ${final.keys.length}`;
}

// ---------------------------------------------------------------------------------------------
// The read side
// ---------------------------------------------------------------------------------------------

type Kind = 'leaders' | 'watchLeaders' | 'watchPrefix' | 'leader';
type LeadersMap = ReadonlyMap<string, Leader<Node>>;
type StatesMap = ReadonlyMap<string, LeaderState<Node>>;

/** Checks each emission as it arrives (`reset` at each new subscription). */
interface Inspector<T> {
  reset(): void;
  /** Returns whether the emission reports Consul unreachable. */
  check(value: T): boolean;
}

/** A subscriber keeps its last emission and counts, never the whole history (the heap is measured). */
interface Subscriber {
  readonly id: number;
  readonly kind: Kind;
  readonly target: string;
  readonly emissions: number;
  readonly subscriptions: number;
  readonly unreachable: number;
  readonly errors: readonly unknown[];
  readonly completed: boolean;
  readonly subscribed: boolean;
  subscribe(): void;
  unsubscribe(): void;
  /** Why its last emission differs from Consul's final state, or null. */
  mismatch(final: FinalState): string | null;
  release(): void;
}

class Tracked<T> implements Subscriber {
  private subscription: Subscription | undefined;
  emissions = 0;
  subscriptions = 0;
  unreachable = 0;
  completed = false;
  readonly errors: unknown[] = [];
  last: T | undefined;

  constructor(
    readonly id: number,
    readonly kind: Kind,
    readonly target: string,
    private readonly source: () => Observable<T>,
    private inspector: Inspector<T> | undefined,
    private readonly compare: (value: T, final: FinalState) => string | null,
  ) {}

  get subscribed(): boolean {
    return this.subscription !== undefined;
  }

  subscribe(): void {
    if (this.subscription) return;
    this.subscriptions += 1;
    this.inspector?.reset();
    this.subscription = this.source().subscribe({
      next: (value) => {
        this.emissions += 1;
        this.last = value;
        if (this.inspector?.check(value)) this.unreachable += 1;
      },
      error: (error: unknown) => {
        this.errors.push(error);
      },
      complete: () => {
        this.completed = true;
      },
    });
  }

  unsubscribe(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  mismatch(final: FinalState): string | null {
    if (this.last === undefined) return 'no emission at all';
    return this.compare(this.last, final);
  }

  release(): void {
    this.subscription = undefined;
    this.last = undefined;
    this.inspector = undefined;
  }
}

/** The index a key's state was written at, when the state says. */
function stateIndex(state: LeaderState<Node>): bigint | undefined {
  if (state.status === 'leader') return state.leader.modifyIndex;
  if (state.status === 'invalid') return state.entry.modifyIndex;
  return undefined;
}

/**
 * A prefix map's checks: its keys in Consul's order (all ASCII here, so string
 * order is byte order), and no key's state older than one shown before.
 */
function mapInspector<V>(
  label: string,
  indexOf: (key: string, value: V) => bigint | undefined,
  unreachable: (value: V) => boolean,
): { reset(): void; check(map: ReadonlyMap<string, V>): boolean } {
  const newest = new Map<string, bigint>();
  let previous: ReadonlyMap<string, V> | undefined;
  let previousUnreachable = false;
  return {
    reset: () => {
      previous = undefined;
    },
    check: (map) => {
      if (map === previous) {
        violation(`${label}: emitted the same map twice in a row`);
        return previousUnreachable;
      }
      previous = map;
      let last: string | undefined;
      let anyUnreachable = false;
      for (const [key, value] of map) {
        if (last !== undefined && !(last < key)) {
          violation(`${label}: ${key} after ${last}, not Consul's order`);
        }
        last = key;
        if (unreachable(value)) anyUnreachable = true;
        const index = indexOf(key, value);
        if (index === undefined) continue;
        const before = newest.get(key);
        if (before !== undefined && index < before) {
          violation(`${label}: ${key} went back from modifyIndex ${before} to ${index}`);
        }
        if (before === undefined || index > before) newest.set(key, index);
      }
      previousUnreachable = anyUnreachable;
      return anyUnreachable;
    },
  };
}

function leadersInspector(label: string): Inspector<LeadersMap> {
  return mapInspector<Leader<Node>>(
    label,
    (key, leader) => {
      if (leader.key !== key) violation(`${label}: ${key} maps to the leader of ${leader.key}`);
      return leader.modifyIndex;
    },
    () => false,
  );
}

function statesInspector(label: string): Inspector<StatesMap> {
  return mapInspector<LeaderState<Node>>(
    label,
    (_key, state) => stateIndex(state),
    (state) => state.status === 'unreachable',
  );
}

function prefixInspector(label: string): Inspector<PrefixState<Node>> {
  const states = statesInspector(label);
  let lastIndex: bigint | undefined;
  return {
    reset: () => states.reset(),
    check: (value) => {
      const unreachable = states.check(value.states);
      if (value.consul && lastIndex !== undefined && value.consul.index < lastIndex) {
        violation(`${label}: X-Consul-Index went back from ${lastIndex} to ${value.consul.index}`);
      }
      if (value.consul) lastIndex = value.consul.index;
      return unreachable || value.unreachable !== null;
    },
  };
}

/** leader(): never the same leader twice in a row, never an older leader than one shown before. */
function leaderInspector(label: string): Inspector<Leader<Node> | null> {
  let previous: Leader<Node> | null | undefined;
  let newest: bigint | undefined;
  let movedOn = false;
  return {
    reset: () => {
      previous = undefined;
    },
    check: (value) => {
      if (
        previous !== undefined &&
        (previous === value ||
          (previous !== null &&
            value !== null &&
            previous.session.id === value.session.id &&
            previous.modifyIndex === value.modifyIndex &&
            previous.lockIndex === value.lockIndex))
      ) {
        violation(`${label}: the same leader twice in a row: ${describeLeader(value)}`);
      }
      previous = value;
      if (value === null) {
        if (newest !== undefined) movedOn = true;
        return false;
      }
      if (newest !== undefined && value.modifyIndex < newest) {
        violation(`${label}: leader at ${value.modifyIndex} is older than one at ${newest} seen before`);
      } else if (newest !== undefined && value.modifyIndex === newest && movedOn) {
        violation(`${label}: leader at ${value.modifyIndex} came back after a newer state`);
      }
      if (newest === undefined || value.modifyIndex > newest) {
        newest = value.modifyIndex;
        movedOn = false;
      }
      return false;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What the proxies saw
// ---------------------------------------------------------------------------------------------

interface Streams {
  readonly total: number;
  /** The prefix read whole (`?recurse` on it). */
  readonly whole: number;
  /** Whole reads without an index: the first one, then one per new plan. */
  readonly plansStarted: number;
  readonly keyList: number;
  readonly leafReads: number;
  /** Reads of one key of the prefix (leader() before its group coalesced). */
  readonly single: number;
  readonly sessionReads: number;
  readonly other: number;
  /** Leaf and key list reads without `?index` (each goes on from the whole read's index: none expected). */
  readonly unblocked: number;
  /** The distinct leaves read after each whole read without an index: one list per plan (none if empty). */
  readonly plans: readonly (readonly string[])[];
  readonly leaves: ReadonlySet<string>;
}

function streamsOf(paths: readonly string[]): Streams {
  const counts = {
    whole: 0,
    plansStarted: 0,
    keyList: 0,
    leafReads: 0,
    single: 0,
    sessionReads: 0,
    other: 0,
    unblocked: 0,
  };
  const plans: Set<string>[] = [];
  let plan = new Set<string>();
  const leaves = new Set<string>();
  for (const path of paths) {
    if (path.startsWith('/v1/session/')) {
      counts.sessionReads += 1;
      continue;
    }
    const read = kvRead(path);
    if (!read || !read.key.startsWith(PREFIX)) {
      counts.other += 1;
      continue;
    }
    const keyList = read.key === PREFIX && read.keys;
    const leaf = read.key !== PREFIX && read.recurse;
    if ((keyList || leaf) && !read.blocking) counts.unblocked += 1;
    if (read.key === PREFIX && read.keys) counts.keyList += 1;
    else if (read.key === PREFIX && read.recurse) {
      counts.whole += 1;
      if (!read.blocking) {
        counts.plansStarted += 1;
        plans.push((plan = new Set()));
      }
    } else if (read.recurse) {
      counts.leafReads += 1;
      plan.add(read.key);
      leaves.add(read.key);
    } else counts.single += 1;
  }
  return {
    total: paths.length,
    ...counts,
    plans: plans.filter((p) => p.size > 0).map((p) => [...p]),
    leaves,
  };
}

/** What a list of streams is made of, such as `16 leaf reads, 1 key list, 4 session reads`. */
function describeStreams(paths: readonly string[]): string {
  const s = streamsOf(paths);
  const parts: [number, string][] = [
    [s.leafReads, 'leaf reads'],
    [s.keyList, 'key list'],
    [s.whole, 'whole reads'],
    [s.sessionReads, 'session reads'],
    [s.single, 'single keys'],
    [s.other, 'other'],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${n} ${what}`)
    .join(', ');
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  transport = await (HTTP1 ? startHttp1Transport : startHttp2Transport)(SPLIT, describeStreams);
  writers = Array.from(
    { length: WRITERS },
    (_, w) => new KeyWriter(transport.writer, w, rng(SEED + 7919 * (w + 1))),
  );
  await seed(transport.writer, writers);
  baseline.heapUsed = await settledHeap();
  baseline.resources = process.getActiveResourcesInfo();
  discovery = createLeaderDiscovery(transport.options);
  log(
    `mode ${transport.mode} (SOAK_SPLIT_HTTP1=${HTTP1 ? 1 : 0}): ${transport.description}`,
    `seed ${SEED} (SOAK_SEED), keys ${KEYS} (SOAK_SPLIT_KEYS), flips ${FLIPS} (SOAK_SPLIT_FLIPS), ${WRITERS} writers, splitPrefixes ${JSON.stringify(transport.options.splitPrefixes)}`,
    `heap before createLeaderDiscovery(): ${mb(baseline.heapUsed)}`,
  );
}, 60_000);

afterAll(async () => {
  discovery?.close();
  await transport?.destroy();
});

describe(`soak: a split prefix over ${TRANSPORT}, written at full speed`, () => {
  it(
    `${FLIPS} writes over ${KEYS}+ keys of ${PREFIX}, followed as sub-prefixes ${HTTP1 ? 'on a connection each' : 'on one connection'}`,
    async () => {
      const leadersOf = (): Observable<LeadersMap> => discovery.leaders(PREFIX, { schema: Node });
      const statesOf = (): Observable<StatesMap> => discovery.watchLeaders(PREFIX, { schema: Node });
      const prefixOf = (): Observable<PrefixState<Node>> => discovery.watchPrefix(PREFIX, { schema: Node });
      const leaderOf = (key: string): Observable<Leader<Node> | null> =>
        discovery.leader(key, { schema: Node });
      const sharedLeaders = leadersOf();
      const sharedStates = statesOf();
      const sharedPrefix = prefixOf();

      const all: Subscriber[] = [];
      const add = <T>(
        kind: Kind,
        target: string,
        source: () => Observable<T>,
        inspector: Inspector<T> | undefined,
        compare: (value: T, final: FinalState) => string | null,
      ): Subscriber => {
        const subscriber = new Tracked<T>(all.length, kind, target, source, inspector, compare);
        all.push(subscriber);
        return subscriber;
      };
      const addLeaders = (own: boolean, checked: boolean): Subscriber =>
        add<LeadersMap>(
          'leaders',
          PREFIX,
          own ? leadersOf : () => sharedLeaders,
          checked ? leadersInspector(`leaders() #${all.length}`) : undefined,
          leadersMismatch,
        );
      const addStates = (own: boolean, checked: boolean): Subscriber =>
        add<StatesMap>(
          'watchLeaders',
          PREFIX,
          own ? statesOf : () => sharedStates,
          checked ? statesInspector(`watchLeaders() #${all.length}`) : undefined,
          statesMismatch,
        );
      const addPrefix = (own: boolean, checked: boolean): Subscriber =>
        add<PrefixState<Node>>(
          'watchPrefix',
          PREFIX,
          own ? prefixOf : () => sharedPrefix,
          // Every watchPrefix() subscriber checks its outage flag; one checks every key too.
          checked
            ? prefixInspector(`watchPrefix() #${all.length}`)
            : { reset: () => undefined, check: (value) => value.unreachable !== null },
          (value, final) =>
            value.unreachable !== null ? 'unreachable' : statesMismatch(value.states, final),
        );
      const addLeader = (key: string, own: boolean): Subscriber => {
        const shared = leaderOf(key);
        return add<Leader<Node> | null>(
          'leader',
          key,
          own ? () => leaderOf(key) : () => shared,
          leaderInspector(`leader(${key}) #${all.length}`),
          (value, final) => leaderMismatch(key, value, final.byKey.get(key)),
        );
      };

      // What joins when: from the start, at a given write, after the last write; leave and come back.
      const schedule = new Map<number, (() => void)[]>();
      const at = (flip: number, action: () => void): void => {
        const list = schedule.get(flip) ?? [];
        list.push(action);
        schedule.set(flip, list);
      };
      const afterWrites: (() => void)[] = [];
      const randomFlip = (from = 0): number =>
        from + 1 + Math.floor(random() * Math.max(1, (FLIPS - from) * 0.8));
      const comesAndGoes = (subscriber: Subscriber, from: number, cycles: number): void => {
        let cursor = from;
        for (let c = 0; c < cycles; c += 1) {
          const leave = cursor + 1 + Math.floor(random() * Math.max(1, (FLIPS - cursor) / 3));
          const back = leave + 1 + Math.floor(random() * Math.max(1, (FLIPS - leave) / 4));
          if (back >= FLIPS) break;
          at(leave, () => subscriber.unsubscribe());
          at(back, () => subscriber.subscribe());
          cursor = back;
        }
      };
      const late = (subscriber: Subscriber, cycles = 0): void => {
        const from = randomFlip();
        at(from, () => subscriber.subscribe());
        if (cycles > 0) comesAndGoes(subscriber, from, cycles);
      };

      // Prefix subscribers: the first of each kind stays from start to end and checks every emission.
      addLeaders(false, true).subscribe();
      addLeaders(true, false).subscribe();
      const leadersBack = addLeaders(false, false);
      leadersBack.subscribe();
      comesAndGoes(leadersBack, 0, 2);
      late(addLeaders(false, false));
      late(addLeaders(true, false), 1);
      const leadersLast = addLeaders(false, false);
      afterWrites.push(() => leadersLast.subscribe());
      addStates(false, true).subscribe();
      late(addStates(true, false));
      const statesBack = addStates(false, false);
      statesBack.subscribe();
      comesAndGoes(statesBack, 0, 2);
      addPrefix(false, true).subscribe();
      late(addPrefix(false, false), 1);
      const prefixLast = addPrefix(true, false);
      afterWrites.push(() => prefixLast.subscribe());

      // leader() of a sample of the first keys, and of keys the writers will (likely) create.
      const sample = Array.from({ length: LEADER_KEYS }, (_, i) =>
        keyOf(Math.floor((i * KEYS) / LEADER_KEYS) + (i % 3)),
      );
      const future = NEW_KEY_KINDS.filter((k) => k !== 'between' && k !== 'gap').map((k, i) =>
        newKeyName(k, i % WRITERS, 0, () => 0),
      );
      for (const key of [...sample, ...future]) {
        // The first subscriber of each key stays: the group of coalesced keys never empties.
        addLeader(key, false).subscribe();
        const second = addLeader(key, random() < 0.3);
        const r = random();
        if (r < 0.5) {
          second.subscribe();
          if (random() < 0.3) comesAndGoes(second, 0, 1 + Math.floor(random() * 2));
        } else if (r < 0.85) late(second, random() < 0.3 ? 1 : 0);
        else afterWrites.push(() => second.subscribe());
      }
      subscribers = all;
      const prefixChecked = all[0] as Tracked<LeadersMap>;

      // Warm-up: the first map, then the split (every leaf and the key list have a blocking read out).
      const ready = await until(() => {
        const paths = transport.paths();
        const streams = streamsOf(paths);
        const plan = streams.plans.at(-1) ?? [];
        const reads = paths.map(kvRead);
        const blocking = (check: (r: KvRead) => boolean): boolean =>
          reads.some((r) => r !== undefined && r.blocking && check(r));
        return (
          prefixChecked.last !== undefined &&
          plan.length >= 2 &&
          blocking((r) => r.key === PREFIX && r.keys) &&
          plan.every((leaf) => blocking((r) => r.key === leaf && r.recurse))
        );
      }, 20_000);
      expect(ready, `the prefix split: ${JSON.stringify(streamsOf(transport.paths()).plans)}`).toBe(true);
      const warm = streamsOf(transport.paths());
      const warmMark = transport.requestCount();
      const firstLeaves = warm.plans.at(-1) ?? [];

      // The writes: every writer as fast as Consul acknowledges, until FLIPS writes in all.
      let done = 0;
      const started = performance.now();
      await Promise.all(
        writers.map(async (writer) => {
          while (done < FLIPS) {
            done += 1;
            const n = done;
            await writer.flip();
            for (const action of schedule.get(n) ?? []) action();
            schedule.delete(n);
          }
        }),
      );
      const writesDone = performance.now();
      const writeSeconds = (writesDone - started) / 1000;
      for (const writer of writers) await writer.dropIdleSessions();
      for (const actions of schedule.values()) for (const action of actions) action();
      for (const action of afterWrites) action();
      for (const subscriber of all) subscriber.subscribe();

      const final = await readFinalState(transport.writer);
      const converged = await until(() => all.every((s) => s.mismatch(final) === null), CONVERGE_TIMEOUT_MS);
      const convergeSeconds = (performance.now() - writesDone) / 1000;
      // Quiet period: nothing more may arrive.
      const emissionsBefore = all.map((s) => s.emissions);
      await delay(QUIET_MS);
      const totalSeconds = (performance.now() - started) / 1000;
      const lateEmissions = all.filter((s, i) => s.emissions !== emissionsBefore[i]);
      // Consul did not change meanwhile (nothing else writes under the prefix).
      const after = await readFinalState(transport.writer);
      expect(after.keys, 'Consul changed during the quiet period').toEqual(final.keys);

      // The report.
      const paths = transport.paths();
      const streams = streamsOf(paths);
      const steady = streamsOf(paths.slice(warmMark));
      const flips = writers.reduce((s, w) => s + w.flips, 0);
      const created = writers.flatMap((w) => w.newKeys);
      const outside = created.filter((key) => !firstLeaves.some((leaf) => key.startsWith(leaf)));
      const kinds: Kind[] = ['leaders', 'watchLeaders', 'watchPrefix', 'leader'];
      const emissionsOf = (kind: Kind): number =>
        all.filter((s) => s.kind === kind).reduce((sum, s) => sum + s.emissions, 0);
      const plans = streams.plans;
      log(
        `writes: ${flips} in ${writeSeconds.toFixed(2)} s = ${(flips / writeSeconds).toFixed(0)}/s (not paced; +${writers.reduce((s, w) => s + w.otherWrites, 0)} session writes)`,
        `mix: ${OPS.map((op) => `${op} ${writers.reduce((s, w) => s + w.counts[op], 0)}`).join(', ')}`,
        `keys: ${KEYS} at first, ${created.length} created (${outside.length} outside the first plan's leaves), ${final.keys.length} at the end, ${final.leaders} with a leader`,
        `plans: ${plans.length} (re-plans ${Math.max(0, streams.plansStarted - 1)}); leaves per plan: ${plans.map((p) => p.length).join(' ')}; distinct leaves ${streams.leaves.size}`,
        `${transport.unit}: ${streams.total} in all (whole ${streams.whole}, leaves ${streams.leafReads}, key list ${streams.keyList}, single keys ${streams.single}, sessions ${streams.sessionReads}, other ${streams.other}); ${transport.report(streams)}`,
        `subscribers: ${all.length}; emissions: ${kinds.map((k) => `${k}() ${emissionsOf(k)}`).join(', ')}; per leaders() subscribed once: ${spread(all.filter((s) => s.kind === 'leaders' && s.subscriptions === 1).map((s) => s.emissions))}`,
        `every subscriber agreed with Consul ${convergeSeconds.toFixed(2)} s after the last write (then ${QUIET_MS / 1000} s quiet); ${totalSeconds.toFixed(1)} s from the first write`,
      );

      // Every subscriber ends on Consul's final state, and stays there.
      const problems = all.flatMap((s) => {
        const mismatch = s.mismatch(final);
        return mismatch ? [`subscriber ${s.id} (${s.kind} ${s.target}): ${mismatch}`] : [];
      });
      expect(problems.slice(0, 10), `${problems.length} subscribers disagree with Consul`).toEqual([]);
      expect(converged).toBe(true);
      expect(
        lateEmissions.map((s) => `${s.id} (${s.kind} ${s.target})`),
        'emissions during the quiet period',
      ).toEqual([]);
      expect(violations, `${violationCount} violations`).toEqual([]);
      expect(all.flatMap((s) => s.errors)).toEqual([]);
      expect(all.filter((s) => s.completed).map((s) => s.id)).toEqual([]);
      // A healthy local agent: the SDK never had reason to report Consul unreachable.
      expect(
        all.filter((s) => s.unreachable > 0).map((s) => `${s.id} (${s.kind}): ${s.unreachable}`),
        'subscribers that saw Consul unreachable',
      ).toEqual([]);

      // HTTP/2: one TCP connection for every query, a bounded number of streams at once.
      // HTTP/1.1: a bounded number of KV reads in flight at once, and of connections.
      transport.checkRun(streams);
      // The prefix was really split, into disjoint leaves, at most maxQueries per plan.
      expect(streams.leaves.size, 'distinct sub-prefixes read').toBeGreaterThan(1);
      for (const plan of plans) {
        expect(plan.length, `leaves of a plan: ${plan.join(' ')}`).toBeLessThanOrEqual(SPLIT.maxQueries);
        const nested = plan.filter((leaf) => plan.some((other) => other !== leaf && leaf.startsWith(other)));
        expect(nested, 'leaves inside other leaves of the same plan').toEqual([]);
      }
      // Keys born outside the plan's leaves were seen: through the key list, a whole read and a new plan.
      if (outside.length > 0) {
        expect(steady.plansStarted, 'whole reads that start a new plan after the warm-up').toBeGreaterThan(0);
        expect(steady.keyList, 'key list reads after the warm-up').toBeGreaterThan(0);
      }
      // The leader() keys were served from the prefix's queries: none read on its own after the warm-up.
      expect(steady.single, 'reads of single keys after the warm-up').toBe(0);
    },
    SOAK_TIMEOUT_MS,
  );

  it('close(): every stream completes, no socket or timer is left, the heap returns near its start', async () => {
    expect(subscribers.filter((s) => s.completed).map((s) => s.id)).toEqual([]);
    expect(subscribers.every((s) => s.subscribed)).toBe(true);
    transport.checkBeforeClose();

    discovery.close();
    const closedAt = performance.now();
    expect(subscribers.filter((s) => !s.completed).map((s) => s.id)).toEqual([]);
    await transport.checkClosed();
    // Nothing retries after close(): no new request, no new connection, even when the prefix changes.
    const streams = transport.requestCount();
    const writer = writers[0] as KeyWriter;
    await writer.flip();
    await delay(300);
    transport.checkNothingAfterClose(streams);

    // Drop what the test itself holds and close its own sockets (proxies, the writers' client),
    // so what remains open or allocated is the SDK's.
    const summary = { subscribers: subscribers.length, streams };
    for (const s of subscribers) s.release();
    subscribers = [];
    writers = [];
    await transport.releaseOwn();

    const { noSockets, timersGone, resources, heapAfter } = await leftBehind(baseline.resources, closedAt);
    log(
      `after close(): ${summary.subscribers} subscribers completed, ${summary.streams} ${TRANSPORT} ${transport.unit} in all`,
      `heap: before createLeaderDiscovery() ${mb(baseline.heapUsed)}, after close() ${mb(heapAfter)}, growth ${mb(heapAfter - baseline.heapUsed)} (limit ${mb(HEAP_GROWTH_LIMIT)})`,
      `active resources before: ${JSON.stringify(baseline.resources)}`,
      `active resources after:  ${JSON.stringify(resources)}`,
    );
    expect(noSockets, `TCP sockets left: ${JSON.stringify(resources)}`).toBe(true);
    expect(timersGone, `timers left: ${JSON.stringify(resources)}`).toBe(true);
    expect(
      heapAfter - baseline.heapUsed,
      'heap growth (bytes) from before createLeaderDiscovery()',
    ).toBeLessThan(HEAP_GROWTH_LIMIT);
  }, 60_000);
});
