/**
 * The one place that sends HTTP requests to Consul, through a node-consul
 * client (so its base URL, keep-alive agent and TLS options are used).
 *
 * It takes the raw bytes (piped out of node-consul) instead of its decoded
 * entries: the SDK needs the status, the `X-Consul-*` headers and the exact
 * uint64 fields, and compares answers byte for byte to spot spurious wake-ups.
 * HTTP error statuses resolve like any answer; only transport failures reject.
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
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
}
interface PapiRequest {
  name: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  ctx: EventEmitter;
  timeout: number;
  /** papi pipes the response into what this returns (and then leaves `body` unset). */
  pipe: () => Writable;
}
interface PapiResponse {
  statusCode?: number;
  headers: IncomingHttpHeaders;
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
 * Once an answer's headers are in, its body must follow within this time: a
 * backstop for a body that stalls without its connection closing.
 */
export const BODY_TIMEOUT_MS = 5_000;

export class ConsulTransport {
  /** In failover order; `#active` is the one in use. */
  readonly #clients: readonly PapiClient[];
  #active = 0;

  constructor(
    clients: readonly Consul[],
    readonly bodyTimeoutMs = BODY_TIMEOUT_MS,
  ) {
    if (clients.length === 0) throw new Error('ConsulTransport needs at least one client');
    this.#clients = clients as unknown as readonly PapiClient[];
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

    // papi pipes the response into this sink, which hands us the response
    // itself: papi never notices a connection closed mid-body (it would wait
    // for its whole timeout), so the transport watches for it.
    const chunks: Buffer[] = [];
    let bodyTimer: NodeJS.Timeout | undefined;
    let cut: 'mid-body' | 'stalled' | undefined;
    const sink = (): Writable => {
      const writable = new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          done();
        },
      });
      writable.once('pipe', (res: IncomingMessage) => {
        bodyTimer = setTimeout(() => {
          cut ??= 'stalled';
          cancel();
        }, this.bodyTimeoutMs);
        res.once('close', () => {
          if (res.complete) return;
          cut ??= 'mid-body';
          cancel();
        });
      });
      return writable;
    };

    const used = this.#active;
    const client = this.#clients[used] as PapiClient;
    try {
      const res = await client._get({
        name: 'consul-leader',
        path: request.path,
        params: { ...request.params },
        query: { ...request.query },
        headers,
        ctx,
        timeout: request.timeoutMs,
        pipe: sink,
      });
      return toResponse(res, chunks);
    } catch (error: unknown) {
      const e = (error ?? {}) as PapiError;
      if (signal?.aborted) throw new RequestAbortedError();
      if (e.isResponse && e.response) return toResponse(e.response, chunks);
      if (cut) {
        this.#failOver(used);
        throw new ConsulUnreachableError(
          'reset',
          cut === 'mid-body'
            ? `the connection closed in the middle of the answer's body (${Buffer.concat(chunks).length} bytes received)`
            : `the answer's body did not arrive within ${this.bodyTimeoutMs} ms of its headers`,
        );
      }
      if (e.isAbort) throw new RequestAbortedError();
      this.#failOver(used);
      throw toUnreachable(e, request.timeoutMs);
    } finally {
      clearTimeout(bodyTimer);
      signal?.removeEventListener('abort', cancel);
    }
  }
}

function toResponse(res: PapiResponse, chunks: readonly Buffer[]): ConsulResponse {
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
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
