/**
 * The blocking-query loop: the one place that applies Consul's rules for
 * following an index (see ARCHITECTURE.md). Everything else is composed on
 * its events with RxJS operators.
 */
import { Observable } from 'rxjs';
import type { ConsulReadMeta } from '@consul-leader/types';
import { type LeaderDiscoveryError, asLeaderError } from '../errors.js';
import { readIndex, readMeta } from '../wire/headers.js';
import type { ConsulResponse } from '../wire/transport.js';
import { ABORTED, type TrackRequest, answered, failed } from '../observe/requests.js';
import { NO_INDEX, nextIndex } from './index-rules.js';
import { retryDelayMs, type RetryPolicy } from './retry-policy.js';
import { sleep } from './sleep.js';
import type { IdleWakeupLimit } from './idle-wakeups.js';
import { TokenBucket } from './token-bucket.js';

export interface BlockingQueryOptions<T> {
  /** Sends one read. `index` is `NO_INDEX` (0n) for a non-blocking read, else the index to block on. */
  readonly send: (index: bigint, signal: AbortSignal) => Promise<ConsulResponse>;
  /** Interprets an answer; throwing rejects it, and its index is then not adopted. */
  readonly read: (response: ConsulResponse) => T;
  readonly retry: RetryPolicy;
  readonly idleWakeups: IdleWakeupLimit;
  readonly random?: () => number;
  /**
   * Awaited (when it returns a promise) before the read that follows an
   * emitted result: the reads that join that result go first.
   */
  readonly beforeNextRead?: () => Promise<void> | undefined;
  /**
   * The index of an answer already read that this query continues (a split
   * prefix's sub-prefix queries continue the whole prefix's read): the first
   * read blocks on it instead of reading again what was just read. Reads after
   * a failure start plain, as always.
   */
  readonly startIndex?: bigint;
  /** Told of each request and how it ended (the telemetry). */
  readonly track?: TrackRequest;
}

export type BlockingQueryEvent<T> =
  /** An answer whose content differs from the last one emitted (or the first after a failure). */
  | { readonly type: 'result'; readonly value: T; readonly meta: ConsulReadMeta }
  /** A failed request; the loop retries with a non-blocking read after `retryInMs`. */
  | {
      readonly type: 'error';
      readonly error: LeaderDiscoveryError;
      readonly attempt: number;
      readonly retryInMs: number;
    };

/**
 * Follows one Consul read as a blocking query, until unsubscribed:
 * - the first read (unless it continues `startIndex`), and the first after
 *   any failure, is non-blocking, so a restarted agent whose index went back
 *   is seen at once;
 * - each answer's `X-Consul-Index` goes through `nextIndex` (reset when it
 *   goes backwards, never block on 0); an answer that fails `read` or lacks a
 *   valid index is an error, and its index is never adopted;
 * - answers byte-identical to the last one (timeouts, spurious wake-ups) emit
 *   nothing and are rate-limited by a token bucket; a changed answer is
 *   emitted and followed at once (a server that lost or found its Raft
 *   leader, `X-Consul-KnownLeader`, is a change: stale reads must say so);
 * - failures emit an `error` event and back off exponentially with jitter,
 *   capped; the count resets after a success;
 * - after a result, the next read waits for `beforeNextRead` (the reads that
 *   join the result).
 * It never errors or completes on its own.
 */
export function blockingQuery<T>(options: BlockingQueryOptions<T>): Observable<BlockingQueryEvent<T>> {
  return new Observable<BlockingQueryEvent<T>>((subscriber) => {
    const controller = new AbortController();
    const { signal } = controller;
    const bucket = new TokenBucket(options.idleWakeups.burst, options.idleWakeups.perSecond);

    const run = async (): Promise<void> => {
      let index = options.startIndex === undefined ? NO_INDEX : nextIndex(NO_INDEX, options.startIndex);
      let lastEmitted: ConsulResponse | undefined;
      let failures = 0;
      while (!signal.aborted) {
        let response: ConsulResponse | undefined;
        let value: T | undefined;
        let unchanged: boolean;
        let received: bigint;
        const end = options.track?.(index > NO_INDEX, index);
        try {
          response = await options.send(index, signal);
          if (signal.aborted) {
            end?.(ABORTED);
            return;
          }
          // An answer byte-identical to the last one emitted reads the same: not decoded again.
          unchanged =
            lastEmitted !== undefined &&
            lastEmitted.status === response.status &&
            lastEmitted.headers['x-consul-knownleader'] === response.headers['x-consul-knownleader'] &&
            lastEmitted.body.equals(response.body);
          if (!unchanged) value = options.read(response);
          received = readIndex(response.headers);
          end?.(answered(response));
        } catch (caught) {
          end?.(signal.aborted ? ABORTED : failed(caught, response));
          // Only our own abort ends the loop: any other failure, an abort from below included, is retried.
          if (signal.aborted) return;
          failures += 1;
          const error = asLeaderError(caught);
          const retryInMs = retryDelayMs(failures, error, options.retry, options.random);
          lastEmitted = undefined;
          index = NO_INDEX;
          subscriber.next({ type: 'error', error, attempt: failures, retryInMs });
          await sleep(retryInMs, signal);
          continue;
        }
        failures = 0;
        index = nextIndex(index, received);
        if (unchanged) {
          await sleep(bucket.take(), signal);
        } else {
          lastEmitted = response as ConsulResponse;
          subscriber.next({ type: 'result', value: value as T, meta: readMeta(response.headers, received) });
          try {
            const joining = options.beforeNextRead?.();
            if (joining) await joining;
          } catch {
            // A join that fails is its own stream's news: the loop goes on either way.
          }
        }
      }
    };

    run().catch((error: unknown) => {
      // Unreachable by design (every await is guarded); surface rather than swallow.
      subscriber.error(error);
    });
    return () => {
      controller.abort();
    };
  });
}
