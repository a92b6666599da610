/** A single read retried with backoff until it succeeds, reporting each failure. */
import { Observable } from 'rxjs';
import { asLeaderError } from '../errors.js';
import type { BlockingQueryEvent } from './blocking-query.js';
import { retryDelayMs, type RetryPolicy } from './retry-policy.js';
import { sleep } from './sleep.js';

export type RetryingReadEvent<T> =
  { readonly type: 'value'; readonly value: T } | Extract<BlockingQueryEvent<never>, { type: 'error' }>;

/** Emits an `error` event per failed try, then the value, then completes. */
export function retryingRead<T>(
  read: (signal: AbortSignal) => Promise<T>,
  retry: RetryPolicy,
  random?: () => number,
): Observable<RetryingReadEvent<T>> {
  return new Observable<RetryingReadEvent<T>>((subscriber) => {
    const controller = new AbortController();
    const { signal } = controller;
    let done = false;
    const run = async (): Promise<void> => {
      for (let attempt = 1; !signal.aborted; attempt += 1) {
        try {
          const value = await read(signal);
          done = true;
          subscriber.next({ type: 'value', value });
          subscriber.complete();
          return;
        } catch (caught) {
          // Only our own abort ends it: any other failure, an abort from below included, is retried.
          if (signal.aborted) return;
          const error = asLeaderError(caught);
          const retryInMs = retryDelayMs(attempt, error, retry, random);
          subscriber.next({ type: 'error', error, attempt, retryInMs });
          await sleep(retryInMs, signal);
        }
      }
    };
    run().catch((error: unknown) => {
      subscriber.error(error);
    });
    return () => {
      // Aborting costs a DOMException (with its stack): only when a read is still in flight.
      if (!done) controller.abort();
    };
  });
}
