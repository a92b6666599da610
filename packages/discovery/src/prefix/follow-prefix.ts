/**
 * Every leader key under a prefix, followed with one recursive blocking query
 * (`GET /v1/kv/<prefix>?recurse`): one connection to Consul for any number of
 * keys, where one query per key would hit `http_max_conns_per_client`.
 */
import { Observable, distinctUntilChanged, of, switchMap } from 'rxjs';
import type { ConsulReadMeta, LeaderSession } from '@consul-leader/types';
import type { LeaderDiscoveryError } from '../errors.js';
import type { KvEntry } from '../wire/kv.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { RetryingReadEvent } from '../watch/retrying-read.js';
import { withLastKnown } from '../watch/last-known.js';
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

type Outage = Omit<PrefixUnreachable, 'lastKnown'>;
type Step = PrefixSnapshot | Outage;

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
  const joiner = new PrefixJoiner(prefix, deps);
  return deps.kv$.pipe(
    switchMap((event) => joiner.join(event)),
    withLastKnown<PrefixSnapshot, Outage>(),
    distinctUntilChanged(samePrefixEvent),
  );
}

const EMPTY_LIST = <V extends { readonly key: string }>(): KeyedList<V> => new KeyedList<V>([], new Map());

/**
 * Joins a prefix's answers with the sessions that hold its keys: the sessions' info is
 * read once per id (one `/v1/session/list` when many are new) and forgotten when no key
 * holds them any more; each answer is built against the last one.
 */
class PrefixJoiner {
  // Session info by id, for the sessions that hold keys in the last answer.
  readonly #sessions = new Map<string, LeaderSession | null>();
  // How many keys of the last built answer each session holds: #sessions keeps those only.
  #holders = new Map<string, number>();
  #entries: KeyedList<KvEntry> = EMPTY_LIST();
  #keys: KeyedList<KeySnapshot> = EMPTY_LIST();

  constructor(
    private readonly prefix: string,
    private readonly deps: FollowPrefixDeps,
  ) {}

  /** An answer as a snapshot, once the sessions it names are known; a failure as an outage step. */
  join(event: BlockingQueryEvent<ReadonlyMap<string, KvEntry>>): Observable<Step> {
    const { prefix } = this;
    if (event.type === 'error') {
      const { error, attempt, retryInMs } = event;
      return of({ kind: 'unreachable', prefix, error, attempt, retryInMs });
    }
    const { value: entries, meta } = event;
    const missing = this.#unknownSessions(entries);
    if (missing.size === 0) return of(this.#build(entries, meta));
    return new Observable<Step>((subscriber) => {
      const pending = new Set(missing);
      const onError = (step: Extract<RetryingReadEvent<unknown>, { type: 'error' }>): void => {
        const { error, attempt, retryInMs } = step;
        subscriber.next({ kind: 'unreachable', prefix, error, attempt, retryInMs });
      };
      const settle = (): void => {
        if (pending.size > 0) return;
        subscriber.next(this.#build(entries, meta));
        subscriber.complete();
      };
      if (missing.size > SESSION_LIST_THRESHOLD) {
        return this.deps.sessions().subscribe((step) => {
          if (step.type === 'error') return onError(step);
          // A session absent from the list is gone.
          for (const id of missing) this.#sessions.set(id, step.value.get(id) ?? null);
          pending.clear();
          settle();
        });
      }
      const subscriptions = [...missing].map((id) =>
        this.deps.session(id).subscribe((step) => {
          if (step.type === 'error') return onError(step);
          this.#sessions.set(id, step.value);
          pending.delete(id);
          settle();
        }),
      );
      return () => {
        for (const s of subscriptions) s.unsubscribe();
      };
    });
  }

  /**
   * Against the last built answer: when its keys are the same, in the same
   * order (the reader's shared index), only the entries that are not the same
   * objects are looked at, so a change to one key of 10,000 costs little more
   * than one key's work.
   */
  #build(answer: ReadonlyMap<string, KvEntry>, meta: ConsulReadMeta): PrefixSnapshot {
    const entries = KeyedList.from(answer);
    const previous = this.#keys;
    const positions =
      meta.knownLeader === previous.list[0]?.meta.knownLeader
        ? changedPositions(this.#entries, entries)
        : null;
    let snapshots: KeySnapshot[];
    if (positions) {
      snapshots = previous.list.slice();
      for (const i of positions) {
        const entry = entries.list[i] as KvEntry;
        this.#countHolder(entry.session, 1);
        snapshots[i] = snapshotOf(entry, this.#sessions, meta, previous.list[i]);
      }
      // Only then let go: a session may have moved from one changed key to another.
      for (const i of positions) this.#countHolder((this.#entries.list[i] as KvEntry).session, -1);
    } else {
      const counted = new Map<string, number>();
      snapshots = entries.list.map((entry) => {
        if (entry.session) counted.set(entry.session, (counted.get(entry.session) ?? 0) + 1);
        return snapshotOf(entry, this.#sessions, meta, previous.get(entry.key));
      });
      for (const id of this.#sessions.keys()) if (!counted.has(id)) this.#sessions.delete(id);
      this.#holders = counted;
    }
    this.#entries = entries;
    this.#keys = new KeyedList(snapshots, entries.index);
    return { kind: 'snapshot', prefix: this.prefix, keys: this.#keys, meta };
  }

  /** Sessions that hold keys in `answer`, never read and not known otherwise (those join #sessions). */
  #unknownSessions(answer: ReadonlyMap<string, KvEntry>): Set<string> {
    const missing = new Set<string>();
    const check = (entry: KvEntry): void => {
      const id = entry.session;
      if (!id || this.#sessions.has(id)) return;
      const known = this.deps.known?.(id);
      if (known) this.#sessions.set(id, known);
      else missing.add(id);
    };
    const positions = changedPositions(this.#entries, answer);
    if (positions) for (const i of positions) check((answer as KeyedList<KvEntry>).list[i] as KvEntry);
    else for (const entry of answer.values()) check(entry);
    return missing;
  }

  /** One more (or one fewer) key held by `session`; a session no key holds is forgotten. */
  #countHolder(session: string | null, by: number): void {
    if (session === null) return;
    const count = (this.#holders.get(session) ?? 0) + by;
    if (count > 0) this.#holders.set(session, count);
    else {
      this.#holders.delete(session);
      this.#sessions.delete(session);
    }
  }
}

/** Same keys with the same snapshots (unchanged keys keep their snapshot object). */
export function samePrefixEvent(a: PrefixEvent, b: PrefixEvent): boolean {
  if (a.kind !== 'snapshot' || b.kind !== 'snapshot') return false;
  if (a.keys.size !== b.keys.size || a.meta.knownLeader !== b.meta.knownLeader) return false;
  const changed = changedPositions(a.keys, b.keys);
  if (changed) return changed.length === 0;
  for (const [key, snapshot] of a.keys) if (b.keys.get(key) !== snapshot) return false;
  return true;
}
