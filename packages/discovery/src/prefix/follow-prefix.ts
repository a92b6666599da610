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
import { KeyedList, changedPositions } from './keyed-list.js';
import { type KeySnapshot, heldBy, sameKeyEvent } from '../key/key-snapshot.js';
import { SESSION_LIST_THRESHOLD } from '../config/defaults.js';

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
  /** A session's info already known without a read (session-directory.ts), if any. */
  readonly known?: (id: string) => LeaderSession | undefined;
}

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
  // How many keys of the last built answer each session holds: the cache keeps those only.
  let holders = new Map<string, number>();
  let previousEntries: KeyedList<KvEntry> = new KeyedList([], new Map());
  let previousKeys: KeyedList<KeySnapshot> = new KeyedList([], new Map());

  const hold = (session: string | null, by: number): void => {
    if (session === null) return;
    const count = (holders.get(session) ?? 0) + by;
    if (count > 0) holders.set(session, count);
    else {
      holders.delete(session);
      cache.delete(session);
    }
  };

  /**
   * Against the last built answer: when its keys are the same, in the same
   * order (the reader's shared index), only the entries that are not the same
   * objects are looked at, so a change to one key of 10,000 costs little more
   * than one key's work.
   */
  const build = (answer: ReadonlyMap<string, KvEntry>, meta: ConsulReadMeta): Step => {
    const entries = KeyedList.from(answer);
    const positions =
      meta.knownLeader === previousKeys.list[0]?.meta.knownLeader
        ? changedPositions(previousEntries, entries)
        : null;
    let snapshots: KeySnapshot[];
    if (positions) {
      snapshots = previousKeys.list.slice();
      for (const i of positions) {
        const entry = entries.list[i] as KvEntry;
        hold(entry.session, 1);
        snapshots[i] = snapshotOf(entry, cache, meta, previousKeys.list[i]);
      }
      // Only then let go: a session may have moved from one changed key to another.
      for (const i of positions) hold((previousEntries.list[i] as KvEntry).session, -1);
    } else {
      const counted = new Map<string, number>();
      snapshots = entries.list.map((entry) => {
        if (entry.session) counted.set(entry.session, (counted.get(entry.session) ?? 0) + 1);
        return snapshotOf(entry, cache, meta, previousKeys.get(entry.key));
      });
      for (const id of cache.keys()) if (!counted.has(id)) cache.delete(id);
      holders = counted;
    }
    previousEntries = entries;
    previousKeys = new KeyedList(snapshots, entries.index);
    return { kind: 'snapshot', keys: previousKeys, meta };
  };

  /** Sessions that hold keys in `entries`, never read and not known otherwise (those join the cache). */
  const unknownSessions = (answer: ReadonlyMap<string, KvEntry>): Set<string> => {
    const missing = new Set<string>();
    const check = (entry: KvEntry): void => {
      const id = entry.session;
      if (!id || cache.has(id)) return;
      const known = deps.known?.(id);
      if (known) cache.set(id, known);
      else missing.add(id);
    };
    const positions = answer instanceof KeyedList ? changedPositions(previousEntries, answer) : null;
    if (positions && answer instanceof KeyedList) for (const i of positions) check(answer.list[i] as KvEntry);
    else for (const entry of answer.values()) check(entry);
    return missing;
  };

  const join = (event: BlockingQueryEvent<ReadonlyMap<string, KvEntry>>): Observable<Step> => {
    if (event.type === 'error') {
      const { error, attempt, retryInMs } = event;
      return of({ kind: 'unreachable', error, attempt, retryInMs });
    }
    const { value: entries, meta } = event;
    const missing = unknownSessions(entries);
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
  if (a.keys instanceof KeyedList && b.keys instanceof KeyedList) {
    const changed = changedPositions(a.keys, b.keys);
    if (changed) return changed.length === 0;
  }
  for (const [key, snapshot] of a.keys) if (b.keys.get(key) !== snapshot) return false;
  return true;
}
