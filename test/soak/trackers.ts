/**
 * Soak subscribers: `Subscriber` subscribes and unsubscribes as a soak's
 * schedule says, and keeps its last emission and counts (never the whole
 * history, so the heap measured after close() is the SDK's); `Tracker` (soak.test.ts)
 * follows one key through `leader()` or `watch()` and checks every emission as
 * it arrives. split-inspectors.ts has the split soak's.
 */
import type { Observable, Subscription } from 'rxjs';
import type { Leader, LeaderState } from '@consul-leader/discovery';
import type { Descriptor, FinalState } from './writer.js';

export type Kind = 'leader' | 'watch';
type Emission = Leader<Descriptor> | null | LeaderState<Descriptor>;

/** Keeps at most this many violation messages per subscriber. */
const MAX_VIOLATIONS = 5;

interface Position {
  readonly modifyIndex: bigint;
  readonly lockIndex: bigint;
}

function compare(a: Position, b: Position): number {
  if (a.modifyIndex !== b.modifyIndex) return a.modifyIndex < b.modifyIndex ? -1 : 1;
  if (a.lockIndex !== b.lockIndex) return a.lockIndex < b.lockIndex ? -1 : 1;
  return 0;
}

const show = (p: Position): string => `(modifyIndex ${p.modifyIndex}, lockIndex ${p.lockIndex})`;

/** The leader carried by an emission, if any. */
function leaderOf(kind: Kind, value: Emission): Leader<Descriptor> | null {
  if (kind === 'leader') return value as Leader<Descriptor> | null;
  const state = value as LeaderState<Descriptor>;
  return state.status === 'leader' ? state.leader : null;
}

/** What identifies a settled `watch()` state: two equal in a row would be a repeated emission. */
function stateIdentity(state: LeaderState<Descriptor>): string | null {
  switch (state.status) {
    case 'leader': {
      const l = state.leader;
      return `leader ${l.session.id} ${l.modifyIndex} ${l.lockIndex}`;
    }
    case 'vacant':
      return state.reason === 'key-missing'
        ? 'vacant key-missing'
        : `vacant ${state.reason} ${state.consul.index}`;
    case 'invalid':
      return `invalid ${state.entry.modifyIndex}`;
    case 'unreachable':
      return null;
  }
}

/** One subscriber of a soak; `F` is the final state from Consul it must end on. */
export abstract class Subscriber<T, F> {
  private subscription: Subscription | undefined;
  emissions = 0;
  subscriptions = 0;
  /** Emissions that reported Consul unreachable. */
  unreachable = 0;
  completed = false;
  readonly errors: unknown[] = [];
  last: T | undefined;

  constructor(
    readonly id: number,
    /** A fresh Observable for each subscription (a shared one, or a new call). */
    private readonly source: () => Observable<T>,
  ) {}

  get subscribed(): boolean {
    return this.subscription !== undefined;
  }

  subscribe(): void {
    if (this.subscription) return;
    this.subscriptions += 1;
    this.onSubscribe();
    this.subscription = this.source().subscribe({
      next: (value) => {
        this.emissions += 1;
        this.last = value;
        this.onValue(value);
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

  /** Forgets the subscription and the last emission after close() (for the heap measurement). */
  release(): void {
    this.subscription = undefined;
    this.last = undefined;
  }

  /** Why the last emission differs from Consul's final state, or null when it matches. */
  mismatch(final: F): string | null {
    if (this.last === undefined) return 'no emission at all';
    return this.differs(this.last, final);
  }

  /** A new subscription starts: what is checked between two emissions starts again. */
  protected abstract onSubscribe(): void;
  /** Checks an emission (already counted and kept as `last`). */
  protected abstract onValue(value: T): void;
  protected abstract differs(last: T, final: F): string | null;
}

export class Tracker extends Subscriber<Emission, FinalState> {
  /** Emissions of the current subscription. */
  private segmentEmissions = 0;
  private previous: Emission | undefined;
  private previousIdentity: string | null = null;
  /** The newest leader seen by this subscriber, over all its subscriptions. */
  private newest: Position | undefined;
  /** A settled non-leader emission arrived after `newest`: `newest` may not come back. */
  private movedOn = false;
  private lastIndex: bigint | undefined;
  completedEarly = false;
  readonly violations: string[] = [];

  constructor(
    id: number,
    readonly kind: Kind,
    readonly key: string,
    /** A fresh Observable for each subscription (a shared one, or a new `leader()`/`watch()` call). */
    source: () => Observable<Emission>,
    /** Whether each subscription makes its own `leader()`/`watch()` call. */
    readonly ownCall: boolean,
  ) {
    super(id, source);
  }

  protected override onSubscribe(): void {
    this.segmentEmissions = 0;
    this.previous = undefined;
    this.previousIdentity = null;
  }

  /** Called before `close()`: a stream that completed on its own broke the contract. */
  markCloseStarting(): void {
    if (this.completed) this.completedEarly = true;
  }

  /** Forgets the subscription after close() (for the heap measurement). */
  override release(): void {
    super.release();
    this.previous = undefined;
  }

  private violation(message: string): void {
    if (this.violations.length < MAX_VIOLATIONS) {
      this.violations.push(`subscriber ${this.id} (${this.kind}, ${this.key}): ${message}`);
    }
  }

  protected override onValue(value: Emission): void {
    this.segmentEmissions += 1;
    if (this.kind === 'leader') {
      const prev = this.previous as Leader<Descriptor> | null | undefined;
      const next = value as Leader<Descriptor> | null;
      if (prev !== undefined && sameLeader(prev, next)) {
        this.violation(`leader() emitted the same leader twice in a row: ${describeLeader(next)}`);
      }
    } else {
      const state = value as LeaderState<Descriptor>;
      if (state.status === 'unreachable') {
        this.unreachable += 1;
      } else {
        const identity = stateIdentity(state);
        if (identity !== null && identity === this.previousIdentity) {
          this.violation(`watch() emitted the same state twice in a row: ${identity}`);
        }
        this.previousIdentity = identity;
        // Consul's X-Consul-Index of the read behind a state; a read older than one already shown is a step back.
        if (this.lastIndex !== undefined && state.consul.index < this.lastIndex) {
          this.violation(`watch() went back from X-Consul-Index ${this.lastIndex} to ${state.consul.index}`);
        }
        this.lastIndex = state.consul.index;
      }
    }
    this.previous = value;

    const settled = this.kind === 'leader' || (value as LeaderState<Descriptor>).status !== 'unreachable';
    if (!settled) return;
    const leader = leaderOf(this.kind, value);
    if (leader === null) {
      if (this.newest) this.movedOn = true;
      return;
    }
    const position: Position = { modifyIndex: leader.modifyIndex, lockIndex: leader.lockIndex };
    if (this.newest) {
      const order = compare(position, this.newest);
      if (order < 0) {
        this.violation(`leader ${show(position)} is older than ${show(this.newest)}, seen before`);
      } else if (order === 0 && this.movedOn) {
        this.violation(`leader ${show(position)} came back after a newer state`);
      }
    }
    if (!this.newest || compare(position, this.newest) > 0) {
      this.newest = position;
      this.movedOn = false;
    }
  }

  protected override differs(last: Emission, final: FinalState): string | null {
    if (this.kind === 'watch') {
      const state = last as LeaderState<Descriptor>;
      if (state.status !== final.status) return `status ${state.status}, Consul says ${final.status}`;
      if (state.status === 'vacant' && final.status === 'vacant' && state.reason !== final.reason) {
        return `vacant ${state.reason}, Consul says ${final.reason}`;
      }
    }
    const leader = leaderOf(this.kind, last);
    if (final.status === 'vacant')
      return leader === null ? null : `leader ${describeLeader(leader)}, Consul: none`;
    if (leader === null) return `no leader, Consul says ${final.sessionId} at ${final.modifyIndex}`;
    const same =
      leader.session.id === final.sessionId &&
      leader.session.name === final.sessionName &&
      leader.modifyIndex === final.modifyIndex &&
      leader.lockIndex === final.lockIndex &&
      leader.createIndex === final.createIndex &&
      leader.node.host === final.node.host &&
      leader.node.port === final.node.port &&
      leader.node.seq === final.node.seq;
    return same
      ? null
      : `leader ${describeLeader(leader)}, Consul says ${final.sessionId} ${JSON.stringify(final.node)} at ${final.modifyIndex}/${final.lockIndex}`;
  }
}

function sameLeader(a: Leader<Descriptor> | null, b: Leader<Descriptor> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.session.id === b.session.id && a.modifyIndex === b.modifyIndex && a.lockIndex === b.lockIndex;
}

function describeLeader(l: Leader<Descriptor> | null): string {
  return l === null ? 'null' : `${l.session.id} ${JSON.stringify(l.node)} at ${l.modifyIndex}/${l.lockIndex}`;
}

/** min / median / max of a list of counts. */
export function spread(values: readonly number[]): string {
  if (values.length === 0) return 'n/a';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return `min ${sorted[0]}, median ${at(0.5)}, max ${sorted[sorted.length - 1]}`;
}
