/**
 * `createLeaderDiscovery`: the public entry point. It owns the Consul client,
 * one shared stream per followed key, and their teardown.
 */
import {
  EMPTY,
  Observable,
  Subscription,
  defer,
  distinctUntilChanged,
  finalize,
  map,
  of,
  shareReplay,
} from 'rxjs';
import { z } from 'zod';
import type {
  ConsulReadMeta,
  Leader,
  LeaderSession,
  LeaderState as StateWithError,
  SettledLeaderState as SettledWithError,
} from '@consul-leader/types';
import { setUpClients } from './config/client.js';
import {
  type LeaderDiscoveryOptions,
  type LeaderOptions,
  type ResolvedDiscoveryOptions,
  type SplitPrefixesOption,
  parseCallOptions,
  parseDiscoveryOptions,
  resolveDiscoveryDefaults,
} from './config/options.js';
import { DiscoveryClosedError, type LeaderDiscoveryError, asLeaderError } from './errors.js';
import { followKey } from './key/follow-key.js';
import type { KeyEvent, KeySnapshot } from './key/key-snapshot.js';
import { leaderOf, leadersOf } from './state/leader-of.js';
import { type PrefixEvent, followPrefix } from './prefix/follow-prefix.js';
import { type LeaderHandle, followHandle } from './state/follow-handle.js';
import type { CoalesceOptions } from './key/coalesce.js';
import { DEFAULT_COALESCE, KeyGroups, PrefixRouter } from './key/coalesce.js';
import { sameKeyEvent } from './key/key-snapshot.js';
import { type Descriptor, sameState, stateMapper, toSettledState } from './state/to-state.js';
import { parseDurationMs } from './wire/duration.js';
import { KeyedList, PositionalMap, changedPositions } from './prefix/keyed-list.js';
import {
  type ReadScope,
  readKeyOnce,
  readSessionListOnce,
  readSessionOnce,
  sendKvKeysRead,
  sendKvRead,
  sendSessionListRead,
} from './wire/requests.js';
import { SessionDirectory } from './sessions/session-directory.js';
import { KEY_LIST_WAKEUPS, type SplitPrefixOptions, splitPrefixQuery } from './prefix/split-prefix.js';
import { type BlockingQueryEvent, type BlockingQueryOptions, blockingQuery } from './watch/blocking-query.js';
import { PendingReads } from './watch/pending-reads.js';
import { type RetryingReadEvent, retryingRead } from './watch/retrying-read.js';
import { ConsulTransport } from './wire/transport.js';
import { type KvEntry, readKvKeys, readKvResponse } from './wire/kv.js';
import { KvListReader } from './wire/kv-list.js';
import { readSessionListResponse } from './wire/session.js';

/**
 * The full state of one leader key, discriminated on `status`:
 * `leader` | `vacant` | `invalid` | `unreachable`. Errors are the SDK's classes.
 */
export type LeaderState<T> = StateWithError<T, LeaderDiscoveryError>;

/** A state read from Consul (anything but `unreachable`). */
export type SettledLeaderState<T> = SettledWithError<T, LeaderDiscoveryError>;

/** Why a prefix cannot be read right now; the SDK retries after `retryInMs`. */
export interface PrefixOutage {
  readonly error: LeaderDiscoveryError;
  /** Failed reads in a row (1 for the first). */
  readonly attempt: number;
  readonly retryInMs: number;
}

/** Every leader key under a prefix, and whether Consul could be read. */
export interface PrefixState<T> {
  readonly prefix: string;
  /**
   * By full key: the keys under the prefix in Consul's last answer (a deleted
   * key is absent). While `unreachable`, each is `unreachable` with its `lastKnown`.
   */
  readonly states: ReadonlyMap<string, LeaderState<T>>;
  /** null while Consul answers. */
  readonly unreachable: PrefixOutage | null;
  /** The read meta of Consul's last answer for the prefix (null before any). */
  readonly consul: ConsulReadMeta | null;
}

export interface LeaderDiscovery {
  /**
   * The leader of `key`, live: a `Leader` when a session holds the key with a
   * valid descriptor, else `null`. Never emits the same leader twice in a row;
   * late subscribers get the current value at once. It never errors or
   * completes because of Consul: while Consul cannot be read it keeps the last
   * value and retries (`watch()` shows why), unless `nullWhenUnreachableFor` says otherwise.
   */
  leader<T = unknown>(key: string, options?: LeaderOptions<T>): Observable<Leader<T> | null>;
  /**
   * A handle on the leader of `key` for hot paths: `current` is read
   * synchronously, `ready()` resolves with the first answer, `changes` is
   * `leader()`. Close it when done.
   */
  follow<T = unknown>(key: string, options?: LeaderOptions<T>): LeaderHandle<T>;
  /** The full state of `key`, live: `leader`, `vacant`, `invalid` or `unreachable`. */
  watch<T = unknown>(key: string, options?: LeaderOptions<T>): Observable<LeaderState<T>>;
  /**
   * The leaders of every key under `prefix`, live, by full key; keys with no
   * leader or an invalid value are absent. One recursive blocking query serves
   * any number of keys (one connection to Consul). Held through outages like
   * `leader()`.
   */
  leaders<T = unknown>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): Observable<ReadonlyMap<string, Leader<T>>>;
  /**
   * The state of every key under `prefix`, live, by full key (for dashboards):
   * while Consul cannot be read, every known key is `unreachable` with its `lastKnown`.
   */
  watchLeaders<T = unknown>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): Observable<ReadonlyMap<string, LeaderState<T>>>;
  /**
   * The full picture of a prefix, live: every key's state, whether Consul
   * answers (`unreachable`, also when no key is known yet: an empty prefix and
   * an outage are told apart), and the last answer's `consul` read meta.
   */
  watchPrefix<T = unknown>(prefix: string, options?: LeaderOptions<T>): Observable<PrefixState<T>>;
  /** One non-blocking read of `key` and its session. Rejects with a typed error when Consul cannot be read. */
  current<T = unknown>(key: string, options?: LeaderOptions<T>): Promise<Leader<T> | null>;
  /** Stops every stream (they complete), aborts requests in flight, and closes the SDK's sockets. */
  close(): void;
}

const anyJson: z.ZodType<unknown> = z.unknown();

type ListEvent = BlockingQueryEvent<ReadonlyMap<string, KvEntry>>;

interface SplitOption {
  readonly minKeys: number;
  readonly maxQueries: number;
}
const DEFAULT_SPLIT: SplitOption = Object.freeze({ minKeys: 512, maxQueries: 64 });
/** Over HTTP/1.1 each query is a connection: fewer by default. */
const DEFAULT_HTTP1_MAX_QUERIES = 16;

/** Whether and how big prefixes are split: over HTTP/2 by default, over HTTP/1.1 when asked. */
function resolveSplit(
  option: LeaderDiscoveryOptions['splitPrefixes'],
  multiplexed: boolean,
): SplitOption | undefined {
  if (option === false) return undefined;
  if (multiplexed) return { ...DEFAULT_SPLIT, ...pick(option) };
  if (option?.http1 !== true) return undefined;
  return { minKeys: DEFAULT_SPLIT.minKeys, maxQueries: DEFAULT_HTTP1_MAX_QUERIES, ...pick(option) };
}

function pick(option: SplitPrefixesOption | undefined): Partial<SplitOption> {
  return {
    ...(option?.minKeys === undefined ? {} : { minKeys: option.minKeys }),
    ...(option?.maxQueries === undefined ? {} : { maxQueries: option.maxQueries }),
  };
}
/** A sub-prefix of this many keys or fewer is not split further: its answer is already small. */
const MIN_LEAF_KEYS = 16;

function resolveCoalesce(option: LeaderDiscoveryOptions['coalesce']): CoalesceOptions | undefined {
  if (option === false) return undefined;
  return { ...DEFAULT_COALESCE, ...option };
}

export function createLeaderDiscovery(options?: LeaderDiscoveryOptions): LeaderDiscovery {
  const opts = parseDiscoveryOptions(options);
  const defaults: ResolvedDiscoveryOptions = resolveDiscoveryDefaults(opts);
  const setup = setUpClients(opts);
  const transport = new ConsulTransport(setup.clients, undefined, { http2: opts.http2 === true });
  // current()'s reads in flight, each with its own signal: one signal shared by every call
  // would collect a listener per parallel call (Node warns past 10).
  const reads = new Set<AbortController>();
  const streams = new Map<string, Observable<unknown>>();
  const coalesce = resolveCoalesce(opts.coalesce);
  const groups = coalesce ? new KeyGroups(coalesce.minKeys) : undefined;
  // A big prefix as many small recursive queries (split-prefix.ts): on one connection with http2.
  const split = resolveSplit(opts.splitPrefixes, transport.multiplexed);
  let closed = false;

  const scopeOf = (key: string, call: LeaderOptions<unknown>): ReadScope => {
    const dc = call.dc ?? defaults.dc ?? setup.dc;
    const token = call.token ?? defaults.token ?? setup.token;
    return {
      key,
      consistency: call.consistency ?? defaults.consistency,
      waitMs: call.wait === undefined ? defaults.waitMs : parseDurationMs(call.wait),
      requestTimeoutMs: defaults.requestTimeoutMs,
      ...(dc === undefined ? {} : { dc }),
      ...(token === undefined ? {} : { token }),
    };
  };

  // What close() completes. A Set, not a Subject every stream subscribes to (takeUntil):
  // leaving a Subject of n observers costs O(n), so unsubscribing n keys cost O(n²).
  const open = new Set<() => void>();
  const untilClosed = <E>(source: Observable<E>): Observable<E> =>
    new Observable<E>((subscriber) => {
      const end = (): void => subscriber.complete();
      open.add(end);
      const subscription = source.subscribe(subscriber);
      return () => {
        open.delete(end);
        subscription.unsubscribe();
      };
    });

  /** One stream per id, shared by every subscriber, ended by close(), forgotten when unused. */
  const shared = <E>(id: string, make: () => Observable<E>): Observable<E> => {
    let stream = streams.get(id) as Observable<E> | undefined;
    if (!stream) {
      stream = untilClosed(make()).pipe(
        finalize(() => streams.delete(id)),
        shareReplay({ bufferSize: 1, refCount: true }),
      );
      streams.set(id, stream);
    }
    return stream;
  };

  const scopeId = (kind: string, scope: ReadScope): string =>
    JSON.stringify([kind, scope.key, scope.consistency, scope.waitMs, scope.dc ?? '', scope.token ?? '']);

  // With watchSessions: one session list followed per datacenter, token and consistency,
  // for as long as a key or prefix of that scope is followed (a directory is kept, idle, after).
  const directories = new Map<string, SessionDirectory>();
  const directoryOf = (scope: ReadScope): SessionDirectory | undefined => {
    if (!opts.watchSessions) return undefined;
    const listScope: ReadScope = { ...scope, key: '', waitMs: defaults.waitMs };
    const id = scopeId('sessions', listScope);
    let directory = directories.get(id);
    if (!directory) {
      const list$ = blockingQuery({
        send: (index, signal) => sendSessionListRead(transport, listScope, index, signal),
        read: readSessionListResponse,
        retry: defaults.retry,
        idleWakeups: defaults.idleWakeups,
      });
      directory = new SessionDirectory(untilClosed(list$));
      directories.set(id, directory);
    }
    return directory;
  };
  // A session's info: from the directory when it names the session, else one tracked read.
  const sessionOf =
    (scope: ReadScope, joins: PendingReads, directory: SessionDirectory | undefined) =>
    (sessionId: string): Observable<RetryingReadEvent<LeaderSession | null>> => {
      const known = directory?.get(sessionId);
      if (known) return of({ type: 'value', value: known });
      return retryingRead(
        (signal) => joins.track(readSessionOnce(transport, scope, sessionId, signal)),
        defaults.retry,
      );
    };

  const singleKey = (scope: ReadScope): Observable<KeyEvent> => {
    const joins = new PendingReads();
    const directory = directoryOf(scope);
    const events = followKey(scope.key, {
      kv$: blockingQuery({
        send: (index, signal) => sendKvRead(transport, scope, index, signal),
        read: (res) => readKvResponse(res, scope.key),
        retry: defaults.retry,
        idleWakeups: defaults.idleWakeups,
        beforeNextRead: () => joins.settled(),
      }),
      session: sessionOf(scope, joins, directory),
    });
    return directory?.whileFollowing(events) ?? events;
  };

  // One blocking query per key and read scope, or, once enough keys of one
  // prefix are followed, one recursive query for all of them. `id` is
  // scopeId('key', scope), which the caller has made for its own id already.
  const keyStream = (scope: ReadScope, id: string): Observable<KeyEvent> =>
    shared(id, () => {
      const prefix = coalesce ? coalesce.prefixOf(scope.key) : null;
      if (!groups || prefix === null || !scope.key.startsWith(prefix)) return singleKey(scope);
      const prefixScope: ReadScope = { ...scope, key: prefix };
      const group = scopeId('prefix', prefixScope);
      const coalesced = (): Observable<KeyEvent> => routerOf(prefixScope, group).key(scope.key);
      // switchMap over the group's state, then distinctUntilChanged(sameKeyEvent), by hand:
      // those layers were about a fifth of a key's memory, and leaving the group's Subject O(n).
      return new Observable<KeyEvent>((subscriber) => {
        let last: KeyEvent | undefined;
        let source: Subscription | undefined;
        const follow = (events: Observable<KeyEvent>): void => {
          source?.unsubscribe();
          // Set before subscribing: a switch or an unsubscribe while it subscribes ends it.
          const current = new Subscription();
          source = current;
          current.add(
            events.subscribe({
              next: (event) => {
                if (current.closed || (last !== undefined && sameKeyEvent(last, event))) return;
                last = event;
                subscriber.next(event);
              },
              error: (error: unknown) => {
                if (!current.closed) subscriber.error(error);
              },
              // Like switchMap's inner: a source that completes leaves the key open (close() ends it).
            }),
          );
        };
        const membership = groups.join(group, () => follow(coalesced()));
        follow(membership.coalesced ? coalesced() : singleKey(scope));
        return () => {
          source?.unsubscribe();
          membership.leave();
        };
      });
    });

  // Coalesced keys of one prefix and read scope are told of their changes by one router
  // (`id`: scopeId('prefix', scope)).
  const routers = new Map<string, PrefixRouter>();
  const routerOf = (scope: ReadScope, id: string): PrefixRouter => {
    let router = routers.get(id);
    if (!router) {
      router = new PrefixRouter(prefixStream(scope), () => routers.delete(id));
      routers.set(id, router);
    }
    return router;
  };

  /** The recursive blocking query of `scope.key` (a prefix, or a sub-prefix of a split one). */
  const recursiveQuery = (
    scope: ReadScope,
    reader: KvListReader,
    more: Pick<BlockingQueryOptions<unknown>, 'beforeNextRead' | 'startIndex'> = {},
  ): Observable<ListEvent> =>
    blockingQuery({
      send: (index, signal) => sendKvRead(transport, scope, index, signal, true),
      read: (res) => reader.read(res),
      retry: defaults.retry,
      idleWakeups: defaults.idleWakeups,
      ...more,
    });

  // One recursive blocking query per prefix and read scope.
  const prefixStream = (scope: ReadScope): Observable<PrefixEvent> =>
    shared(scopeId('prefix', scope), () => {
      // Reads each answer against the last one: keys not written since keep their objects.
      const reader = new KvListReader(scope.key);
      const joins = new PendingReads();
      const directory = directoryOf(scope);
      const whole = (): Observable<ListEvent> =>
        recursiveQuery(scope, reader, { beforeNextRead: () => joins.settled() });
      const events = followPrefix(scope.key, {
        kv$: split ? splitPrefixQuery(splitOptionsOf(split, scope, whole, () => joins.settled())) : whole(),
        session: sessionOf(scope, joins, directory),
        sessions: () =>
          retryingRead(
            (signal) => joins.track(readSessionListOnce(transport, scope, signal)),
            defaults.retry,
          ),
        ...(directory ? { known: (id: string) => directory.get(id) } : {}),
      });
      return directory?.whileFollowing(events) ?? events;
    });

  const splitOptionsOf = (
    { minKeys, maxQueries }: SplitOption,
    scope: ReadScope,
    whole: () => Observable<ListEvent>,
    beforeNextEmit: () => Promise<void> | undefined,
  ): SplitPrefixOptions => ({
    prefix: scope.key,
    whole,
    leaf: (prefix, seed, startIndex) =>
      recursiveQuery({ ...scope, key: prefix }, new KvListReader(prefix, seed), { startIndex }),
    keys: (startIndex) =>
      blockingQuery({
        send: (index, signal) => sendKvKeysRead(transport, scope, index, signal),
        read: readKvKeys,
        retry: defaults.retry,
        idleWakeups: KEY_LIST_WAKEUPS,
        startIndex,
      }),
    minKeys,
    limits: { maxLeaves: maxQueries, minLeafKeys: MIN_LEAF_KEYS },
    beforeNextEmit,
  });

  const descriptorOf = <T>(call: LeaderOptions<T>): Descriptor<T> => ({
    schema: call.schema ?? (anyJson as z.ZodType<T>),
    decode: call.decode ?? 'json',
  });

  // One mapper per schema and decoding, whatever the key or method: it remembers the
  // state made for each snapshot, so leader(), watch() and the prefix calls decode a
  // snapshot once between them.
  const mappers = new WeakMap<object, Map<unknown, (event: KeyEvent) => LeaderState<unknown>>>();
  const mapperOf = <T>(call: LeaderOptions<T>): ((event: KeyEvent) => LeaderState<T>) => {
    const descriptor = descriptorOf(call);
    let byDecode = mappers.get(descriptor.schema);
    if (!byDecode) {
      byDecode = new Map();
      mappers.set(descriptor.schema, byDecode);
    }
    let mapper = byDecode.get(descriptor.decode);
    if (!mapper) {
      mapper = stateMapper(descriptor) as (event: KeyEvent) => LeaderState<unknown>;
      byDecode.set(descriptor.decode, mapper);
    }
    return mapper as (event: KeyEvent) => LeaderState<T>;
  };

  // Calls with the same key (or prefix), read scope, schema and decoding share one pipeline:
  // a descriptor is decoded once per change, whatever the number of calls.
  const identities = new WeakMap<object, number>();
  let lastIdentity = 0;
  const identityOf = (value: object): number => {
    let id = identities.get(value);
    if (id === undefined) {
      id = lastIdentity += 1;
      identities.set(value, id);
    }
    return id;
  };
  // After the JSON array, the id of the stream the pipeline reads (unambiguous: an array ends where it ends).
  const pipelineId = (
    kind: string,
    streamId: string,
    call: LeaderOptions<unknown>,
    extra?: unknown,
  ): string =>
    JSON.stringify([
      kind,
      call.schema ? identityOf(call.schema) : 0,
      typeof call.decode === 'function' ? identityOf(call.decode) : (call.decode ?? 'json'),
      extra ?? null,
    ]) + streamId;

  const watch = <T>(key: string, options?: LeaderOptions<T>): Observable<LeaderState<T>> => {
    const call = parseCallOptions<T>('key', key, options);
    if (closed) return EMPTY;
    const scope = scopeOf(key, call);
    const id = scopeId('key', scope);
    return shared(pipelineId('watch', id, call), () =>
      keyStream(scope, id).pipe(map(mapperOf(call)), distinctUntilChanged(sameState)),
    );
  };

  const nullAfterMs = (call: LeaderOptions<unknown> | undefined): number | undefined => {
    const after = call?.nullWhenUnreachableFor ?? opts.nullWhenUnreachableFor;
    return after === undefined ? undefined : parseDurationMs(after);
  };

  const leader = <T>(key: string, options?: LeaderOptions<T>): Observable<Leader<T> | null> => {
    const call = parseCallOptions<T>('key', key, options);
    if (closed) return EMPTY;
    const after = nullAfterMs(call);
    const scope = scopeOf(key, call);
    // Straight from the key's events (not through a watch() pipeline: fewer layers per change).
    const id = scopeId('key', scope);
    return shared(pipelineId('leader', id, call, after), () =>
      keyStream(scope, id).pipe(map(mapperOf(call)), leaderOf(after)),
    );
  };

  const prefixStates = <T>(prefix: string, call: LeaderOptions<T>): Observable<PrefixState<T>> => {
    const toState = mapperOf(call);
    return defer(() => {
      // The last snapshot's keys and their states by position: a change makes a view over
      // them in one array copy (PositionalMap), not a Map of every key.
      let keys: KeyedList<KeySnapshot> | undefined;
      let states: LeaderState<T>[] = [];
      return prefixStream(scopeOf(prefix, call)).pipe(
        map((event): PrefixState<T> => {
          if (event.kind === 'snapshot') {
            const next = event.keys;
            if (next instanceof KeyedList) {
              const positions = keys ? changedPositions(keys, next) : null;
              if (positions) {
                states = states.slice();
                for (const i of positions) states[i] = toState(next.list[i] as KeySnapshot);
              } else {
                states = next.list.map(toState);
              }
              keys = next;
              const view = new PositionalMap<LeaderState<T>>(next, states, states.length);
              return { prefix, states: view, unreachable: null, consul: event.meta };
            }
            keys = undefined;
            const byKey = new Map<string, LeaderState<T>>();
            for (const [key, snapshot] of next) byKey.set(key, toState(snapshot));
            return { prefix, states: byKey, unreachable: null, consul: event.meta };
          }
          keys = undefined;
          const { error, attempt, retryInMs } = event;
          const unreachable = new Map<string, LeaderState<T>>();
          for (const [key, lastKnown] of event.lastKnown?.keys ?? []) {
            unreachable.set(key, toState({ kind: 'unreachable', key, error, attempt, retryInMs, lastKnown }));
          }
          return {
            prefix,
            states: unreachable,
            unreachable: { error, attempt, retryInMs },
            consul: event.lastKnown?.meta ?? null,
          };
        }),
      );
    });
  };

  const watchPrefix = <T>(prefix: string, options?: LeaderOptions<T>): Observable<PrefixState<T>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (closed) return EMPTY;
    return shared(pipelineId('watchPrefix', scopeId('prefix', scopeOf(prefix, call)), call), () =>
      prefixStates(prefix, call),
    );
  };

  const watchLeaders = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): Observable<ReadonlyMap<string, LeaderState<T>>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (closed) return EMPTY;
    return shared(pipelineId('watchLeaders', scopeId('prefix', scopeOf(prefix, call)), call), () =>
      watchPrefix(prefix, call).pipe(map(({ states }) => states)),
    );
  };

  const leaders = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): Observable<ReadonlyMap<string, Leader<T>>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (closed) return EMPTY;
    const after = nullAfterMs(call);
    const scope = scopeOf(prefix, call);
    return shared(pipelineId('leaders', scopeId('prefix', scope), call, after), () =>
      prefixStream(scope).pipe(leadersOf(mapperOf(call), after)),
    );
  };

  const current = async <T>(key: string, options?: LeaderOptions<T>): Promise<Leader<T> | null> => {
    const call = parseCallOptions<T>('key', key, options);
    if (closed) throw new DiscoveryClosedError();
    const scope = scopeOf(key, call);
    const read = new AbortController();
    reads.add(read);
    let snapshot: KeySnapshot;
    try {
      snapshot = await readKeyOnce(transport, scope, read.signal);
    } catch (error) {
      throw asLeaderError(error);
    } finally {
      reads.delete(read);
    }
    const state = toSettledState(snapshot, descriptorOf(call));
    return state.status === 'leader' ? state.leader : null;
  };

  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const read of reads) read.abort();
    for (const end of [...open]) end();
    transport.close();
    for (const client of setup.owned) client.destroy();
  };

  const follow = <T>(key: string, options?: LeaderOptions<T>): LeaderHandle<T> =>
    followHandle(leader(key, options));

  return { leader, follow, watch, current, leaders, watchLeaders, watchPrefix, close };
}
