/** Collects what an Observable emits, and waits (with a deadline that only fails the test) for conditions on it. */
import type { Observable, Subscription } from 'rxjs';

export interface Recorder<T> {
  readonly values: T[];
  readonly errors: unknown[];
  completed: boolean;
  /** Resolves with the first value, from index `from` on, matching `predicate`; rejects after `timeoutMs`. */
  next(predicate: (value: T) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<T>;
  unsubscribe(): void;
}

export function record<T>(source: Observable<T>): Recorder<T> {
  const waiters = new Set<() => void>();
  const recorder: Recorder<T> & { subscription?: Subscription } = {
    values: [],
    errors: [],
    completed: false,
    next(predicate, options = {}) {
      const { from = 0, timeoutMs = 20_000 } = options;
      return new Promise<T>((resolve, reject) => {
        const check = (): boolean => {
          const found = recorder.values.slice(from).find(predicate);
          if (found === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no matching emission within ${timeoutMs} ms; saw ${recorder.values.length}: ${describe(recorder.values.slice(-5))}`,
            ),
          );
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    unsubscribe() {
      recorder.subscription?.unsubscribe();
    },
  };
  recorder.subscription = source.subscribe({
    next(value) {
      recorder.values.push(value);
      for (const waiter of [...waiters]) waiter();
    },
    error(error: unknown) {
      recorder.errors.push(error);
    },
    complete() {
      recorder.completed = true;
    },
  });
  return recorder;
}

export function describe(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds; fails the test (never asserts speed) after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await delay(20);
  }
}
