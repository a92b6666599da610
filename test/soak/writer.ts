/**
 * The write side of the soak test: one writer per key flips its leadership as
 * fast as Consul acknowledges each write (never paced to the watchers), and
 * reads Consul's final state directly at the end.
 */
import type Consul from 'consul';
import { acquire, createSession, destroySession, release } from '../support/contender.js';

export { rng } from '../support/rng.js';

export type FlipOp =
  /** A session that never held the key acquires it (the key was free or missing). */
  | 'acquire-new'
  /** A live session that held the key before acquires it again (a new lockIndex, a known session id). */
  | 'acquire-again'
  /** The holder releases the key (`?release=`). */
  | 'release'
  /** The holder's session is destroyed; its behaviour is `release`, so Consul releases the key. */
  | 'destroy'
  /** The key is deleted (held or not). */
  | 'delete'
  /** The holder writes a new descriptor with `?acquire=` on its own session (same lockIndex, new modifyIndex). */
  | 'rewrite';

export const FLIP_OPS: readonly FlipOp[] = [
  'acquire-new',
  'acquire-again',
  'release',
  'destroy',
  'delete',
  'rewrite',
];

/** What a leader describes itself with; `seq` makes every write's value unique. */
export interface Descriptor {
  readonly host: string;
  readonly port: number;
  readonly seq: number;
}

/** Live sessions that hold nothing are kept for `acquire-again`, up to this many; older ones are destroyed. */
const IDLE_SESSIONS = 4;

export class KeyWriter {
  /** Session holding the key, as far as this writer knows (it is the only writer of the key). */
  private holder: string | null = null;
  private exists = false;
  private readonly idle: string[] = [];
  private readonly names = new Map<string, string>();
  private seq = 0;
  private sessionsMade = 0;
  readonly counts: Record<FlipOp, number> = {
    'acquire-new': 0,
    'acquire-again': 0,
    release: 0,
    destroy: 0,
    delete: 0,
    rewrite: 0,
  };
  /** Every write that changed the key (one per flip). */
  flips = 0;
  /** Requests that did not touch the key: session creation, destruction of idle sessions. */
  otherWrites = 0;

  constructor(
    private readonly consul: Consul,
    readonly key: string,
    private readonly label: string,
    private readonly random: () => number,
  ) {}

  private descriptor(session: string): string {
    this.seq += 1;
    const body: Descriptor = {
      host: this.names.get(session) ?? session,
      port: 1024 + (this.seq % 60_000),
      seq: this.seq,
    };
    return JSON.stringify(body);
  }

  private choose(): FlipOp {
    const r = this.random();
    if (this.holder !== null) {
      if (r < 0.35) return 'rewrite';
      if (r < 0.6) return 'release';
      if (r < 0.82) return 'destroy';
      return 'delete';
    }
    const again = this.idle.length > 0;
    if (this.exists && r < 0.15) return 'delete';
    if (again && r < 0.4) return 'acquire-again';
    return 'acquire-new';
  }

  private async park(session: string): Promise<void> {
    this.idle.push(session);
    while (this.idle.length > IDLE_SESSIONS) {
      const oldest = this.idle.shift();
      if (oldest === undefined) break;
      await destroySession(this.consul, oldest);
      this.otherWrites += 1;
    }
  }

  private async take(session: string): Promise<void> {
    if (!(await acquire(this.consul, this.key, session, this.descriptor(session)))) {
      throw new Error(`${this.key}: session ${session} could not acquire a free key`);
    }
    this.holder = session;
    this.exists = true;
  }

  /** One change of the key, acknowledged by Consul. */
  async flip(): Promise<FlipOp> {
    const op = this.choose();
    const holder = this.holder;
    switch (op) {
      case 'acquire-new': {
        const session = await createSession(this.consul, {
          name: `${this.label}-${++this.sessionsMade}`,
          behavior: 'release',
          lockDelay: '0s',
        });
        this.names.set(session, `${this.label}-${this.sessionsMade}`);
        this.otherWrites += 1;
        await this.take(session);
        break;
      }
      case 'acquire-again': {
        const index = Math.floor(this.random() * this.idle.length);
        const [session] = this.idle.splice(index, 1);
        if (session === undefined) throw new Error('no idle session');
        await this.take(session);
        break;
      }
      case 'rewrite':
        if (holder === null) throw new Error('rewrite without a holder');
        await this.take(holder);
        break;
      case 'release': {
        if (holder === null) throw new Error('release without a holder');
        // Half the releases keep the descriptor as the value, half clear it.
        const value = this.random() < 0.5 ? '' : this.descriptor(holder);
        if (!(await release(this.consul, this.key, holder, value))) {
          throw new Error(`${this.key}: release by ${holder} refused`);
        }
        this.holder = null;
        await this.park(holder);
        break;
      }
      case 'destroy':
        if (holder === null) throw new Error('destroy without a holder');
        await destroySession(this.consul, holder);
        this.names.delete(holder);
        this.holder = null;
        break;
      case 'delete':
        await this.consul.kv.del(this.key);
        this.exists = false;
        if (holder !== null) {
          this.holder = null;
          await this.park(holder);
        }
        break;
    }
    this.counts[op] += 1;
    this.flips += 1;
    return op;
  }

  /** Destroys the sessions that hold nothing (no change to the key). */
  async dropIdleSessions(): Promise<void> {
    for (const session of this.idle.splice(0)) {
      await destroySession(this.consul, session);
      this.otherWrites += 1;
    }
  }
}

/** Consul's own view of a key, read directly (not through the SDK or the proxy). */
export type FinalState =
  | { readonly status: 'vacant'; readonly reason: 'key-missing' | 'no-session' | 'session-gone' }
  | {
      readonly status: 'leader';
      readonly sessionId: string;
      readonly sessionName: string;
      readonly node: Descriptor;
      readonly modifyIndex: bigint;
      readonly lockIndex: bigint;
      readonly createIndex: bigint;
    };

interface RawEntry {
  readonly ModifyIndex: number;
  readonly LockIndex: number;
  readonly CreateIndex: number;
  readonly Session?: string;
  readonly Value: string | null;
}

export async function readFinalState(consul: Consul, key: string): Promise<FinalState> {
  const entry = (await consul.kv.get(key)) as RawEntry | null | undefined;
  if (!entry) return { status: 'vacant', reason: 'key-missing' };
  if (!entry.Session) return { status: 'vacant', reason: 'no-session' };
  const session = (await consul.session.info(entry.Session)) as { ID: string; Name: string } | undefined;
  if (!session) return { status: 'vacant', reason: 'session-gone' };
  return {
    status: 'leader',
    sessionId: session.ID,
    sessionName: session.Name,
    node: JSON.parse(entry.Value ?? 'null') as Descriptor,
    modifyIndex: BigInt(entry.ModifyIndex),
    lockIndex: BigInt(entry.LockIndex),
    createIndex: BigInt(entry.CreateIndex),
  };
}
