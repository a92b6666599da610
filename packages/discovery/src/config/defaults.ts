/**
 * Every tuning constant of the SDK, in one place. Why each value was chosen is
 * said here in a line; measurements behind them are in BENCHMARKS.md.
 */
import type { IdleWakeupLimit } from '../watch/idle-wakeups.js';
import type { RetryPolicy } from '../watch/retry-policy.js';

// ---- reads

/** `wait` of blocking queries when none is given. */
export const DEFAULT_WAIT = '60s';
/** Consul caps `wait` at 10 minutes. */
export const MAX_WAIT_MS = 10 * 60_000;
/** Timeout of non-blocking reads (first read, session info, `current()`). */
export const DEFAULT_REQUEST_TIMEOUT = '10s';
/** Margin over `wait + wait/16` (Consul's jitter) before a blocking read is deemed lost. */
export const BLOCKING_TIMEOUT_MARGIN_MS = 5_000;
/** Once an answer's headers are in, its body must follow within this: a stalled body is an error. */
export const BODY_TIMEOUT_MS = 5_000;
/** HTTP/2 streams per connection when the agent has not said (Consul 1.8 says 100). */
export const DEFAULT_STREAM_LIMIT = 100;

// ---- the loop

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  initialDelayMs: 250,
  maxDelayMs: 5_000,
  permissionDeniedDelayMs: 10_000,
});
/** `Retry-After` is honoured up to this, so a hostile header cannot park a watch for days. */
export const MAX_RETRY_AFTER_MS = 300_000;
/** Wake-ups that bring nothing new: a burst, then a steady rate (per key). */
export const DEFAULT_IDLE_WAKEUP_LIMIT: IdleWakeupLimit = Object.freeze({ burst: 5, perSecond: 2 });
/**
 * A split prefix's key list: every value change wakes it and costs Consul the whole
 * list of names, so wake-ups with no new key are at most one per 5 s.
 */
export const KEY_LIST_WAKEUPS: IdleWakeupLimit = Object.freeze({ burst: 1, perSecond: 0.2 });

// ---- keys, prefixes, sessions

/** Followed keys of one prefix from which they share its recursive query. */
export const DEFAULT_COALESCE_MIN_KEYS = 32;
/** Sessions remembered per key: enough for contenders that take turns. */
export const SESSIONS_REMEMBERED = 4;
/** Above this many unknown sessions in one answer, one `/v1/session/list` beats one read each. */
export const SESSION_LIST_THRESHOLD = 4;
/** A prefix is split once it holds this many keys, into at most this many sub-prefix queries. */
export const DEFAULT_SPLIT = Object.freeze({ minKeys: 512, maxQueries: 64 });
/** Over HTTP/1.1 each sub-prefix query is a connection: fewer by default. */
export const DEFAULT_HTTP1_MAX_QUERIES = 16;
/** A sub-prefix of this many keys or fewer is not split further: its answer is already small. */
export const MIN_SUB_PREFIX_KEYS = 16;

// ---- what surfaces show

/** The raw value of an `invalid` state is cut here. */
export const RAW_TEXT_LIMIT = 4096;
/**
 * Deeper than this, a descriptor that failed to be written as JSON is `unwritable`: where
 * `JSON.stringify` overflows depends on the caller's stack, a fixed bound does not.
 */
export const MAX_WRITABLE_DEPTH = 1000;
// Interval of the SSE `: heartbeat` comment that keeps proxies from closing an idle stream.
export const DEFAULT_HEARTBEAT_MS = 15_000;
