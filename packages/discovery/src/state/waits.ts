/**
 * Bounding a caller's wait: an `AbortSignal` and a timeout, turned into the SDK's
 * `AbortedError` and `TimeoutError`, with nothing left behind once the wait ends.
 */
import { AbortedError, TimeoutError } from '../errors.js';
import type { Duration } from '../config/options.js';
import { parseDurationMs } from '../wire/duration.js';

/** How long a caller waits, at most. */
export interface WaitOptions {
  /** Aborting it rejects the wait with `AbortedError` (code `ABORTED`). */
  readonly signal?: AbortSignal;
  /** Rejects the wait with `TimeoutError` (code `TIMEOUT`) after this long (ms or `'5s'`). */
  readonly timeout?: Duration;
}

/**
 * Runs `wait(signal)` until it settles, `options.signal` aborts or `options.timeout`
 * passes; `signal` is aborted when the wait ends early, so the work behind it stops.
 */
export async function bounded<R>(
  options: WaitOptions | undefined,
  wait: (signal: AbortSignal) => Promise<R>,
): Promise<R> {
  const inner = new AbortController();
  const outer = options?.signal;
  if (outer?.aborted) throw new AbortedError({ cause: outer.reason });
  const timeoutMs = options?.timeout === undefined ? undefined : parseDurationMs(options.timeout);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortedError({ cause: outer?.reason }));
    outer?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) timer = setTimeout(() => reject(new TimeoutError(timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([wait(inner.signal), stopped]);
  } finally {
    clearTimeout(timer);
    if (onAbort) outer?.removeEventListener('abort', onAbort);
    inner.abort();
  }
}
