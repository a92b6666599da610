/**
 * `createLeaderDiscovery`: the public entry point. It owns the Consul client,
 * one shared stream per followed key, and their teardown.
 */
import {
  EMPTY,
  type Observable,
  Subject,
  distinctUntilChanged,
  finalize,
  map,
  shareReplay,
  takeUntil,
} from 'rxjs';
import { z } from 'zod';
import type {
  Leader,
  LeaderState as StateWithError,
  SettledLeaderState as SettledWithError,
} from '@consul-leader/types';
import { setUpClients } from './config/client.js';
import {
  type LeaderDiscoveryOptions,
  type LeaderOptions,
  type ResolvedDiscoveryOptions,
  parseCallOptions,
  parseDiscoveryOptions,
  resolveDiscoveryDefaults,
} from './config/options.js';
import { DiscoveryClosedError, type LeaderDiscoveryError } from './errors.js';
import { followKey } from './leader/follow-key.js';
import type { KeyEvent, KeySnapshot } from './leader/key-snapshot.js';
import { leaderOf } from './leader/leader-of.js';
import { type Descriptor, sameState, stateMapper, toSettledState } from './leader/to-state.js';
import { parseDurationMs } from './wire/duration.js';
import { type ReadScope, readKeyOnce, readSessionOnce, sendKvRead } from './leader/reads.js';
import { blockingQuery } from './watch/blocking-query.js';
import { retryingRead } from './watch/retrying-read.js';
import { ConsulTransport } from './wire/transport.js';
import { readKvResponse } from './wire/kv.js';

/**
 * The full state of one leader key, discriminated on `status`:
 * `leader` | `vacant` | `invalid` | `unreachable`. Errors are the SDK's classes.
 */
export type LeaderState<T> = StateWithError<T, LeaderDiscoveryError>;

/** A state read from Consul (anything but `unreachable`). */
export type SettledLeaderState<T> = SettledWithError<T, LeaderDiscoveryError>;

export interface LeaderDiscovery {
  /**
   * The leader of `key`, live: a `Leader` when a session holds the key with a
   * valid descriptor, else `null`. Never emits the same leader twice in a row;
   * late subscribers get the current value at once. It never errors or
   * completes because of Consul: while Consul cannot be read it keeps the last
   * value and retries (`watch()` shows why), unless `nullWhenUnreachableFor` says otherwise.
   */
  leader<T = unknown>(key: string, options?: LeaderOptions<T>): Observable<Leader<T> | null>;
  /** The full state of `key`, live: `leader`, `vacant`, `invalid` or `unreachable`. */
  watch<T = unknown>(key: string, options?: LeaderOptions<T>): Observable<LeaderState<T>>;
  /** One non-blocking read of `key` and its session. Rejects with a typed error when Consul cannot be read. */
  current<T = unknown>(key: string, options?: LeaderOptions<T>): Promise<Leader<T> | null>;
  /** Stops every stream (they complete), aborts requests in flight, and closes the SDK's sockets. */
  close(): void;
}

const anyJson: z.ZodType<unknown> = z.unknown();

export function createLeaderDiscovery(options?: LeaderDiscoveryOptions): LeaderDiscovery {
  const opts = parseDiscoveryOptions(options);
  const defaults: ResolvedDiscoveryOptions = resolveDiscoveryDefaults(opts);
  const setup = setUpClients(opts);
  const transport = new ConsulTransport(setup.clients);
  const closed$ = new Subject<void>();
  const closing = new AbortController();
  const keyStreams = new Map<string, Observable<KeyEvent>>();
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

  // One blocking query per key and read scope, shared by every subscriber.
  const keyStream = (scope: ReadScope): Observable<KeyEvent> => {
    const id = JSON.stringify([
      scope.key,
      scope.consistency,
      scope.waitMs,
      scope.dc ?? '',
      scope.token ?? '',
    ]);
    let stream = keyStreams.get(id);
    if (!stream) {
      const kv$ = blockingQuery({
        send: (index, signal) => sendKvRead(transport, scope, index, signal),
        read: (res) => readKvResponse(res, scope.key),
        retry: defaults.retry,
        idleWakeups: defaults.idleWakeups,
      });
      stream = followKey(scope.key, {
        kv$,
        session: (sessionId) =>
          retryingRead((signal) => readSessionOnce(transport, scope, sessionId, signal), defaults.retry),
      }).pipe(
        takeUntil(closed$),
        finalize(() => keyStreams.delete(id)),
        shareReplay({ bufferSize: 1, refCount: true }),
      );
      keyStreams.set(id, stream);
    }
    return stream;
  };

  const descriptorOf = <T>(call: LeaderOptions<T>): Descriptor<T> => ({
    schema: call.schema ?? (anyJson as z.ZodType<T>),
    decode: call.decode ?? 'json',
  });

  const watch = <T>(key: string, options?: LeaderOptions<T>): Observable<LeaderState<T>> => {
    const call = parseCallOptions<T>(key, options);
    if (closed) return EMPTY;
    return keyStream(scopeOf(key, call)).pipe(
      map(stateMapper(descriptorOf(call))),
      distinctUntilChanged(sameState),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
  };

  const leader = <T>(key: string, options?: LeaderOptions<T>): Observable<Leader<T> | null> => {
    const nullAfter = options?.nullWhenUnreachableFor ?? opts.nullWhenUnreachableFor;
    return watch(key, options).pipe(
      leaderOf(nullAfter === undefined ? undefined : parseDurationMs(nullAfter)),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
  };

  const current = async <T>(key: string, options?: LeaderOptions<T>): Promise<Leader<T> | null> => {
    const call = parseCallOptions<T>(key, options);
    if (closed) throw new DiscoveryClosedError();
    const scope = scopeOf(key, call);
    const snapshot: KeySnapshot = await readKeyOnce(transport, scope, closing.signal);
    const state = toSettledState(snapshot, descriptorOf(call));
    return state.status === 'leader' ? state.leader : null;
  };

  const close = (): void => {
    if (closed) return;
    closed = true;
    closing.abort();
    closed$.next();
    closed$.complete();
    transport.dispose();
    for (const client of setup.owned) client.destroy();
  };

  return { leader, watch, current, close };
}
