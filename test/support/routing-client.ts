/**
 * One request of the failover tests, whatever path the client takes to the leader (the
 * dispatcher itself, or a client Pool to a proxy): its path carries an `id` the backends
 * log, and its answer keeps what the checks compare.
 */
import { type Dispatcher, fetch as undiciFetch, request } from 'undici';

/** Where a request goes: `origin` is replaced by the leader's when `dispatcher` is a leaderDispatcher. */
export interface ClientPath {
  readonly origin: string;
  readonly dispatcher: Dispatcher;
}

export type Via = 'request' | 'fetch';
export type Method = 'GET' | 'POST';

export interface Answer {
  readonly status: number;
  /** The backend's `x-session-id` ('' for a proxy's own answers). */
  readonly session: string;
  readonly retryAfter: string | null;
  readonly text: string;
}

export const pathOf = (route: string, id: string): string =>
  `${route}${route.includes('?') ? '&' : '?'}id=${id}`;
export const idOf = (url: string): string | null => new URL(url, 'http://backend').searchParams.get('id');

/** An error with its code and causes, for a failure message. */
export const why = (error: unknown): string =>
  error instanceof Error
    ? `${error.name} ${String((error as { code?: unknown }).code ?? '')}: ${error.message}${error.cause ? ` <- ${why(error.cause)}` : ''}`
    : String(error);

const one = (value: string | string[] | undefined): string | null =>
  value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;

/** One request through `client` with undici's `request` or its `fetch`. */
export async function exchange(
  client: ClientPath,
  via: Via,
  method: Method,
  path: string,
  body: string | undefined,
  signal?: AbortSignal,
): Promise<Answer> {
  const url = `${client.origin}${path}`;
  const { dispatcher } = client;
  if (via === 'request') {
    const res = await request(url, { method, body, dispatcher, signal });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      session: one(res.headers['x-session-id']) ?? '',
      retryAfter: one(res.headers['retry-after']),
      text,
    };
  }
  const res = await undiciFetch(url, { method, body, dispatcher, signal });
  return {
    status: res.status,
    session: res.headers.get('x-session-id') ?? '',
    retryAfter: res.headers.get('retry-after'),
    text: await res.text(),
  };
}
