/** `follow()`: a synchronous handle on a leader, for hot paths such as a gateway's request handler. */
import type { Observable, Subscription } from 'rxjs';
import type { Leader } from '@consul-leader/types';
import { DiscoveryClosedError, asLeaderError } from '../errors.js';

export interface LeaderHandle<T> {
  /**
   * The leader right now, or null: a field read, no allocation, no I/O. Null
   * once the handle or its discovery is closed: nothing follows the key then.
   */
  readonly current: Leader<T> | null;
  /** Resolves with the first answer from Consul (at once if it is already in). */
  ready(): Promise<Leader<T> | null>;
  /** Every change, replaying the current value to each new subscriber. */
  readonly changes: Observable<Leader<T> | null>;
  /** Stops following (the handle's own subscription; `changes` subscribers keep theirs). */
  close(): void;
}

export function followHandle<T>(leader$: Observable<Leader<T> | null>): LeaderHandle<T> {
  let current: Leader<T> | null = null;
  let answered = false;
  const waiting: Array<{ resolve: (v: Leader<T> | null) => void; reject: (e: unknown) => void }> = [];
  const subscription: Subscription = leader$.subscribe({
    next(value) {
      current = value;
      answered = true;
      for (const w of waiting.splice(0)) w.resolve(value);
    },
    // leader() neither errors nor completes because of Consul; should it ever error, the
    // waiting calls get the error instead of the process getting an unhandled one.
    error(error: unknown) {
      current = null;
      for (const w of waiting.splice(0)) w.reject(asLeaderError(error));
    },
    complete() {
      current = null;
      for (const w of waiting.splice(0)) w.reject(new DiscoveryClosedError());
    },
  });
  return {
    get current() {
      return current;
    },
    ready() {
      if (answered) return Promise.resolve(current);
      if (subscription.closed) return Promise.reject(new DiscoveryClosedError());
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    changes: leader$,
    close() {
      subscription.unsubscribe();
      current = null;
      for (const w of waiting.splice(0)) w.reject(new DiscoveryClosedError());
    },
  };
}
