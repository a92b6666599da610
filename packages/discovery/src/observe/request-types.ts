/**
 * The shapes of the telemetry of requests (public through the channels' context): no
 * import of the transport, whose classes a user's declaration files must not reach.
 */
import type { LeaderDiscoveryError, LeaderErrorCode } from '../errors.js';

/** What a request reads (the `kind` attribute of `consul_leader.requests`). */
export type RequestKind = 'kv' | 'kv_recurse' | 'kv_keys' | 'session_info' | 'session_list';

/** How a request ended: `ok`, `not_found` (a 404), `aborted`, or the error's code. */
export type RequestOutcome = 'ok' | 'not_found' | 'aborted' | LeaderErrorCode;

export interface RequestInfo {
  readonly kind: RequestKind;
  /** The key or prefix read (for session reads: the key or prefix whose sessions they are). */
  readonly key: string;
  readonly blocking: boolean;
  /** The index sent (0 for a non-blocking read). */
  readonly index: bigint;
}

export interface RequestResult {
  readonly outcome: RequestOutcome;
  /** The HTTP status, for every answer (errors included); absent when no answer came. */
  readonly statusCode?: number;
  /** The answer's `X-Consul-Index`. */
  readonly resultIndex?: bigint;
  /** The answer's `X-Consul-LastContact`, when it carried one. */
  readonly lastContactMs?: number;
  readonly error?: LeaderDiscoveryError;
}

/**
 * Starts the telemetry of one request; the function it returns ends it (once). Undefined when
 * no one listens: callers then build no result (`end?.(answered(res))` evaluates nothing).
 */
export type TrackRequest = (
  blocking: boolean,
  index: bigint,
) => ((result: RequestResult) => void) | undefined;
