import { describe, it, expect } from 'vitest';
import {
  type Observable,
  type Subscription,
  Subject,
  firstValueFrom,
  lastValueFrom,
  of,
  toArray,
} from 'rxjs';
import type { ConsulReadMeta, LeaderSession } from '@consul-leader/types';
import { ConsulHttpError, ConsulUnreachableError } from '../errors.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { RetryingReadEvent } from '../watch/retrying-read.js';
import type { KvEntry, KvRead } from '../wire/kv.js';
import { sessionInfo as fixtureSession } from '../test-fixtures.js';
import { SESSIONS_REMEMBERED } from '../config/defaults.js';
import { followKey } from './follow-key.js';
import { type KeyEvent, type KeySnapshot, sameKeyEvent } from './key-snapshot.js';

const KEY = 'service/api/leader';

const meta = (index: bigint): ConsulReadMeta => ({ index, lastContactMs: 0, knownLeader: true });

const entry = (over: Partial<KvEntry> = {}): KvEntry => ({
  key: KEY,
  valueBase64: Buffer.from('{"host":"a"}').toString('base64'),
  session: 'S1',
  flags: 3304740253564472344n,
  lockIndex: 1n,
  createIndex: 10n,
  modifyIndex: 10n,
  ...over,
});

const sessionInfo = (id: string): LeaderSession =>
  fixtureSession(id, {
    name: `lock ${id}`,
    checks: ['serfHealth'],
    ttl: '15s',
    ttlMs: 15_000,
    lockDelayMs: 15_000,
    createIndex: 9n,
    modifyIndex: 9n,
  });

const result = (read: KvRead, index: bigint): BlockingQueryEvent<KvRead> => ({
  type: 'result',
  value: read,
  meta: meta(index),
});
const held = (e: KvEntry, index: bigint) => result({ kind: 'entry', entry: e }, index);
const missing = (index: bigint) => result({ kind: 'missing' }, index);
const kvError = (attempt: number): BlockingQueryEvent<KvRead> => ({
  type: 'error',
  error: new ConsulUnreachableError('refused', 'cannot reach Consul (refused)'),
  attempt,
  retryInMs: 250 * attempt,
});

/** A `session` dependency answering at once from a table, counting its calls. */
function sessionsFrom(table: Record<string, LeaderSession | null>) {
  const calls: string[] = [];
  const session = (id: string): Observable<RetryingReadEvent<LeaderSession | null>> => {
    calls.push(id);
    return of({ type: 'value', value: table[id] ?? null });
  };
  return { calls, session };
}

const collect = (events: Observable<KeyEvent>) => lastValueFrom(events.pipe(toArray()));

describe('sameKeyEvent', () => {
  const a: KeySnapshot = {
    kind: 'held',
    key: KEY,
    entry: entry(),
    session: sessionInfo('S1'),
    meta: meta(11n),
  };

  it('sees an answering server that lost its Raft leader as a change (stale data must show)', () => {
    const b: KeySnapshot = { ...a, meta: { index: 11n, lastContactMs: 0, knownLeader: false } };
    expect(sameKeyEvent(a, b)).toBe(false);
  });

  it('ignores the read index and last contact', () => {
    const b: KeySnapshot = { ...a, meta: { index: 99n, lastContactMs: 300, knownLeader: true } };
    expect(sameKeyEvent(a, b)).toBe(true);
    expect(
      sameKeyEvent(
        { kind: 'key-missing', key: KEY, meta: meta(1n) },
        { kind: 'key-missing', key: KEY, meta: meta(2n) },
      ),
    ).toBe(true);
  });

  it('sees a new write, a new session and a new acquisition', () => {
    expect(sameKeyEvent(a, { ...a, entry: entry({ modifyIndex: 11n }) })).toBe(false);
    expect(sameKeyEvent(a, { ...a, entry: entry({ session: 'S2' }) })).toBe(false);
    expect(sameKeyEvent(a, { ...a, entry: entry({ lockIndex: 2n }) })).toBe(false);
  });

  it('sees a change of kind', () => {
    const gone: KeySnapshot = { kind: 'session-gone', key: KEY, entry: entry(), meta: meta(11n) };
    expect(sameKeyEvent(a, gone)).toBe(false);
    expect(sameKeyEvent(gone, { kind: 'key-missing', key: KEY, meta: meta(11n) })).toBe(false);
  });

  it('never equates unreachable events (each failure is reported)', () => {
    const u: KeyEvent = {
      kind: 'unreachable',
      key: KEY,
      error: new ConsulHttpError(500, 'x'),
      attempt: 1,
      retryInMs: 100,
      lastKnown: null,
    };
    expect(sameKeyEvent(u, u)).toBe(false);
    expect(sameKeyEvent(a, u)).toBe(false);
  });
});

describe('followKey', () => {
  it('joins each answer with its session and maps missing / released / gone keys', async () => {
    const { calls, session } = sessionsFrom({ S1: sessionInfo('S1'), S2: null });
    const events = await collect(
      followKey(KEY, {
        kv$: of(
          missing(5n),
          held(entry({ session: null, modifyIndex: 6n }), 6n),
          held(entry({ modifyIndex: 7n }), 7n),
          held(entry({ session: 'S2', modifyIndex: 8n, lockIndex: 2n }), 8n),
        ),
        session,
      }),
    );
    expect(events.map((e) => e.kind)).toEqual(['key-missing', 'no-session', 'held', 'session-gone']);
    expect(events[0]).toEqual({ kind: 'key-missing', key: KEY, meta: meta(5n) });
    expect(events[2]).toEqual({
      kind: 'held',
      key: KEY,
      entry: entry({ modifyIndex: 7n }),
      session: sessionInfo('S1'),
      meta: meta(7n),
    });
    // No session read for a released key.
    expect(calls).toEqual(['S1', 'S2']);
  });

  it('reads the session info once per session id', async () => {
    const { calls, session } = sessionsFrom({ S1: sessionInfo('S1'), S2: sessionInfo('S2') });
    const events = await collect(
      followKey(KEY, {
        kv$: of(
          held(entry({ modifyIndex: 10n }), 10n),
          held(entry({ modifyIndex: 11n }), 11n),
          held(entry({ modifyIndex: 12n }), 12n),
          held(entry({ session: 'S2', lockIndex: 2n, modifyIndex: 13n }), 13n),
          held(entry({ session: 'S2', lockIndex: 2n, modifyIndex: 14n }), 14n),
        ),
        session,
      }),
    );
    expect(calls).toEqual(['S1', 'S2']);
    expect(events.map((e) => (e.kind === 'held' ? e.session.id : e.kind))).toEqual([
      'S1',
      'S1',
      'S1',
      'S2',
      'S2',
    ]);
  });

  it('remembers the last few sessions: contenders taking turns are read once each', async () => {
    const ids = Array.from({ length: SESSIONS_REMEMBERED + 1 }, (_, i) => `S${i + 1}`);
    const { calls, session } = sessionsFrom(Object.fromEntries(ids.map((id) => [id, sessionInfo(id)])));
    let index = 10n;
    const turn = (id: string) => held(entry({ session: id, modifyIndex: (index += 1n) }), index);
    const turns = ['S1', 'S2', 'S1', 'S2', 'S1', ...ids.slice(2), 'S1', 'S2'];
    const events = await collect(followKey(KEY, { kv$: of(...turns.map(turn)), session }));
    expect(events.map((e) => (e.kind === 'held' ? e.session.id : e.kind))).toEqual(turns);
    // S2 was the least recently used when the fifth session came: forgotten, so read again.
    expect(calls).toEqual([...ids, 'S2']);
  });

  it('does not emit a wake-up that moved only the read index', async () => {
    const { session } = sessionsFrom({ S1: sessionInfo('S1') });
    const events = await collect(
      followKey(KEY, {
        kv$: of(held(entry(), 11n), held(entry(), 20n), held(entry(), 31n), missing(40n), missing(41n)),
        session,
      }),
    );
    expect(events.map((e) => e.kind)).toEqual(['held', 'key-missing']);
    expect(events[0]?.kind === 'held' && events[0].meta.index).toBe(11n);
  });

  it('drops a session answer that arrives after a newer KV answer', () => {
    const kv$ = new Subject<BlockingQueryEvent<KvRead>>();
    const pending = new Map<string, Subject<RetryingReadEvent<LeaderSession | null>>>();
    const session = (id: string) => {
      const s = new Subject<RetryingReadEvent<LeaderSession | null>>();
      pending.set(id, s);
      return s.asObservable();
    };
    const seen: KeyEvent[] = [];
    const sub: Subscription = followKey(KEY, { kv$, session }).subscribe((e) => seen.push(e));

    kv$.next(held(entry({ session: 'S1', modifyIndex: 10n }), 10n));
    kv$.next(held(entry({ session: 'S2', lockIndex: 2n, modifyIndex: 11n }), 11n));
    // The older session read was abandoned...
    expect(pending.get('S1')?.observed).toBe(false);
    pending.get('S1')?.next({ type: 'value', value: sessionInfo('S1') });
    expect(seen).toEqual([]);
    // ...and only the newer leader is emitted.
    pending.get('S2')?.next({ type: 'value', value: sessionInfo('S2') });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.kind === 'held' && seen[0].session.id).toBe('S2');
    sub.unsubscribe();
  });

  it('reads a session again when its earlier read was dropped', async () => {
    const kv$ = new Subject<BlockingQueryEvent<KvRead>>();
    const calls: string[] = [];
    const answers = new Map<string, Subject<RetryingReadEvent<LeaderSession | null>>>();
    const session = (id: string) => {
      calls.push(id);
      const s = new Subject<RetryingReadEvent<LeaderSession | null>>();
      answers.set(`${id}#${calls.length}`, s);
      return s.asObservable();
    };
    const first = firstValueFrom(followKey(KEY, { kv$, session }));
    kv$.next(held(entry({ modifyIndex: 10n }), 10n));
    kv$.next(held(entry({ modifyIndex: 11n }), 11n));
    answers.get('S1#2')?.next({ type: 'value', value: sessionInfo('S1') });
    const event = await first;
    expect(calls).toEqual(['S1', 'S1']);
    expect(event.kind === 'held' && event.entry.modifyIndex).toBe(11n);
  });

  it('attaches the last settled snapshot to unreachable events', async () => {
    const { session } = sessionsFrom({ S1: sessionInfo('S1') });
    const events = await collect(
      followKey(KEY, {
        kv$: of(kvError(1), held(entry(), 11n), kvError(1), kvError(2), missing(12n), kvError(1)),
        session,
      }),
    );
    expect(events.map((e) => e.kind)).toEqual([
      'unreachable',
      'held',
      'unreachable',
      'unreachable',
      'key-missing',
      'unreachable',
    ]);
    const [u0, h, u1, u2, m, u3] = events;
    if (
      u0?.kind !== 'unreachable' ||
      u1?.kind !== 'unreachable' ||
      u2?.kind !== 'unreachable' ||
      u3?.kind !== 'unreachable'
    ) {
      throw new Error('expected unreachable events');
    }
    expect(u0.lastKnown).toBeNull();
    expect(u0.attempt).toBe(1);
    expect(u0.retryInMs).toBe(250);
    expect(u0.error.code).toBe('CONSUL_UNREACHABLE');
    expect(u1.lastKnown).toBe(h);
    // A second failure in a row still points at the last settled snapshot.
    expect(u2.lastKnown).toBe(h);
    expect(u2.attempt).toBe(2);
    expect(u3.lastKnown).toBe(m);
  });

  it('emits the same settled state again after an unreachable spell', async () => {
    const { session } = sessionsFrom({ S1: sessionInfo('S1') });
    const events = await collect(
      followKey(KEY, { kv$: of(held(entry(), 11n), kvError(1), held(entry(), 11n)), session }),
    );
    expect(events.map((e) => e.kind)).toEqual(['held', 'unreachable', 'held']);
  });

  it('reports session read failures as unreachable, then the joined snapshot', async () => {
    const denied = new ConsulHttpError(500, 'Consul answered HTTP 500');
    const session = (id: string): Observable<RetryingReadEvent<LeaderSession | null>> =>
      of<RetryingReadEvent<LeaderSession | null>[]>(
        { type: 'error', error: denied, attempt: 1, retryInMs: 100 },
        { type: 'value', value: sessionInfo(id) },
      );
    const events = await collect(
      followKey(KEY, { kv$: of(missing(3n), held(entry({ modifyIndex: 4n }), 4n)), session }),
    );
    expect(events.map((e) => e.kind)).toEqual(['key-missing', 'unreachable', 'held']);
    const u = events[1];
    expect(u?.kind === 'unreachable' && u.error).toBe(denied);
    expect(u?.kind === 'unreachable' && u.lastKnown).toEqual({
      kind: 'key-missing',
      key: KEY,
      meta: meta(3n),
    });
  });

  it('does not cache a session read that failed before answering', async () => {
    const calls: string[] = [];
    const session = (id: string): Observable<RetryingReadEvent<LeaderSession | null>> => {
      calls.push(id);
      return calls.length === 1
        ? of({ type: 'error', error: new ConsulHttpError(500, 'x'), attempt: 1, retryInMs: 100 })
        : of({ type: 'value', value: sessionInfo(id) });
    };
    const events = await collect(
      followKey(KEY, {
        kv$: of(held(entry({ modifyIndex: 4n }), 4n), held(entry({ modifyIndex: 5n }), 5n)),
        session,
      }),
    );
    expect(calls).toEqual(['S1', 'S1']);
    expect(events.map((e) => e.kind)).toEqual(['unreachable', 'held']);
  });
});
