/** `follow()`: a synchronous handle on a leader, for hot paths such as a gateway's request handler. */
import type { Observable, Subscription } from 'rxjs';
import type { Leader } from '@consul-leader/types';
import type { LeaderState } from './states.js';
import { DiscoveryClosedError, asLeaderError } from '../errors.js';
import { type WaitOptions, bounded } from './waits.js';

export interface LeaderHandle<T> {
  /** The key this handle follows. */
  readonly key: string;
  /**
   * The leader right now, or null: a field read, no allocation, no I/O. Null
   * once the handle or its discovery is closed: nothing follows the key then.
   */
  readonly current: Leader<T> | null;
  /**
   * The key's last state (`watch()`'s), read synchronously: `undefined` before Consul's
   * first answer and once the handle is closed. While Consul cannot be read it is
   * `unreachable` (with `lastKnown`) and `current` keeps the last leader.
   */
  readonly state: LeaderState<T> | undefined;
  /**
   * Resolves with the first answer from Consul (at once if it is already in). While
   * Consul cannot be read it waits: bound it with `signal` (rejects with `AbortedError`)
   * or `timeout` (ms or `'5s'`: rejects with `TimeoutError`).
   */
  ready(options?: WaitOptions): Promise<Leader<T> | null>;
  /** Every change, replaying the current value to each new subscriber. */
  readonly changes: Observable<Leader<T> | null>;
  /** Stops following (the handle's own subscription; `changes` subscribers keep theirs). */
  close(): void;
  /** `close()`, for `using handle = discovery.follow(key)`. */
  [Symbol.dispose](): void;
}

// When each handle's leader (or its absence) began, as the handle saw it (leaderHealth's `since`).
const changedAt = new WeakMap<object, () => Date>();

/** Told of a handle's changes from inside its own subscription (so it needs none of its own). */
export interface HandleListener<T> {
  /** The handle's new value, set on `current` just before. */
  change(leader: Leader<T> | null): void;
  /** The handle was closed (or its discovery): nothing follows the key any more. */
  closed(): void;
}
const listenersOf = new WeakMap<object, { listeners: Set<HandleListener<never>>; closed: () => boolean }>();

/**
 * Listens to `handle` without subscribing: routing (leaderDispatcher) then holds no query
 * of its own, and closing the handle ends everything. Returns the function that stops it.
 */
export function listenToHandle<T>(handle: LeaderHandle<T>, listener: HandleListener<T>): () => void {
  const entry = listenersOf.get(handle);
  if (!entry) throw new TypeError('not a handle made by discovery.follow()');
  if (entry.closed()) {
    listener.closed();
    return () => undefined;
  }
  const listeners = entry.listeners as Set<HandleListener<T>>;
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** When `handle`'s leader, or its absence, began as it saw it (its creation for another object). */
export function leaderSince(handle: object): Date | undefined {
  return changedAt.get(handle)?.();
}

export function followHandle<T>(
  key: string,
  leader$: Observable<Leader<T> | null>,
  state$: Observable<LeaderState<T>>,
): LeaderHandle<T> {
  let current: Leader<T> | null = null;
  let state: LeaderState<T> | undefined;
  let since = new Date();
  let answered = false;
  const waiting: Array<{ resolve: (v: Leader<T> | null) => void; reject: (e: unknown) => void }> = [];
  const listeners = new Set<HandleListener<T>>();
  const ended = (): void => {
    for (const listener of [...listeners]) listener.closed();
    listeners.clear();
  };
  const subscription: Subscription = leader$.subscribe({
    next(value) {
      if (!answered || value?.session.id !== current?.session.id) since = new Date();
      current = value;
      answered = true;
      for (const w of waiting.splice(0)) w.resolve(value);
      for (const listener of [...listeners]) listener.change(value);
    },
    // leader() neither errors nor completes because of Consul; should it ever error, the
    // waiting calls get the error instead of the process getting an unhandled one.
    error(error: unknown) {
      current = null;
      state = undefined;
      for (const w of waiting.splice(0)) w.reject(asLeaderError(error));
      ended();
    },
    complete() {
      current = null;
      // The state stream's own end is not heard once this subscription closes.
      state = undefined;
      for (const w of waiting.splice(0)) w.reject(new DiscoveryClosedError());
      ended();
    },
  });
  // The same key stream as leader$ (one query): its states, for `state`.
  subscription.add(
    state$.subscribe({
      next: (value) => void (state = value),
      error: () => void (state = undefined),
      complete: () => void (state = undefined),
    }),
  );
  function close(): void {
    subscription.unsubscribe();
    current = null;
    state = undefined;
    for (const w of waiting.splice(0)) w.reject(new DiscoveryClosedError());
    ended();
  }
  const handle: LeaderHandle<T> = {
    key,
    get current() {
      return current;
    },
    get state() {
      return state;
    },
    ready(options) {
      if (answered) return Promise.resolve(current);
      if (subscription.closed) return Promise.reject(new DiscoveryClosedError());
      return bounded(
        options,
        (signal) =>
          new Promise<Leader<T> | null>((resolve, reject) => {
            const entry = { resolve, reject };
            waiting.push(entry);
            // A wait that ended early (aborted, timed out) is forgotten.
            const forget = (): void => {
              const i = waiting.indexOf(entry);
              if (i >= 0) waiting.splice(i, 1);
            };
            signal.addEventListener('abort', forget, { once: true });
          }),
      );
    },
    changes: leader$,
    close,
    [Symbol.dispose]: close,
  };
  changedAt.set(handle, () => since);
  listenersOf.set(handle, {
    listeners: listeners as Set<HandleListener<never>>,
    closed: () => subscription.closed,
  });
  return handle;
}
