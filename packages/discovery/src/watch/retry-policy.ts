/** How long to wait before retrying a failed request. */
import { ConsulHttpError, PermissionDeniedError } from '../errors.js';
import { MAX_RETRY_AFTER_MS } from '../config/defaults.js';

export interface RetryPolicy {
  /** Delay before the first retry, before jitter. Default 250 ms. */
  readonly initialDelayMs: number;
  /** Cap of the exponential delay. Default 5 s. */
  readonly maxDelayMs: number;
  /**
   * Delay after a 403: a wrong token or policy is not fixed in milliseconds,
   * and hammering Consul's ACL resolution helps no one. Default 10 s.
   */
  readonly permissionDeniedDelayMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half
 * random, so delays grow visibly yet clients that failed together do not
 * retry together. `attempt` counts failures in a row, from 1.
 */
export function retryDelayMs(
  attempt: number,
  error: unknown,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  let delay = exp / 2 + (random() * exp) / 2;
  // A 403, or a 400 (a parameter the agent refuses: a namespace on Consul OSS), is not fixed
  // in milliseconds: retried slowly.
  if (error instanceof PermissionDeniedError || (error instanceof ConsulHttpError && error.status === 400)) {
    delay = Math.max(delay, policy.permissionDeniedDelayMs);
  }
  if (error instanceof ConsulHttpError && error.retryAfterMs !== undefined) {
    delay = Math.max(delay, Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS));
  }
  return Math.round(delay);
}
