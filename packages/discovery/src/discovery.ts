/**
 * `createLeaderDiscovery`: the public entry point. Each method is a few lines over the
 * stages of the data path: read scopes (config/), shared streams (streams/), decoding
 * (state/). ARCHITECTURE.md draws the path.
 */
import { type MonoTypeOperatorFunction, Observable, distinctUntilChanged, map, tap } from 'rxjs';
import type { Leader } from '@consul-leader/types';
import { type ClientSetup, setUpClients } from './config/client.js';
import {
  type LeaderDiscoveryOptions,
  type LeaderOptions,
  type ResolvedDiscoveryOptions,
  parseCallOptions,
  parseDiscoveryOptions,
  resolveDiscoveryDefaults,
} from './config/options.js';
import { resolveCoalesce, resolveScope, resolveSplit } from './config/resolve.js';
import { DiscoveryClosedError, asLeaderError } from './errors.js';
import type { KeyEvent } from './key/key-snapshot.js';
import { readKeyOnce } from './key/read-once.js';
import { type FollowedUnit, Telemetry } from './observe/telemetry.js';
import type { PrefixEvent } from './prefix/follow-prefix.js';
import { telemetrySinks } from './observe/sinks.js';
import { Sessions } from './sessions/sessions.js';
import { Decoders } from './state/decoders.js';
import { type LeaderHandle, followHandle } from './state/follow-handle.js';
import { type LiveObservable, live } from './state/live.js';
import { type WaitOptions, bounded } from './state/waits.js';
import { leaderOf, leadersOf } from './state/leader-of.js';
import { toPrefixStates } from './state/prefix-states.js';
import type { LeaderState, PrefixState } from './state/states.js';
import { sameState, toSettledState } from './state/to-state.js';
import { KeyStreams } from './streams/key-streams.js';
import { PrefixStreams } from './streams/prefix-streams.js';
import { Queries } from './streams/queries.js';
import { StreamRegistry } from './streams/registry.js';
import { parseDurationMs } from './wire/duration.js';
import { type ReadScope, scopeId } from './wire/requests.js';
import { ConsulTransport } from './wire/transport.js';

export type { LeaderState, SettledLeaderState, PrefixOutage, PrefixState } from './state/states.js';

/** Options with `decode: 'text'` and no schema: the descriptor is the value's text, typed `string`. */
export type TextOptions = Omit<LeaderOptions<string>, 'decode' | 'schema'> & {
  readonly decode: 'text';
  readonly schema?: undefined;
};

export interface LeaderDiscovery {
  /**
   * The leader of `key`, live: a `Leader` when a session holds the key with a
   * valid descriptor, else `null`. Never emits the same leader twice in a row;
   * late subscribers get the current value at once. It never errors or
   * completes because of Consul: while Consul cannot be read it keeps the last
   * value and retries (`watch()` shows why), unless `nullWhenUnreachableFor` says otherwise.
   */
  leader(key: string, options: TextOptions): LiveObservable<Leader<string> | null>;
  leader<T = unknown>(key: string, options?: LeaderOptions<T>): LiveObservable<Leader<T> | null>;
  /**
   * A handle on the leader of `key` for hot paths: `current` is read
   * synchronously, `ready()` resolves with the first answer, `changes` is
   * `leader()`. Close it when done.
   */
  follow(key: string, options: TextOptions): LeaderHandle<string>;
  follow<T = unknown>(key: string, options?: LeaderOptions<T>): LeaderHandle<T>;
  /** The full state of `key`, live: `leader`, `vacant`, `invalid` or `unreachable`. */
  watch(key: string, options: TextOptions): LiveObservable<LeaderState<string>>;
  watch<T = unknown>(key: string, options?: LeaderOptions<T>): LiveObservable<LeaderState<T>>;
  /**
   * The leaders of every key under `prefix`, live, by full key; keys with no
   * leader or an invalid value are absent. One recursive blocking query serves
   * any number of keys (one connection to Consul). Held through outages like
   * `leader()`.
   */
  leaders(prefix: string, options: TextOptions): LiveObservable<ReadonlyMap<string, Leader<string>>>;
  leaders<T = unknown>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<ReadonlyMap<string, Leader<T>>>;
  /**
   * The state of every key under `prefix`, live, by full key (for dashboards):
   * while Consul cannot be read, every known key is `unreachable` with its `lastKnown`.
   */
  watchLeaders(
    prefix: string,
    options: TextOptions,
  ): LiveObservable<ReadonlyMap<string, LeaderState<string>>>;
  watchLeaders<T = unknown>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<ReadonlyMap<string, LeaderState<T>>>;
  /**
   * The full picture of a prefix, live: every key's state, whether Consul
   * answers (`unreachable`, also when no key is known yet: an empty prefix and
   * an outage are told apart), and the last answer's `consul` read meta.
   */
  watchPrefix(prefix: string, options: TextOptions): LiveObservable<PrefixState<string>>;
  watchPrefix<T = unknown>(prefix: string, options?: LeaderOptions<T>): LiveObservable<PrefixState<T>>;
  /**
   * One non-blocking read of `key` and its session. Rejects with a typed error when Consul
   * cannot be read; `signal` aborts it (`AbortedError`), `timeout` bounds it (`TimeoutError`).
   */
  current(key: string, options: TextOptions & WaitOptions): Promise<Leader<string> | null>;
  current<T = unknown>(key: string, options?: LeaderOptions<T> & WaitOptions): Promise<Leader<T> | null>;
  /** Stops every stream (they complete), aborts requests in flight, and closes the SDK's sockets. */
  close(): void;
  /** `close()`, for `await using discovery = createLeaderDiscovery()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const prefixUnit = (scope: ReadScope): FollowedUnit => ({
  type: 'prefix',
  key: scope.key,
  id: scopeId('prefix', scope),
});

/** A stream of a closed discovery: it completes at once. */
const ended = <E>(): Observable<E> => new Observable<E>((subscriber) => subscriber.complete());

export function createLeaderDiscovery(options?: LeaderDiscoveryOptions): LeaderDiscovery {
  return new Discovery(parseDiscoveryOptions(options));
}

/** The stages wired together. Methods are arrow fields: `const { leader } = discovery` works. */
class Discovery implements LeaderDiscovery {
  private readonly defaults: ResolvedDiscoveryOptions;
  private readonly setup: ClientSetup;
  private readonly transport: ConsulTransport;
  private readonly registry = new StreamRegistry();
  private readonly keys: KeyStreams;
  private readonly prefixes: PrefixStreams;
  private readonly decoders = new Decoders();
  // current()'s reads in flight, aborted by close().
  private readonly reads = new Set<AbortController>();
  private readonly telemetry: Telemetry;

  constructor(private readonly opts: LeaderDiscoveryOptions) {
    this.defaults = resolveDiscoveryDefaults(opts);
    this.setup = setUpClients(opts);
    this.transport = new ConsulTransport(this.setup.clients, undefined, {
      http2: opts.http2 === true,
      ...(this.defaults.authorization ? { authorization: this.defaults.authorization } : {}),
    });
    this.telemetry = new Telemetry(telemetrySinks(opts));
    const queries = new Queries(this.transport, this.defaults, this.telemetry);
    const sessions = new Sessions(queries, this.registry, {
      enabled: opts.watchSessions === true,
      waitMs: this.defaults.waitMs,
    });
    const split = resolveSplit(opts.splitPrefixes, this.transport.multiplexed);
    this.prefixes = new PrefixStreams(this.registry, queries, sessions, split);
    const coalesce = resolveCoalesce(opts.coalesce);
    this.keys = new KeyStreams(this.registry, queries, sessions, this.prefixes, coalesce, this.telemetry);
  }

  watch: LeaderDiscovery['watch'] = <T>(
    key: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<LeaderState<T>> => {
    const call = parseCallOptions<T>('key', key, options);
    if (this.registry.closed) return live(ended<never>());
    const scope = this.scopeOf(key, call);
    return this.shared(this.decoders.pipelineId('watch', scopeId('key', scope), call), () =>
      this.keys.events(scope).pipe(map(this.toStates(scope, call)), distinctUntilChanged(sameState)),
    );
  };

  leader: LeaderDiscovery['leader'] = <T>(
    key: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<Leader<T> | null> => {
    const call = parseCallOptions<T>('key', key, options);
    if (this.registry.closed) return live(ended<never>());
    const after = this.nullAfterMs(call);
    const scope = this.scopeOf(key, call);
    const id = this.decoders.pipelineId('leader', scopeId('key', scope), call, after);
    // Straight from the key's events (not through a watch() pipeline: fewer layers per change).
    return this.shared(id, () =>
      this.keys.events(scope).pipe(map(this.toStates(scope, call)), leaderOf(after)),
    );
  };

  follow: LeaderDiscovery['follow'] = <T>(key: string, options?: LeaderOptions<T>): LeaderHandle<T> =>
    followHandle(key, this.leader(key, options), this.watch(key, options));

  watchPrefix: LeaderDiscovery['watchPrefix'] = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<PrefixState<T>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (this.registry.closed) return live(ended<never>());
    const scope = this.scopeOf(prefix, call);
    return this.shared(this.decoders.pipelineId('watchPrefix', scopeId('prefix', scope), call), () =>
      this.prefixes
        .events(scope)
        .pipe(this.followingPrefix(scope), toPrefixStates(prefix, this.toPrefixKeyStates(scope, call))),
    );
  };

  watchLeaders: LeaderDiscovery['watchLeaders'] = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<ReadonlyMap<string, LeaderState<T>>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (this.registry.closed) return live(ended<never>());
    const scope = this.scopeOf(prefix, call);
    return this.shared(this.decoders.pipelineId('watchLeaders', scopeId('prefix', scope), call), () =>
      this.watchPrefix(prefix, call).pipe(map(({ states }) => states)),
    );
  };

  leaders: LeaderDiscovery['leaders'] = <T>(
    prefix: string,
    options?: LeaderOptions<T>,
  ): LiveObservable<ReadonlyMap<string, Leader<T>>> => {
    const call = parseCallOptions<T>('prefix', prefix, options);
    if (this.registry.closed) return live(ended<never>());
    const after = this.nullAfterMs(call);
    const scope = this.scopeOf(prefix, call);
    return this.shared(this.decoders.pipelineId('leaders', scopeId('prefix', scope), call, after), () =>
      this.prefixes
        .events(scope)
        .pipe(this.followingPrefix(scope), leadersOf(this.toPrefixKeyStates(scope, call), after)),
    );
  };

  current: LeaderDiscovery['current'] = async <T>(
    key: string,
    options?: LeaderOptions<T> & WaitOptions,
  ): Promise<Leader<T> | null> => {
    const call = parseCallOptions<T>('key', key, options);
    if (this.registry.closed) throw new DiscoveryClosedError();
    // Its own controller (close() aborts it), not one signal shared by every call: that
    // would collect a listener per parallel call (Node warns past 10).
    const read = new AbortController();
    this.reads.add(read);
    try {
      return await bounded(options, async (signal) => {
        signal.addEventListener('abort', () => read.abort(), { once: true });
        const snapshot = await readKeyOnce(
          this.transport,
          this.scopeOf(key, call),
          read.signal,
          this.telemetry,
        );
        const state = toSettledState(snapshot, this.decoders.decodingOf(call));
        return state.status === 'leader' ? state.leader : null;
      });
    } catch (error) {
      throw asLeaderError(error);
    } finally {
      this.reads.delete(read);
    }
  };

  close = (): void => {
    if (this.registry.closed) return;
    this.registry.close();
    for (const read of this.reads) read.abort();
    this.transport.close();
    for (const client of this.setup.owned) client.destroy();
  };

  [Symbol.asyncDispose] = (): Promise<void> => {
    this.close();
    return Promise.resolve();
  };

  /** One stream per id (registry.ts), iterable with `for await`. */
  private shared<E>(id: string, make: () => Observable<E>): LiveObservable<E> {
    return live(this.registry.shared(id, make));
  }

  /** The key's events as states of the call's schema, each told to the telemetry. */
  private toStates<T>(scope: ReadScope, call: LeaderOptions<T>): (event: KeyEvent) => LeaderState<T> {
    const toState = this.decoders.mapperOf(call);
    const unit: FollowedUnit = { type: 'key', key: scope.key, id: scopeId('key', scope) };
    return (event) => {
      const state = toState(event);
      if (this.telemetry.listening) this.telemetry.keyState(unit, event, state);
      return state;
    };
  }

  /** A prefix counted as followed while a pipeline of it is subscribed, its reads told. */
  private followingPrefix(scope: ReadScope): MonoTypeOperatorFunction<PrefixEvent> {
    const unit = prefixUnit(scope);
    return (events) =>
      events.pipe(
        tap((event) => this.telemetry.prefixEvent(unit, event)),
        this.telemetry.following(unit),
      );
  }

  /** A prefix's keys as states of the call's schema, each new one told (its outages are the prefix's). */
  private toPrefixKeyStates<T>(
    scope: ReadScope,
    call: LeaderOptions<T>,
  ): (event: KeyEvent) => LeaderState<T> {
    const toState = this.decoders.mapperOf(call);
    const unit = prefixUnit(scope);
    return (event) => {
      const state = toState(event);
      if (event.kind !== 'unreachable' && this.telemetry.listening) {
        this.telemetry.prefixKeyState(unit, event, event.key, state);
      }
      return state;
    };
  }

  private scopeOf(key: string, call: LeaderOptions<unknown>): ReadScope {
    return resolveScope(key, call, this.defaults, this.setup);
  }

  private nullAfterMs(call: LeaderOptions<unknown>): number | undefined {
    const after = call.nullWhenUnreachableFor ?? this.opts.nullWhenUnreachableFor;
    return after === undefined ? undefined : parseDurationMs(after);
  }
}
