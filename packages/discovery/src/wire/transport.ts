/**
 * The one place that sends HTTP requests to Consul: Node's `http`/`https`,
 * with the base URL, keep-alive agent and TLS options of a node-consul client
 * (wire/endpoint.ts).
 *
 * It hands back the raw answer: the SDK needs the status, the `X-Consul-*`
 * headers and the exact uint64 fields, and compares answers byte for byte to
 * spot spurious wake-ups. HTTP error statuses resolve like any answer; only
 * transport failures reject, as typed errors.
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import type Consul from 'consul';
import { ConsulUnreachableError, type UnreachableReason } from '../errors.js';
import { type Endpoint, type EndpointOptions, endpointOf } from './endpoint.js';
import type { H2Sessions } from './h2-sessions.js';
import { BODY_TIMEOUT_MS } from '../config/defaults.js';

export interface ConsulResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface ConsulRequest {
  /** Path below `/v1`, with `{name}` placeholders filled (and URI-encoded) from `params`. */
  readonly path: string;
  readonly params?: Readonly<Record<string, string>>;
  /** Query parameters; an empty value is sent as a bare flag (`?recurse`). */
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

/** `/kv/{key}` with `{ key: 'a/b' }` → `/kv/a%2Fb`. */
function fillPath(path: string, params: Readonly<Record<string, string>> | undefined): string {
  if (!params) return path;
  return path.replace(/\{(\w+)\}/g, (_whole, name: string) => {
    const value = params[name];
    if (value === undefined) throw new TypeError(`missing path parameter ${name}`);
    return encodeURIComponent(value);
  });
}

function queryString(query: Readonly<Record<string, string>> | undefined): string {
  if (!query) return '';
  let text = '';
  for (const name in query) {
    const value = query[name] as string;
    text += `${text ? '&' : '?'}${encodeURIComponent(name)}${value === '' ? '' : `=${encodeURIComponent(value)}`}`;
  }
  return text;
}

/** Why a request failed, before it is turned into an error. */
type Failure =
  | { readonly kind: 'aborted' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'cut'; readonly how: 'mid-body' | 'stalled'; readonly bytes: number }
  | { readonly kind: 'socket'; readonly error: NodeJS.ErrnoException };

export class ConsulTransport {
  /** In failover order; `#active` is the one in use. */
  readonly #endpoints: readonly Endpoint[];
  #active = 0;

  constructor(
    clients: readonly Consul[],
    readonly bodyTimeoutMs = BODY_TIMEOUT_MS,
    options: EndpointOptions = {},
  ) {
    if (clients.length === 0) throw new Error('ConsulTransport needs at least one client');
    this.#endpoints = clients.map((client) => endpointOf(client, options));
  }

  /** Whether every request shares one connection per agent (HTTP/2), so parallel queries cost no sockets. */
  get multiplexed(): boolean {
    return this.#endpoints.every((endpoint) => endpoint.h2 !== undefined);
  }

  /** After an agent stopped answering, the next request goes to the next one (if several were given). */
  #failOver(failed: number): void {
    if (this.#active === failed) this.#active = (failed + 1) % this.#endpoints.length;
  }

  get(request: ConsulRequest): Promise<ConsulResponse> {
    const { signal, timeoutMs } = request;
    if (signal?.aborted) return Promise.reject(new RequestAbortedError());
    const used = this.#active;
    const endpoint = this.#endpoints[used] as Endpoint;
    const headers: Record<string, string> = request.token
      ? { ...endpoint.headers, 'x-consul-token': request.token }
      : { ...endpoint.headers };
    let path: string;
    try {
      path = endpoint.basePath + fillPath(request.path, request.params) + queryString(request.query);
    } catch (error) {
      return Promise.reject(error as Error);
    }

    return new Promise<ConsulResponse>((resolve, reject) => {
      const exchange = new Exchange(timeoutMs, this.bodyTimeoutMs, signal, resolve, (failure) => {
        if (failure.kind === 'aborted') return reject(new RequestAbortedError());
        this.#failOver(used);
        reject(toUnreachable(failure, timeoutMs, this.bodyTimeoutMs));
      });
      try {
        if (endpoint.h2) sendH2(endpoint.h2, path, headers, exchange);
        else sendH1(endpoint, path, headers, exchange);
      } catch (error) {
        exchange.settle();
        reject(error as Error);
      }
    });
  }

  /** Closes the HTTP/2 connections (HTTP/1.1 sockets belong to the clients' agents). */
  close(): void {
    for (const endpoint of this.#endpoints) endpoint.h2?.close();
  }
}

/**
 * One request's life, whatever carries it: the whole request's timeout, then,
 * once the headers are in, the body's; abort; the body's chunks; settled once.
 */
class Exchange {
  #settled = false;
  #timer: NodeJS.Timeout | undefined;
  #chunks: Buffer[] = [];
  bytes = 0;
  /** Lets go of the request when the exchange fails (destroys it, cancels the stream). */
  cancel: (() => void) | undefined;
  readonly #onAbort = (): void => this.fail({ kind: 'aborted' });

  constructor(
    timeoutMs: number,
    private readonly bodyTimeoutMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (response: ConsulResponse) => void,
    private readonly reject: (failure: Failure) => void,
  ) {
    this.#timer = setTimeout(() => this.fail({ kind: 'timeout' }), timeoutMs);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  get settled(): boolean {
    return this.#settled;
  }

  headersIn(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => this.fail({ kind: 'cut', how: 'stalled', bytes: this.bytes }),
      this.bodyTimeoutMs,
    );
  }

  data(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.bytes += chunk.length;
  }

  end(status: number, headers: IncomingHttpHeaders): void {
    if (this.#settled) return;
    this.settle();
    const chunks = this.#chunks;
    this.#chunks = [];
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.bytes);
    this.resolve({ status, headers, body });
  }

  fail(failure: Failure): void {
    if (this.#settled) return;
    this.settle();
    this.cancel?.();
    this.reject(failure);
  }

  /** Stops the timers and the abort listener; the exchange is over. */
  settle(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.signal?.removeEventListener('abort', this.#onAbort);
  }
}

function sendH1(endpoint: Endpoint, path: string, headers: Record<string, string>, exchange: Exchange): void {
  let res: IncomingMessage | undefined;
  const req: ClientRequest = endpoint.request({ ...endpoint.options, path, headers }, (response) => {
    res = response;
    exchange.headersIn();
    response.on('data', (chunk: Buffer) => exchange.data(chunk));
    response.once('end', () => exchange.end(response.statusCode ?? 0, response.headers));
    // A connection closed mid-body: without this, the request would wait for its whole timeout.
    const cut = (): void => {
      if (!response.complete) exchange.fail({ kind: 'cut', how: 'mid-body', bytes: exchange.bytes });
    };
    response.once('close', cut);
    response.on('error', cut);
  });
  exchange.cancel = () => req.destroy();
  req.on('error', (error: NodeJS.ErrnoException) => {
    if (res && !res.complete) exchange.fail({ kind: 'cut', how: 'mid-body', bytes: exchange.bytes });
    else exchange.fail({ kind: 'socket', error });
  });
  req.end();
}

function sendH2(
  sessions: H2Sessions,
  path: string,
  headers: Record<string, string>,
  exchange: Exchange,
): void {
  const slot = sessions.acquire();
  const stream = slot.session.request({ ':method': 'GET', ':path': path, ...headers }, { endStream: true });
  let status: number | undefined;
  let answerHeaders: IncomingHttpHeaders = {};
  exchange.cancel = () => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  };
  stream.once('response', (received) => {
    status = Number(received[':status']);
    const rest: Record<string, unknown> = { ...received };
    delete rest[':status'];
    answerHeaders = rest as IncomingHttpHeaders;
    exchange.headersIn();
  });
  stream.on('data', (chunk: Buffer) => exchange.data(chunk));
  // A lost connection ends its streams too: only a close without error code means a whole answer.
  let ended = false;
  stream.once('end', () => {
    ended = true;
  });
  stream.on('error', (error: NodeJS.ErrnoException) => {
    slot.release();
    // A stream still waiting for its connection fails with the connection's error as its cause.
    const cause = (error as { cause?: unknown }).cause;
    const failure = cause instanceof Error ? (cause as NodeJS.ErrnoException) : error;
    if (status !== undefined) exchange.fail({ kind: 'cut', how: 'mid-body', bytes: exchange.bytes });
    else exchange.fail({ kind: 'socket', error: failure });
  });
  stream.once('close', () => {
    slot.release();
    if (exchange.settled) return;
    if (ended && status !== undefined && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) {
      exchange.end(status, answerHeaders);
    } else if (status !== undefined) {
      exchange.fail({ kind: 'cut', how: 'mid-body', bytes: exchange.bytes });
    } else {
      exchange.fail({ kind: 'socket', error: streamClosedError(stream.rstCode) });
    }
  });
}

function streamClosedError(rstCode: number | undefined): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(
    `the HTTP/2 stream closed before an answer (RST_STREAM ${rstCode ?? 'none'})`,
  );
  error.code = 'ECONNRESET';
  return error;
}

const REASON_BY_CODE: Record<string, UnreachableReason> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  ETIMEDOUT: 'timeout',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  // HTTP/2: the stream or its connection reset by the other side.
  ERR_HTTP2_STREAM_ERROR: 'reset',
  ERR_HTTP2_STREAM_CANCEL: 'reset',
  ERR_HTTP2_SESSION_ERROR: 'reset',
  ERR_HTTP2_GOAWAY_SESSION: 'reset',
};

function toUnreachable(
  failure: Exclude<Failure, { kind: 'aborted' }>,
  timeoutMs: number,
  bodyTimeoutMs: number,
): ConsulUnreachableError {
  switch (failure.kind) {
    case 'timeout':
      return new ConsulUnreachableError('timeout', `no answer from Consul within ${timeoutMs} ms`);
    case 'cut':
      return new ConsulUnreachableError(
        'reset',
        failure.how === 'mid-body'
          ? `the connection closed in the middle of the answer's body (${failure.bytes} bytes received)`
          : `the answer's body did not arrive within ${bodyTimeoutMs} ms of its headers`,
      );
    case 'socket':
      break;
  }
  const e = failure.error;
  const code = e.code ?? '';
  const reason: UnreachableReason =
    REASON_BY_CODE[code] ??
    (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME/i.test(code) ? 'tls' : 'network');
  // OpenSSL's messages span lines and name source files: its `reason` says it in a few words.
  const sslReason = (e as { reason?: unknown }).reason;
  const detail =
    code.startsWith('ERR_SSL_') && typeof sslReason === 'string'
      ? `${code}: ${sslReason}`
      : (e.message || 'request failed').trim();
  return new ConsulUnreachableError(reason, `cannot reach Consul (${reason}): ${detail}`, { cause: e });
}
