/**
 * The split soak's model of the writes (split-soak.test.ts): the prefix and
 * its first keys, the mix of writes the writers of writer.ts make
 * (`SPLIT_MIX`), the names of the keys they create (mostly outside the
 * current plan's sub-prefixes, so the prefix is planned anew), the seeding
 * transactions, and Consul's final state read directly: what every subscriber
 * must end on.
 *
 * Knobs (environment): SOAK_SPLIT_KEYS (600 keys to start with), SOAK_SPLIT_FLIPS
 * (6000 writes that change the prefix).
 */
import type Consul from 'consul';
import { z } from 'zod';
import { intEnv } from './harness.js';
import { type Mix, type SessionModel, SoakWriter, WRITE_OPS, rng } from './writer.js';

/** Below this many keys the prefix would hardly split into several leaves. */
const MIN_KEYS = 128;
export const KEYS = Math.max(MIN_KEYS, intEnv('SOAK_SPLIT_KEYS', 600));
export const FLIPS = intEnv('SOAK_SPLIT_FLIPS', 6000);

export const PREFIX = 'soaksplit/';
/** Small enough that the prefix splits into several leaves (no sub-prefix of 16 keys or fewer is split). */
export const SPLIT = { minKeys: 64, maxQueries: 16 } as const;
/** Writers at once, each owning every WRITERS-th key and the keys it creates. */
export const WRITERS = 6;

/** What a leader describes itself with. */
export const Node = z.object({ host: z.string(), seq: z.number().int() });
export type Node = z.infer<typeof Node>;

const width = Math.max(3, String(KEYS - 1).length);
/** The `i`-th of the first keys: `svc-000/leader` … */
export const keyOf = (i: number): string => `${PREFIX}svc-${String(i).padStart(width, '0')}/leader`;
const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** Values that no leader may be decoded from: not JSON, or JSON that is not a Node. */
const INVALID_VALUES: readonly string[] = [
  'not json {',
  '{"host":42,"seq":1}',
  '{"host":"no-seq"}',
  '[1,2,3]',
  '"just text"',
  '',
];

/**
 * The writes to the prefix: acquisitions by new sessions (behavior release or
 * delete), by sessions holding other keys, by idle ones; rewrites, releases,
 * session ends, deletes, plain PUTs, invalid values; and 3% new keys.
 */
export const SPLIT_MIX: Mix = {
  // All of them, in the order the report lists them.
  ops: WRITE_OPS,
  held: [
    { below: 0.15, op: 'rewrite' },
    { below: 0.4, op: 'release' },
    { below: 0.58, op: 'destroy' },
    { below: 0.68, op: 'delete' },
    { below: 0.82, op: 'put' },
    { below: 1, op: 'invalid' },
  ],
  free: [
    { below: 0.35, op: 'acquire-new' },
    { below: 0.5, op: 'acquire-shared', when: 'holding' },
    { below: 0.6, op: 'acquire-again', when: 'idle' },
    { below: 0.72, op: 'put' },
    { below: 0.84, op: 'invalid' },
    { below: 1, op: 'delete', when: 'exists' },
    { below: 1, op: 'acquire-new' },
  ],
  idleSessions: 2,
  deleteSessions: true,
  sessionName: (label, n) => `${label}-s${n}`,
  descriptor: (host, seq) => {
    const node: Node = { host, seq };
    return JSON.stringify(node);
  },
  invalidValues: INVALID_VALUES,
  putDescriptors: 0.75,
  create: { rate: 0.03, acquired: 0.7 },
};

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

/** The keys writer `w` creates, by kind in turn, named after it: never one of another writer. */
function newKeys(w: number): (random: () => number) => string {
  const created: Record<NewKeyKind, number> = {
    after: 0,
    before: 0,
    last: 0,
    between: 0,
    gap: 0,
    sibling: 0,
  };
  return (random) => {
    const total = Object.values(created).reduce((s, n) => s + n, 0);
    const kind = NEW_KEY_KINDS[total % NEW_KEY_KINDS.length] as NewKeyKind;
    const name = newKeyName(kind, w, created[kind], random);
    created[kind] += 1;
    return name;
  };
}

/** Keys the writers will (likely) create: the first of each kind not picked at random. */
export function likelyNewKeys(): string[] {
  return NEW_KEY_KINDS.filter((k) => k !== 'between' && k !== 'gap').map((k, i) =>
    newKeyName(k, i % WRITERS, 0, () => 0),
  );
}

/** The writers, each with its own draws from `seed` (a run seeded alike writes alike). */
export function splitWriters(consul: Consul, seed: number): SoakWriter[] {
  return Array.from(
    { length: WRITERS },
    (_, w) =>
      new SoakWriter(consul, {
        mix: SPLIT_MIX,
        label: `w${w}`,
        random: rng(seed + 7919 * (w + 1)),
        newKey: newKeys(w),
      }),
  );
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
export async function seed(
  consul: Consul,
  writers: readonly SoakWriter[],
  random: () => number,
): Promise<void> {
  const ops: object[] = [];
  for (const [w, writer] of writers.entries()) {
    const sessions = [await writer.newSession(), await writer.newSession()];
    for (let i = w; i < KEYS; i += WRITERS) {
      const key = keyOf(i);
      const r = random();
      const session = sessions[Math.floor(i / WRITERS) % 2] as SessionModel;
      if (r < 0.1) {
        writer.seeded(key, false, null);
        continue;
      }
      if (r < 0.2) {
        const value = JSON.stringify({ host: `seed-w${w}`, seq: 0 });
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

/** What Consul says of one key at the end: what the SDK must show of it. */
export type Expected =
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

export interface FinalState {
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
export async function readFinalState(consul: Consul): Promise<FinalState> {
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
