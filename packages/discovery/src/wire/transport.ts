/**
 * The one place that sends HTTP requests to Consul, through a node-consul
 * client (so its base URL, keep-alive agent and TLS options are used).
 *
 * It asks node-consul for the raw bytes (`buffer: true`) instead of its decoded
 * entries: the SDK needs the status, the `X-Consul-*` headers and the exact
 * uint64 fields, and compares answers byte for byte to spot spurious wake-ups.
 * HTTP error statuses resolve like any answer; only transport failures reject.
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type Consul from 'consul';
import { ConsulUnreachableError, type UnreachableReason } from '../errors.js';

export interface ConsulResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface ConsulRequest {
  /** Path below `/v1`, with `{name}` placeholders filled (and URI-encoded) from `params`. */
  readonly path: string;
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly token?: string | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** Thrown when the caller's signal aborted the request; never reported to users. */
export class RequestAbortedError extends Error {
  constructor() {
    super('request aborted');
    this.name = 'RequestAbortedError';
  }
}

/** The part of node-consul's client (papi) the transport uses; not in its published types. */
interface PapiClient {
  _get(opts: PapiRequest): Promise<PapiResponse>;
  on(event: 'log', listener: (tags: readonly string[]) => void): unknown;
  off(event: 'log', listener: (tags: readonly string[]) => void): unknown;
}
interface PapiRequest {
  name: string;
  tags: string[];
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  ctx: EventEmitter;
  timeout: number;
  buffer: true;
}
interface PapiResponse {
  statusCode?: number;
  headers: IncomingHttpHeaders;
  body?: unknown;
}
interface PapiError {
  isAbort?: boolean;
  isTimeout?: boolean;
  isResponse?: boolean;
  response?: PapiResponse;
  code?: string;
  message?: string;
  cause?: unknown;
}

/**
 * Once an answer's headers are in, its body must follow within this time.
 * node-consul waits for a body cut short (connection closed before
 * Content-Length bytes) until its whole timeout, about 69 s for a 60 s wait.
 */
export const BODY_TIMEOUT_MS = 5_000;

let requestSeq = 0;

export class ConsulTransport {
  /** In failover order; `#active` is the one in use. */
  readonly #clients: readonly PapiClient[];
  #active = 0;
  /** Requests waiting for their headers, by their papi tag. */
  readonly #awaitingHeaders = new Map<string, () => void>();
  readonly #onLog = (tags: readonly string[]): void => {
    // papi logs ['papi', 'response', ...request tags] when the headers of an answer arrive.
    if (tags[1] !== 'response') return;
    for (const tag of tags) this.#awaitingHeaders.get(tag)?.();
  };

  constructor(
    clients: readonly Consul[],
    readonly bodyTimeoutMs = BODY_TIMEOUT_MS,
  ) {
    if (clients.length === 0) throw new Error('ConsulTransport needs at least one client');
    this.#clients = clients as unknown as readonly PapiClient[];
    for (const client of this.#clients) client.on('log', this.#onLog);
  }

  /** Stops listening to the clients (which may outlive the transport). */
  dispose(): void {
    for (const client of this.#clients) client.off('log', this.#onLog);
  }

  /** After an agent stopped answering, the next request goes to the next one (if several were given). */
  #failOver(failed: number): void {
    if (this.#active === failed) this.#active = (failed + 1) % this.#clients.length;
  }

  async get(request: ConsulRequest): Promise<ConsulResponse> {
    const { signal } = request;
    if (signal?.aborted) throw new RequestAbortedError();
    const ctx = new EventEmitter();
    const cancel = (): void => {
      ctx.emit('cancel');
    };
    signal?.addEventListener('abort', cancel, { once: true });
    const headers: Record<string, string> = {};
    if (request.token) headers['x-consul-token'] = request.token;
    const tag = `consul-leader#${(requestSeq += 1)}`;
    let bodyTimer: NodeJS.Timeout | undefined;
    let bodyLate = false;
    this.#awaitingHeaders.set(tag, () => {
      this.#awaitingHeaders.delete(tag);
      bodyTimer = setTimeout(() => {
        bodyLate = true;
        cancel();
      }, this.bodyTimeoutMs);
    });
    const used = this.#active;
    const client = this.#clients[used] as PapiClient;
    try {
      const res = await client._get({
        name: 'consul-leader',
        tags: [tag],
        path: request.path,
        params: { ...request.params },
        query: { ...request.query },
        headers,
        ctx,
        timeout: request.timeoutMs,
        buffer: true,
      });
      return toResponse(res);
    } catch (error: unknown) {
      const e = (error ?? {}) as PapiError;
      if (e.isResponse && e.response) return toResponse(e.response);
      if (bodyLate) {
        this.#failOver(used);
        throw new ConsulUnreachableError(
          'reset',
          `the answer's body did not arrive within ${this.bodyTimeoutMs} ms of its headers (connection cut mid-body?)`,
        );
      }
      if (signal?.aborted || e.isAbort) throw new RequestAbortedError();
      this.#failOver(used);
      throw toUnreachable(e, request.timeoutMs);
    } finally {
      clearTimeout(bodyTimer);
      this.#awaitingHeaders.delete(tag);
      signal?.removeEventListener('abort', cancel);
    }
  }
}

function toResponse(res: PapiResponse): ConsulResponse {
  const body = Buffer.isBuffer(res.body)
    ? res.body
    : typeof res.body === 'string'
      ? Buffer.from(res.body)
      : Buffer.alloc(0);
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

const REASON_BY_CODE: Record<string, UnreachableReason> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  ETIMEDOUT: 'timeout',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
};

function errorCode(e: PapiError): string | undefined {
  if (e.code) return e.code;
  const cause = e.cause as PapiError | undefined;
  return cause?.code;
}

function toUnreachable(e: PapiError, timeoutMs: number): ConsulUnreachableError {
  if (e.isTimeout) {
    return new ConsulUnreachableError('timeout', `no answer from Consul within ${timeoutMs} ms`, {
      cause: e,
    });
  }
  const code = errorCode(e) ?? '';
  const reason: UnreachableReason =
    REASON_BY_CODE[code] ??
    (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME/i.test(code) ? 'tls' : 'network');
  // papi prefixes messages with "consul: consul-leader: "; keep the socket's own words.
  // OpenSSL's messages span lines and name source files: its `reason` says it in a few words.
  const sslReason = (e as { reason?: unknown }).reason;
  const detail =
    code.startsWith('ERR_SSL_') && typeof sslReason === 'string'
      ? `${code}: ${sslReason}`
      : (e.message ?? 'request failed').replace(/^consul: consul-leader: /, '').trim();
  return new ConsulUnreachableError(reason, `cannot reach Consul (${reason}): ${detail}`, {
    cause: e,
  });
}
