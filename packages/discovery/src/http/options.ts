/** Options of `leaderDispatcher()` (and of `createLeaderProxy()`, which takes them too), and their checks. */
import type { Dispatcher } from 'undici';
import type { Leader } from '@consul-leader/types';
import type { Duration } from '../config/options.js';
import { InvalidOptionError } from '../errors.js';
import { parseDurationMs } from '../wire/duration.js';

/** What a request may be sent again for, and how much of its body is kept for that. */
export interface LeaderRetryOptions {
  /**
   * Re-sends after the first try, to the next leader: after the leader refused or reset the
   * connection (idempotent requests; any request whose body was not sent), and after a
   * not-the-leader answer (any request). Default 2.
   */
  readonly attempts?: number;
  /**
   * Bytes of a streamed request body kept so that it can be sent again. The body is
   * streamed, never read whole first; past this a failed request is not sent again.
   * Default 1 MiB. Bodies given as a string or buffer are always kept (they are already).
   */
  readonly bodyLimit?: number;
}

/** Options of `leaderDispatcher()` (and of `createLeaderProxy()`). */
export interface LeaderDispatcherOptions<T> {
  /**
   * The origin (`http://host:port` or `https://host:port`) of a leader, from its descriptor.
   * Called for each request: keep it cheap.
   */
  readonly origin: (leader: Leader<T>) => string | URL;
  /**
   * How long a request waits for a leader when there is none (vacant, invalid, before
   * Consul's first answer, or the one it was sent to failed), in ms or as `'5s'`; then it
   * fails with `NoLeaderError`. `0` fails at once. Default `'5s'`: a planned step-down is a
   * gap of milliseconds; a crash is the session's TTL (up to twice it) plus the lock-delay,
   * longer than a caller should hang by default.
   */
  readonly waitForLeader?: Duration;
  /** What may be sent again to the next leader. */
  readonly retry?: LeaderRetryOptions;
  /**
   * The status a backend answers when it is not the leader any more: the request waits for
   * the next leader and is sent again, whatever its method, and the caller never sees that
   * answer. Default 421 (Misdirected Request); `false` turns the rule off.
   */
  readonly notLeaderStatus?: number | false;
  /**
   * Makes the connection pool of one origin (TLS options, connection count). Default:
   * undici's `new Pool(origin)`. A pool is closed once its origin is no longer the leader's.
   */
  readonly factory?: (origin: string) => Dispatcher;
}

export interface RoutingSettings {
  readonly waitForLeaderMs: number;
  readonly attempts: number;
  readonly bodyLimit: number;
  readonly notLeaderStatus: number | false;
}

export const DEFAULT_WAIT_FOR_LEADER = '5s';
export const DEFAULT_ATTEMPTS = 2;
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
export const DEFAULT_NOT_LEADER_STATUS = 421;

/** A duration option in ms (ms or `'5s'`; 0 allowed), or `InvalidOptionError` naming it. */
export function durationOption(name: string, value: unknown, fallback: Duration): number {
  const given = value ?? fallback;
  const ms = typeof given === 'number' || typeof given === 'string' ? parseDurationMs(given) : NaN;
  if (Number.isNaN(ms)) {
    throw new InvalidOptionError(`${name}: expected ms or a duration like '5s', got ${String(given)}`);
  }
  return ms;
}

function count(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidOptionError(`${name}: expected a whole number of 0 or more, got ${String(value)}`);
  }
  return value;
}

export function routingSettings(options: LeaderDispatcherOptions<unknown>): RoutingSettings {
  if (typeof options?.origin !== 'function') {
    throw new InvalidOptionError('origin: expected a function (leader) => "http://host:port"');
  }
  const waitForLeaderMs = durationOption('waitForLeader', options.waitForLeader, DEFAULT_WAIT_FOR_LEADER);
  const status = options.notLeaderStatus ?? DEFAULT_NOT_LEADER_STATUS;
  if (status !== false && !(Number.isInteger(status) && status >= 100 && status <= 599)) {
    throw new InvalidOptionError(`notLeaderStatus: expected an HTTP status or false, got ${String(status)}`);
  }
  if (options.factory !== undefined && typeof options.factory !== 'function') {
    throw new InvalidOptionError('factory: expected a function (origin) => Dispatcher');
  }
  return {
    waitForLeaderMs,
    attempts: count('retry.attempts', options.retry?.attempts, DEFAULT_ATTEMPTS),
    bodyLimit: count('retry.bodyLimit', options.retry?.bodyLimit, DEFAULT_BODY_LIMIT),
    notLeaderStatus: status,
  };
}
