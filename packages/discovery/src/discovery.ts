/**
 * `createLeaderDiscovery`: the public entry point. Each method is a few lines over the
 * stages of the data path: read scopes (config/), shared streams (streams/), decoding
 * (state/). ARCHITECTURE.md draws the path.
 */
import { EMPTY, type Observable, distinctUntilChanged, map } from 'rxjs';
import type { Leader } from '@consul-leader/types';
import { setUpClients } from './config/client.js';
import {
  type LeaderDiscoveryOptions,
  type LeaderOptions,
  parseCallOptions,
  parseDiscoveryOptions,
  resolveDiscoveryDefaults,
} from './config/options.js';
import { resolveCoalesce, resolveScope, resolveSplit } from './config/resolve.js';
import { DiscoveryClosedError, asLeaderError } from './errors.js';
import { readKeyOnce } from './key/read-once.js';
import { Sessions } from './sessions/sessions.js';
import { Decoders } from './state/decoders.js';
import { type LeaderHandle, followHandle } from './state/follow-handle.js';
import { leaderOf, leadersOf } from './state/leader-of.js';
import { toPrefixStates } from './state/prefix-states.js';
import type { LeaderState, PrefixState } from './state/states.js';
import { sameState, toSettledState } from './state/to-state.js';
import { KeyStreams } from './streams/key-streams.js';
import { PrefixStreams } from './streams/prefix-streams.js';
import { Queries } from './streams/queries.js';
import { StreamRegistry } from './streams/registry.js';
import { parseDurationMs } from './wire/duration.js';
import { scopeId } from './wire/requests.js';
import { ConsulTransport } from './wire/transport.js';

export type { LeaderState, SettledLeaderState, PrefixOutage, PrefixState } from './state/states.js';

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

export function createLeaderDiscovery(options?: LeaderDiscoveryOptions): LeaderDiscovery {
  const opts = parseDiscoveryOptions(options);
  const defaults = resolveDiscoveryDefaults(opts);
  const setup = setUpClients(opts);
  const transport = new ConsulTransport(setup.clients, undefined, { http2: opts.http2 === true });
  const registry = new StreamRegistry();
  const queries = new Queries(transport, defaults);
  const sessions = new Sessions(queries, registry, {
    enabled: opts.watchSessions === true,
    waitMs: defaults.waitMs,
  });
  const prefixes = new PrefixStreams(
    registry,
    queries,
    sessions,
    resolveSplit(opts.splitPrefixes, transport.multiplexed),
  );
  const keys = new KeyStreams(registry, queries, sessions, prefixes, resolveCoalesce(opts.coalesce));
  const decoders = new Decoders();
  // current()'s reads in flight, each with its own signal: one signal shared by every call
  // would collect a listener per parallel call (Node warns past 10).
  const reads = new Set<AbortController>();

  const scopeOf = (key: string, call: LeaderOptions<unknown>) => resolveScope(key, call, defaults, setup);
  const nullAfterMs = (call: LeaderOptions<unknown>): number | undefined => {
    const after = call.nullWhenUnreachableFor ?? opts.nullWhenUnreachableFor;
    return after === undefined ? undefined : parseDurationMs(after);
  };

  const watch = <T>(key: string, options?: LeaderOptions<T>): Observable<LeaderState<T>> => {
    const call = parseCallOptions<T>('key', key, options);
    if (registry.closed) return EMPTY;
    const scope = scopeOf(key, call);
    return registry.shared(decoders.pipelineId('watch', scopeId('key', scope), call), () =>
      keys.events(scope).pipe(map(decoders.mapperOf(call)), distinctUntilChanged(sameState)),
    );
  };

  const leader = <T>(key: string, options?: LeaderOptions<T>): Observable<Leader<T> | null> => {
    const call = parseCallOptions<T>('key', key, options);
    if (registry.closed) return EMPTY;
    const after = nullAfterMs(call);
    const scope = scopeOf(key, call);
    // Straight from the key's events (not through a watch() pipeline: fewer layers per change).
    return registry.shared(decoders.pipelineId('leader', scopeId('key', scope), call, after), () =>
      keys.events(scope).pipe(map(decoders.mapperOf(call)), leaderOf(after)),
    );
  };

  const watchPrefix = <T>(prefix: string, options?: LeaderOptions<T>): Observable<PrefixState<T>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (registry.closed) return EMPTY;
    const scope = scopeOf(prefix, call);
    return registry.shared(decoders.pipelineId('watchPrefix', scopeId('prefix', scope), call), () =>
      prefixes.events(scope).pipe(toPrefixStates(prefix, decoders.mapperOf(call))),
    );
  };

  const watchLeaders = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): Observable<ReadonlyMap<string, LeaderState<T>>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (registry.closed) return EMPTY;
    const scope = scopeOf(prefix, call);
    return registry.shared(decoders.pipelineId('watchLeaders', scopeId('prefix', scope), call), () =>
      watchPrefix(prefix, call).pipe(map(({ states }) => states)),
    );
  };

  const leaders = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): Observable<ReadonlyMap<string, Leader<T>>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (registry.closed) return EMPTY;
    const after = nullAfterMs(call);
    const scope = scopeOf(prefix, call);
    return registry.shared(decoders.pipelineId('leaders', scopeId('prefix', scope), call, after), () =>
      prefixes.events(scope).pipe(leadersOf(decoders.mapperOf(call), after)),
    );
  };

  const current = async <T>(key: string, options?: LeaderOptions<T>): Promise<Leader<T> | null> => {
    const call = parseCallOptions<T>('key', key, options);
    if (registry.closed) throw new DiscoveryClosedError();
    const read = new AbortController();
    reads.add(read);
    try {
      const snapshot = await readKeyOnce(transport, scopeOf(key, call), read.signal);
      const state = toSettledState(snapshot, decoders.decodingOf(call));
      return state.status === 'leader' ? state.leader : null;
    } catch (error) {
      throw asLeaderError(error);
    } finally {
      reads.delete(read);
    }
  };

  const follow = <T>(key: string, options?: LeaderOptions<T>): LeaderHandle<T> =>
    followHandle(leader(key, options));

  const close = (): void => {
    if (registry.closed) return;
    registry.close();
    for (const read of reads) read.abort();
    transport.close();
    for (const client of setup.owned) client.destroy();
  };

  return { leader, follow, watch, current, leaders, watchLeaders, watchPrefix, close };
}
