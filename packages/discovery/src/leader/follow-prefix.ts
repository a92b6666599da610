/**
 * Every leader key under a prefix, followed with one recursive blocking query
 * (`GET /v1/kv/<prefix>?recurse`): one connection to Consul for any number of
 * keys, where one query per key would hit `http_max_conns_per_client`.
 */
import { Observable, distinctUntilChanged, map, of, scan, switchMap } from 'rxjs';
import type { ConsulReadMeta, LeaderSession } from '@consul-leader/types';
import type { LeaderDiscoveryError } from '../errors.js';
import type { KvEntry } from '../wire/kv.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { RetryingReadEvent } from '../watch/retrying-read.js';
import { type KeySnapshot, heldBy, sameKeyEvent } from './key-snapshot.js';

/** What Consul says about every key under a prefix, joined with the sessions holding them. */
export interface PrefixSnapshot {
  readonly kind: 'snapshot';
  readonly prefix: string;
  /** By full key, in Consul's (lexical) order. */
  readonly keys: ReadonlyMap<string, KeySnapshot>;
  readonly meta: ConsulReadMeta;
}

export interface PrefixUnreachable {
  readonly kind: 'unreachable';
  readonly prefix: string;
  readonly error: LeaderDiscoveryError;
  readonly attempt: number;
  readonly retryInMs: number;
  readonly lastKnown: PrefixSnapshot | null;
}

export type PrefixEvent = PrefixSnapshot | PrefixUnreachable;

export interface FollowPrefixDeps {
  /** The prefix's blocking query; unchanged keys keep their entry objects from one answer to the next. */
  readonly kv$: Observable<BlockingQueryEvent<ReadonlyMap<string, KvEntry>>>;
  /** One session's info, retried until it answers (null: gone). */
  readonly session: (id: string) => Observable<RetryingReadEvent<LeaderSession | null>>;
  /** Every session at once, retried until it answers: used when many sessions are new. */
  readonly sessions: () => Observable<RetryingReadEvent<ReadonlyMap<string, LeaderSession>>>;
}

/** Above this many unknown sessions in one answer, one `/v1/session/list` beats one request each. */
const SESSION_LIST_THRESHOLD = 4;

type Step = Omit<PrefixSnapshot, 'prefix'> | Omit<PrefixUnreachable, 'prefix' | 'lastKnown'>;

/** Unchanged keys keep their snapshot object, so per-call decoding is memoized across answers. */
function snapshotOf(
  entry: KvEntry,
  sessions: ReadonlyMap<string, LeaderSession | null>,
  meta: ConsulReadMeta,
  previous: KeySnapshot | undefined,
): KeySnapshot {
  // The hot path for a big prefix: the same entry object, session and leader knowledge.
  if (
    previous &&
    previous.kind !== 'key-missing' &&
    previous.entry === entry &&
    previous.meta.knownLeader === meta.knownLeader &&
    (entry.session === null ||
      (previous.kind === 'held' ? previous.session : null) === (sessions.get(entry.session) ?? null))
  ) {
    return previous;
  }
  const next: KeySnapshot =
    entry.session === null
      ? { kind: 'no-session', key: entry.key, entry, meta }
      : heldBy(entry, sessions.get(entry.session) ?? null, meta);
  return previous && sameKeyEvent(previous, next) ? previous : next;
}

export function followPrefix(prefix: string, deps: FollowPrefixDeps): Observable<PrefixEvent> {
  // Session info by id, for the sessions that hold keys in the last answer.
  const cache = new Map<string, LeaderSession | null>();
  let previousKeys: ReadonlyMap<string, KeySnapshot> = new Map();

  const build = (entries: ReadonlyMap<string, KvEntry>, meta: ConsulReadMeta): Step => {
    const keys = new Map<string, KeySnapshot>();
    const held = new Set<string>();
    for (const entry of entries.values()) {
      keys.set(entry.key, snapshotOf(entry, cache, meta, previousKeys.get(entry.key)));
      if (entry.session) held.add(entry.session);
    }
    for (const id of cache.keys()) if (!held.has(id)) cache.delete(id);
    previousKeys = keys;
    return { kind: 'snapshot', keys, meta };
  };

  const join = (event: BlockingQueryEvent<ReadonlyMap<string, KvEntry>>): Observable<Step> => {
    if (event.type === 'error') {
      const { error, attempt, retryInMs } = event;
      return of({ kind: 'unreachable', error, attempt, retryInMs });
    }
    const { value: entries, meta } = event;
    const missing = new Set<string>();
    for (const entry of entries.values()) {
      if (entry.session && !cache.has(entry.session)) missing.add(entry.session);
    }
    if (missing.size === 0) return of(build(entries, meta));
    return new Observable<Step>((subscriber) => {
      const pending = new Set(missing);
      const onError = (step: Extract<RetryingReadEvent<unknown>, { type: 'error' }>): void => {
        const { error, attempt, retryInMs } = step;
        subscriber.next({ kind: 'unreachable', error, attempt, retryInMs });
      };
      const settle = (): void => {
        if (pending.size > 0) return;
        subscriber.next(build(entries, meta));
        subscriber.complete();
      };
      if (missing.size > SESSION_LIST_THRESHOLD) {
        return deps.sessions().subscribe((step) => {
          if (step.type === 'error') return onError(step);
          // A session absent from the list is gone.
          for (const id of missing) cache.set(id, step.value.get(id) ?? null);
          pending.clear();
          settle();
        });
      }
      const subscriptions = [...missing].map((id) =>
        deps.session(id).subscribe((step) => {
          if (step.type === 'error') return onError(step);
          cache.set(id, step.value);
          pending.delete(id);
          settle();
        }),
      );
      return () => {
        for (const s of subscriptions) s.unsubscribe();
      };
    });
  };

  return deps.kv$.pipe(
    switchMap(join),
    scan<Step, PrefixEvent | undefined>((previous, step) => {
      if (step.kind === 'snapshot') return { ...step, prefix };
      const lastKnown =
        previous === undefined ? null : previous.kind === 'unreachable' ? previous.lastKnown : previous;
      return { ...step, prefix, lastKnown };
    }, undefined),
    map((event) => event as PrefixEvent),
    distinctUntilChanged(samePrefixEvent),
  );
}

/** Same keys with the same snapshots (unchanged keys keep their snapshot object). */
export function samePrefixEvent(a: PrefixEvent, b: PrefixEvent): boolean {
  if (a.kind !== 'snapshot' || b.kind !== 'snapshot') return false;
  if (a.keys.size !== b.keys.size || a.meta.knownLeader !== b.meta.knownLeader) return false;
  for (const [key, snapshot] of a.keys) if (b.keys.get(key) !== snapshot) return false;
  return true;
}
