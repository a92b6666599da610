/**
 * What the split soak checks of the SDK (split-soak.test.ts), besides what the
 * transport bounds (connections, streams, reads in flight: split-transport.ts)
 * and what close() leaves behind (harness.ts):
 *
 * - each emission as it arrives (`Inspector`s): prefix maps in Consul's order,
 *   no key's state older than one shown before, no map or leader twice in a
 *   row, no `X-Consul-Index` going back;
 * - each subscriber's last emission against Consul's final state (`…Mismatch`);
 * - the SDK's requests, read from the paths the proxies saw (`streamsOf`):
 *   whole reads and the plans they start, sub-prefix ("leaf") reads, the key
 *   list, single keys, session reads.
 */
import type { Leader, LeaderState, PrefixState } from '@consul-leader/discovery';
import type { Observable } from 'rxjs';
import { type KvRead, kvRead } from '../support/kv-read.js';
import { type Expected, type FinalState, type Node, PREFIX } from './split-model.js';
import { Subscriber } from './trackers.js';

// Each subscriber's last emission against Consul's final state

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
export function leaderMismatch(
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

export function leadersMismatch(
  leaders: ReadonlyMap<string, Leader<Node>>,
  final: FinalState,
): string | null {
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
export function statesMismatch(
  states: ReadonlyMap<string, LeaderState<Node>>,
  final: FinalState,
): string | null {
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

// Each emission as it arrives

export type Kind = 'leaders' | 'watchLeaders' | 'watchPrefix' | 'leader';
export type LeadersMap = ReadonlyMap<string, Leader<Node>>;
export type StatesMap = ReadonlyMap<string, LeaderState<Node>>;

/** Checks each emission as it arrives (`reset` at each new subscription). */
export interface Inspector<T> {
  reset(): void;
  /** Returns whether the emission reports Consul unreachable. */
  check(value: T): boolean;
}

/** What the per-emission checks found: the first few, and how many in all. */
export class Violations {
  readonly first: string[] = [];
  count = 0;

  add(message: string): void {
    this.count += 1;
    if (this.first.length < 20) this.first.push(message);
  }
}

/** A subscriber of the split soak, whatever it follows: it keeps its last emission and counts, never the whole history (the heap is measured). */
export interface SplitSubscriber {
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

/** A subscriber of the split soak: checks each emission with its inspector, if any. */
export class Inspected<T> extends Subscriber<T, FinalState> implements SplitSubscriber {
  constructor(
    id: number,
    readonly kind: Kind,
    readonly target: string,
    source: () => Observable<T>,
    private inspector: Inspector<T> | undefined,
    private readonly compare: (value: T, final: FinalState) => string | null,
  ) {
    super(id, source);
  }

  protected override onSubscribe(): void {
    this.inspector?.reset();
  }

  protected override onValue(value: T): void {
    if (this.inspector?.check(value)) this.unreachable += 1;
  }

  protected override differs(last: T, final: FinalState): string | null {
    return this.compare(last, final);
  }

  override release(): void {
    super.release();
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
  violations: Violations,
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
        violations.add(`${label}: emitted the same map twice in a row`);
        return previousUnreachable;
      }
      previous = map;
      let last: string | undefined;
      let anyUnreachable = false;
      for (const [key, value] of map) {
        if (last !== undefined && !(last < key)) {
          violations.add(`${label}: ${key} after ${last}, not Consul's order`);
        }
        last = key;
        if (unreachable(value)) anyUnreachable = true;
        const index = indexOf(key, value);
        if (index === undefined) continue;
        const before = newest.get(key);
        if (before !== undefined && index < before) {
          violations.add(`${label}: ${key} went back from modifyIndex ${before} to ${index}`);
        }
        if (before === undefined || index > before) newest.set(key, index);
      }
      previousUnreachable = anyUnreachable;
      return anyUnreachable;
    },
  };
}

export function leadersInspector(label: string, violations: Violations): Inspector<LeadersMap> {
  return mapInspector<Leader<Node>>(
    label,
    violations,
    (key, leader) => {
      if (leader.key !== key) violations.add(`${label}: ${key} maps to the leader of ${leader.key}`);
      return leader.modifyIndex;
    },
    () => false,
  );
}

export function statesInspector(label: string, violations: Violations): Inspector<StatesMap> {
  return mapInspector<LeaderState<Node>>(
    label,
    violations,
    (_key, state) => stateIndex(state),
    (state) => state.status === 'unreachable',
  );
}

export function prefixInspector(label: string, violations: Violations): Inspector<PrefixState<Node>> {
  const states = statesInspector(label, violations);
  let lastIndex: bigint | undefined;
  return {
    reset: () => states.reset(),
    check: (value) => {
      const unreachable = states.check(value.states);
      if (value.consul && lastIndex !== undefined && value.consul.index < lastIndex) {
        violations.add(`${label}: X-Consul-Index went back from ${lastIndex} to ${value.consul.index}`);
      }
      if (value.consul) lastIndex = value.consul.index;
      return unreachable || value.unreachable !== null;
    },
  };
}

/** leader(): never the same leader twice in a row, never an older leader than one shown before. */
export function leaderInspector(label: string, violations: Violations): Inspector<Leader<Node> | null> {
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
        violations.add(`${label}: the same leader twice in a row: ${describeLeader(value)}`);
      }
      previous = value;
      if (value === null) {
        if (newest !== undefined) movedOn = true;
        return false;
      }
      if (newest !== undefined && value.modifyIndex < newest) {
        violations.add(`${label}: leader at ${value.modifyIndex} is older than one at ${newest} seen before`);
      } else if (newest !== undefined && value.modifyIndex === newest && movedOn) {
        violations.add(`${label}: leader at ${value.modifyIndex} came back after a newer state`);
      }
      if (newest === undefined || value.modifyIndex > newest) {
        newest = value.modifyIndex;
        movedOn = false;
      }
      return false;
    },
  };
}

// What the proxies saw

export interface Streams {
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

export function streamsOf(paths: readonly string[]): Streams {
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
export function describeStreams(paths: readonly string[]): string {
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

/**
 * The prefix is split: the latest plan has two leaves or more, and each of
 * them, and the key list, has had a blocking read.
 */
export function splitUnderWay(paths: readonly string[]): boolean {
  const plan = streamsOf(paths).plans.at(-1) ?? [];
  const reads = paths.map(kvRead);
  const blocking = (check: (r: KvRead) => boolean): boolean =>
    reads.some((r) => r !== undefined && r.blocking && check(r));
  return (
    plan.length >= 2 &&
    blocking((r) => r.key === PREFIX && r.keys) &&
    plan.every((leaf) => blocking((r) => r.key === leaf && r.recurse))
  );
}
