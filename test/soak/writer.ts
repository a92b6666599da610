/**
 * The write side of the soaks: writers that change their keys as fast as
 * Consul acknowledges each write (never paced to the watchers). Each writer is
 * the only one to write its keys, so it knows who holds each, and every write
 * it makes must succeed (a refused one fails the test: its model of Consul's
 * rules is wrong). What it writes, and how often each kind of write, is its
 * `Mix`: `FLIP_MIX` below flips one key (soak.test.ts); `SPLIT_MIX` in
 * split-model.ts changes many keys of a prefix (split-soak.test.ts). Last, a
 * key's final state read from Consul directly (soak.test.ts).
 */
import type Consul from 'consul';
import { acquire, createSession, destroySession, put, release } from '../support/contender.js';

export { rng } from '../support/rng.js';

export type WriteOp =
  /** A new session acquires a free or missing key. */
  | 'acquire-new'
  /** A live session that holds other keys acquires one more (its end then changes several keys). */
  | 'acquire-shared'
  /** A live session that holds nothing any more acquires the key (a new lockIndex, a known session id). */
  | 'acquire-again'
  /** The holder writes a new descriptor with `?acquire=` on its own session (same lockIndex, new modifyIndex). */
  | 'rewrite'
  /** The holder releases the key (`?release=`); half the releases keep the descriptor as the value, half clear it. */
  | 'release'
  /** The holder's session is destroyed: Consul releases or deletes every key it holds (its behavior). */
  | 'destroy'
  /** The key is deleted, held or not. */
  | 'delete'
  /** A PUT without a session: the holder (if any) keeps the key, with the new value. */
  | 'put'
  /** A value that is not a descriptor written under a session (the holder's, or a new one). */
  | 'invalid'
  /** A new key (named by the writer's `newKey`), acquired or PUT. */
  | 'create';

/** Every write a mix may make. */
export const WRITE_OPS: readonly WriteOp[] = [
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

/**
 * One row of a mix's table: with the write's draw below `below` (and `when`
 * met), the write is `op`; else the next row. A table's last row is below 1
 * with no `when`, so it always ends the choice.
 */
export interface Choice {
  readonly below: number;
  readonly op: WriteOp;
  /** Only when the key exists, a live session holds nothing (`idle`), or one holds keys (`holding`). */
  readonly when?: 'exists' | 'idle' | 'holding';
}

/** What a writer writes, and how often: the soak's model of the writes. */
export interface Mix {
  /** The writes this mix makes, in the order the report lists them. */
  readonly ops: readonly WriteOp[];
  /** The write to a key a session holds. */
  readonly held: readonly Choice[];
  /** The write to a key no session holds, or a missing one. */
  readonly free: readonly Choice[];
  /** Live sessions that hold nothing are kept for `acquire-again`, up to this many; older ones are destroyed. */
  readonly idleSessions: number;
  /** Half the new sessions (a draw each) have behavior `delete` instead of `release`. */
  readonly deleteSessions: boolean;
  /** The name of the writer `label`'s `n`-th session (descriptors carry it as their host). */
  sessionName(label: string, n: number): string;
  /** The value a leader describes itself with; `seq` makes every write's value unique. */
  descriptor(host: string, seq: number): string;
  /** Values no leader may be decoded from (`put` and `invalid`). */
  readonly invalidValues?: readonly string[];
  /** `put`: the share of plain PUTs that write a descriptor (the others an invalid value). */
  readonly putDescriptors?: number;
  /** `create`: the share of the writes that create a key (a draw each), and of those acquired (else PUT). */
  readonly create?: { readonly rate: number; readonly acquired: number };
}

/** What a leader of soak.test.ts describes itself with. */
export interface Descriptor {
  readonly host: string;
  readonly port: number;
  readonly seq: number;
}

/** The order soak.test.ts reports its flips in. */
export const FLIP_OPS = ['acquire-new', 'acquire-again', 'release', 'destroy', 'delete', 'rewrite'] as const;
export type FlipOp = (typeof FLIP_OPS)[number];

/** soak.test.ts: one key, flipped by sessions that release it when they end. */
export const FLIP_MIX: Mix = {
  ops: FLIP_OPS,
  held: [
    { below: 0.35, op: 'rewrite' },
    { below: 0.6, op: 'release' },
    { below: 0.82, op: 'destroy' },
    { below: 1, op: 'delete' },
  ],
  free: [
    { below: 0.15, op: 'delete', when: 'exists' },
    { below: 0.4, op: 'acquire-again', when: 'idle' },
    { below: 1, op: 'acquire-new' },
  ],
  idleSessions: 4,
  deleteSessions: false,
  sessionName: (label, n) => `${label}-${n}`,
  descriptor: (host, seq) => {
    const body: Descriptor = { host, port: 1024 + (seq % 60_000), seq };
    return JSON.stringify(body);
  },
};

export interface SessionModel {
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

export interface WriterOptions {
  readonly mix: Mix;
  /** Names the writer's sessions (`mix.sessionName`) and the host of its plain PUTs (`plain-<label>`). */
  readonly label: string;
  /** The writer's own draws (seeded: a run seeded alike writes alike). */
  readonly random: () => number;
  /** Its keys to begin with, missing until it writes them; more come with `seeded()` and `create`. */
  readonly keys?: readonly string[];
  /** The name of the next key it creates (`create`), from its own draws. */
  readonly newKey?: (random: () => number) => string;
}

export class SoakWriter {
  /** Every key this writer writes, in the order it learnt of them. */
  readonly keys: string[] = [];
  private readonly model = new Map<string, KeyModel>();
  /** Live sessions that hold at least one key. */
  private readonly holding = new Set<SessionModel>();
  private readonly idle: SessionModel[] = [];
  private readonly mix: Mix;
  private readonly label: string;
  private readonly random: () => number;
  private readonly newKey: ((random: () => number) => string) | undefined;
  private seq = 0;
  private sessionsMade = 0;
  readonly counts = Object.fromEntries(WRITE_OPS.map((op) => [op, 0])) as Record<WriteOp, number>;
  /** Writes that changed a key (a session's end counts once, however many keys it held). */
  flips = 0;
  /** Writes that did not: session creation, destruction of idle sessions. */
  otherWrites = 0;
  /** The keys it created (`create`). */
  readonly newKeys: string[] = [];

  constructor(
    private readonly consul: Consul,
    options: WriterOptions,
  ) {
    this.mix = options.mix;
    this.label = options.label;
    this.random = options.random;
    this.newKey = options.newKey;
    for (const key of options.keys ?? []) this.modelOf(key);
  }

  private descriptor(host: string): string {
    this.seq += 1;
    return this.mix.descriptor(host, this.seq);
  }

  private invalidValue(): string {
    const values = this.mix.invalidValues ?? [];
    const value = values[Math.floor(this.random() * values.length)];
    if (value === undefined) throw new Error(`${this.label}: the mix has no invalid values`);
    return value;
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
    const name = this.mix.sessionName(this.label, this.sessionsMade);
    const behavior = !this.mix.deleteSessions || this.random() < 0.5 ? 'release' : 'delete';
    const id = await createSession(this.consul, { name, behavior, lockDelay: '0s' });
    this.otherWrites += 1;
    return { id, name, behavior, keys: new Set() };
  }

  /** A key's state as written some other way (a seeding transaction). */
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
    while (this.idle.length > this.mix.idleSessions) {
      const oldest = this.idle.shift();
      if (oldest === undefined) break;
      await destroySession(this.consul, oldest.id);
      this.otherWrites += 1;
    }
  }

  private choose(model: KeyModel): WriteOp {
    const r = this.random();
    const met = { exists: model.exists, idle: this.idle.length > 0, holding: this.holding.size > 0 };
    for (const row of model.holder ? this.mix.held : this.mix.free) {
      if (r < row.below && (row.when === undefined || met[row.when])) return row.op;
    }
    throw new Error('a mix table ends with a row below 1 and no condition');
  }

  /** One write that changes a key, acknowledged by Consul. */
  async flip(): Promise<WriteOp> {
    const create = this.mix.create;
    if (create && this.random() < create.rate) {
      await this.create(create.acquired);
      return this.done('create');
    }
    // One key is written without a draw: the draws of a one-key writer are the choices alone.
    const pick = this.keys.length > 1 ? Math.floor(this.random() * this.keys.length) : 0;
    const key = this.keys[pick] as string;
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
        const value =
          this.random() < (this.mix.putDescriptors ?? 1)
            ? this.descriptor(`plain-${this.label}`)
            : this.invalidValue();
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

  private done(op: WriteOp): WriteOp {
    this.counts[op] += 1;
    this.flips += 1;
    return op;
  }

  private async create(acquired: number): Promise<void> {
    const newKey = this.newKey;
    if (!newKey) throw new Error(`${this.label}: create without a newKey`);
    let key = newKey(this.random);
    // A name picked at random can come twice: then take the next one.
    while (this.model.has(key)) key = newKey(this.random);
    this.newKeys.push(key);
    this.modelOf(key);
    if (this.random() < acquired) {
      const session = await this.newSession();
      await this.take(key, session, this.descriptor(session.name));
    } else {
      await put(this.consul, key, this.descriptor(`plain-${this.label}`));
      this.modelOf(key).exists = true;
    }
  }

  /** Destroys the sessions that hold nothing (no change to any key). */
  async dropIdleSessions(): Promise<void> {
    for (const session of this.idle.splice(0)) {
      await destroySession(this.consul, session.id);
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
