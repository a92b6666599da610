/**
 * Which failed requests may be sent again to the next leader. RFC 9110 9.2.2: an
 * idempotent request may be repeated when the connection failed before its answer. A
 * request whose connection was refused never left this process, whatever its method.
 */

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method.toUpperCase());
}

/** Nothing of the request reached the leader: no connection to it was made. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
/** The connection broke before the answer began: the leader may have read the request. */
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function codeOf(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? codeOf(cause) : undefined;
}

export type FailureKind = 'refused' | 'reset' | 'other';

/** How a request failed before any byte of its answer. */
export function failureKind(error: Error, started: boolean): FailureKind {
  const code = codeOf(error);
  if (code && NOT_CONNECTED.has(code)) return 'refused';
  if (code && BROKEN.has(code)) return started ? 'reset' : 'refused';
  return 'other';
}

/** Whether a failure of `kind` lets a request of `method` go to the next leader. */
export function mayResend(kind: FailureKind, method: string): boolean {
  return kind === 'refused' || (kind === 'reset' && isIdempotent(method));
}
