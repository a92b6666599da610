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
import type Consul from 'consul';
import { ConsulUnreachableError, type UnreachableReason } from '../errors.js';
import { type Endpoint, endpointOf } from './endpoint.js';

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

/**
 * Once an answer's headers are in, its body must follow within this time: a
 * backstop for a body that stalls without its connection closing.
 */
export const BODY_TIMEOUT_MS = 5_000;

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
  ) {
    if (clients.length === 0) throw new Error('ConsulTransport needs at least one client');
    this.#endpoints = clients.map(endpointOf);
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
      let req: ClientRequest | undefined;
      let res: IncomingMessage | undefined;
      let settled = false;
      let chunks: Buffer[] = [];
      let bytes = 0;
      // One timer: the whole request's timeout, then, once headers are in, the body's.
      let timer: NodeJS.Timeout | undefined = setTimeout(() => fail({ kind: 'timeout' }), timeoutMs);
      const onAbort = (): void => fail({ kind: 'aborted' });
      signal?.addEventListener('abort', onAbort, { once: true });

      const finish = (): void => {
        settled = true;
        clearTimeout(timer);
        timer = undefined;
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (failure: Failure): void => {
        if (settled) return;
        finish();
        req?.destroy();
        if (failure.kind === 'aborted') return reject(new RequestAbortedError());
        this.#failOver(used);
        reject(toUnreachable(failure, timeoutMs, this.bodyTimeoutMs));
      };

      try {
        req = endpoint.request({ ...endpoint.options, path, headers }, (response) => {
          res = response;
          clearTimeout(timer);
          timer = setTimeout(() => fail({ kind: 'cut', how: 'stalled', bytes }), this.bodyTimeoutMs);
          response.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            bytes += chunk.length;
          });
          response.once('end', () => {
            if (settled) return;
            finish();
            const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes);
            chunks = [];
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
          });
          // A connection closed mid-body: without this, the request would wait for its whole timeout.
          response.once('close', () => {
            if (!response.complete) fail({ kind: 'cut', how: 'mid-body', bytes });
          });
          response.on('error', () => {
            if (!response.complete) fail({ kind: 'cut', how: 'mid-body', bytes });
          });
        });
      } catch (error) {
        finish();
        reject(error as Error);
        return;
      }
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (res && !res.complete) fail({ kind: 'cut', how: 'mid-body', bytes });
        else fail({ kind: 'socket', error });
      });
      req.end();
    });
  }
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
