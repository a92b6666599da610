/**
 * Every failure the SDK reports is one of these classes, each with a stable
 * `code` to switch on. Messages never contain an ACL token: the token travels
 * only in the `X-Consul-Token` header, and messages are built from status lines
 * and socket error codes, never from request URLs or headers.
 */
import type { DescriptorIssue, ErrorInfo } from '@consul-leader/types';

export type LeaderErrorCode =
  | 'CONSUL_UNREACHABLE'
  | 'CONSUL_HTTP_ERROR'
  | 'PERMISSION_DENIED'
  | 'INVALID_RESPONSE'
  | 'INVALID_DESCRIPTOR'
  | 'INVALID_OPTION'
  | 'DISCOVERY_CLOSED'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'NO_LEADER'
  | 'LEADER_REQUEST_FAILED';

/** How deep a chain of causes is read (a cycle of causes must end). */
const MAX_CAUSES_READ = 8;

/** Base class of every error the SDK reports. */
export abstract class LeaderDiscoveryError extends Error implements ErrorInfo {
  abstract readonly code: LeaderErrorCode;
  /** The HTTP status, when the error comes from a Consul answer. */
  readonly status?: number;

  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.status !== undefined) this.status = options.status;
    // V8 keeps each captured frame's receiver (an array being mapped, a reader) until the stack
    // is first read: read it now (and its causes', a chain of them included), or an error kept
    // in a state keeps past answers alive with it. A user's Error.prepareStackTrace that throws
    // must not make the SDK throw instead of reporting.
    try {
      void this.stack;
      let cause = options?.cause;
      for (let depth = 0; cause instanceof Error && depth < MAX_CAUSES_READ; depth += 1) {
        void cause.stack;
        cause = cause.cause;
      }
    } catch {
      // The stack stays unread: only memory is at stake.
    }
  }

  /** A plain `{ code, message, status? }`, for logs and JSON. */
  toJSON(): ErrorInfo {
    return this.status === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, status: this.status };
  }
}

/** How a request to Consul failed below HTTP. */
export type UnreachableReason = 'refused' | 'reset' | 'timeout' | 'dns' | 'tls' | 'network';

/** No HTTP answer: connection refused or reset, DNS, TLS handshake, or no answer within the client timeout. */
export class ConsulUnreachableError extends LeaderDiscoveryError {
  readonly code = 'CONSUL_UNREACHABLE' as const;
  constructor(
    readonly reason: UnreachableReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Consul answered with an HTTP error status (other than 403). */
export class ConsulHttpError extends LeaderDiscoveryError {
  readonly code = 'CONSUL_HTTP_ERROR' as const;
  declare readonly status: number;
  /** From a `Retry-After` header (429, 503), in ms. */
  readonly retryAfterMs?: number;
  constructor(status: number, message: string, retryAfterMs?: number) {
    super(message, { status });
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** 403: the ACL token is missing, unknown, or its policy does not allow the read. */
export class PermissionDeniedError extends LeaderDiscoveryError {
  readonly code = 'PERMISSION_DENIED' as const;
  declare readonly status: number;
  constructor(message: string) {
    super(message, { status: 403 });
  }
}

/** Consul (or something between) answered 2xx with a body or headers that are not what Consul sends. */
export class InvalidResponseError extends LeaderDiscoveryError {
  readonly code = 'INVALID_RESPONSE' as const;
}

/** The key's value could not be decoded or did not pass the descriptor schema. */
export class InvalidDescriptorError extends LeaderDiscoveryError {
  readonly code = 'INVALID_DESCRIPTOR' as const;
  constructor(
    message: string,
    readonly issues: readonly DescriptorIssue[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An option given to the SDK is not valid; thrown at once, naming the option. */
export class InvalidOptionError extends LeaderDiscoveryError {
  readonly code = 'INVALID_OPTION' as const;
}

/** The `LeaderDiscovery` was closed. */
export class DiscoveryClosedError extends LeaderDiscoveryError {
  readonly code = 'DISCOVERY_CLOSED' as const;
  constructor() {
    super('this LeaderDiscovery is closed');
  }
}

/** The caller's `AbortSignal` aborted the wait (`current()`, `handle.ready()`); `cause` is its reason. */
export class AbortedError extends LeaderDiscoveryError {
  readonly code = 'ABORTED' as const;
  constructor(options?: { cause?: unknown }) {
    super('aborted by the caller', options);
  }
}

/** The wait took longer than the `timeout` the caller gave (`handle.ready({ timeout })`). */
export class TimeoutError extends LeaderDiscoveryError {
  readonly code = 'TIMEOUT' as const;
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/** No leader to route to: the key has none (vacant, invalid, or not read yet) within the wait. */
export class NoLeaderError extends LeaderDiscoveryError {
  readonly code = 'NO_LEADER' as const;
  constructor(
    readonly key: string,
    message = `no leader for ${JSON.stringify(key)}`,
  ) {
    super(message);
  }
}

/**
 * A request routed to the leader failed and was not (or no longer) safe to send again:
 * refused or reset by the leader, its attempts ran out, or the leader failed mid-answer.
 */
export class LeaderRequestError extends LeaderDiscoveryError {
  readonly code = 'LEADER_REQUEST_FAILED' as const;
  constructor(
    /** The origin the request was last sent to. */
    readonly origin: string,
    /** The session of the leader it was sent to. */
    readonly sessionId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A failure as one of the SDK's errors: anything else thrown while reading an answer is INVALID_RESPONSE. */
export function asLeaderError(error: unknown): LeaderDiscoveryError {
  if (error instanceof LeaderDiscoveryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InvalidResponseError(`could not read Consul's answer: ${message}`, { cause: error });
}

export function isLeaderDiscoveryError(value: unknown): value is LeaderDiscoveryError {
  return value instanceof LeaderDiscoveryError;
}
