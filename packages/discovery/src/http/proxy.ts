/**
 * `createLeaderProxy(handle, options)`: a reverse proxy to the leader, as a `node:http`
 * request handler (Express and Connect take it as middleware) with an upgrade handler.
 * It sends through a `leaderDispatcher` of its own, so it routes, waits and retries the
 * same way; what the dispatcher gives up on becomes an answer: 503 with `Retry-After`
 * (no leader), 504 (the leader's answer did not come in time) or 502 (anything else).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Duration } from '../config/options.js';
import { InvalidOptionError, LeaderDiscoveryError, LeaderRequestError } from '../errors.js';
import type { LeaderHandle } from '../state/follow-handle.js';
import { type LeaderDispatcher, leaderDispatcher } from './dispatcher.js';
import { forwardedHeaders, responseHeaders } from './forwarded-headers.js';
import type { DispatchController, DispatchHandler } from './handlers.js';
import { type LeaderDispatcherOptions, durationOption } from './options.js';
import { errorAnswer } from './proxy-errors.js';
import { proxyUpgrade } from './proxy-upgrade.js';

/** How long the proxy waits for the leader's answer. */
export interface LeaderProxyTimeouts {
  /** The leader's answer headers must come within this (then 504). Default `'30s'`. */
  readonly headers?: Duration;
  /** Longest pause between two chunks of the leader's answer; `0` for none. Default `'5m'`. */
  readonly body?: Duration;
}

/** What the proxy does with a request it cannot forward: answer it, or hand the error on. */
export type LeaderProxyErrorMode =
  'respond' | 'next' | ((error: LeaderDiscoveryError, req: IncomingMessage, res: ServerResponse) => void);

/** Options of `createLeaderProxy()`: the dispatcher's, and the proxy's own. */
export interface LeaderProxyOptions<T> extends LeaderDispatcherOptions<T> {
  /** `Retry-After` (seconds) of the 503 (no leader) and 502 answers. Default 1. */
  readonly retryAfterSeconds?: number;
  /** How long to wait for the leader's answer (then 504). */
  readonly timeouts?: LeaderProxyTimeouts;
  /** Pass the client's `Host` on. Default false: the upstream `Host` is the leader's origin. */
  readonly preserveHost?: boolean;
  /**
   * A request that cannot be forwarded: `'respond'` (default) answers 503/502/504 itself;
   * `'next'` calls Express/Connect's `next(error)` when there is one; a function is given the error.
   */
  readonly onError?: LeaderProxyErrorMode;
}

/** A `node:http` request handler (and Express/Connect middleware) forwarding to the leader. */
export interface LeaderProxy<T> {
  /** Forwards one request; `next` is Express/Connect's (used with `onError: 'next'`). */
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** The `'upgrade'` handler: forwards WebSocket (and other) upgrades to the leader of the moment. */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The dispatcher it forwards through (its own). */
  readonly dispatcher: LeaderDispatcher<T>;
  /** Stops forwarding: requests in flight finish, waiting ones get 503s. The handle stays yours. */
  close(): Promise<void>;
}

const DEFAULT_HEADERS_TIMEOUT = '30s';
const DEFAULT_BODY_TIMEOUT = '5m';

/**
 * A reverse proxy to the leader: `http.createServer(proxy).on('upgrade', proxy.upgrade)`, or
 * `app.use(proxy)` under Express or Connect. Each request goes to the leader of the moment
 * through a `leaderDispatcher` of its own (same options: it waits for a leader, and sends
 * again what is safe to send again); a request it cannot forward is answered 503 with
 * `Retry-After` (no leader), 504 (no answer in `timeouts.headers`) or 502.
 */
export function createLeaderProxy<T>(
  handle: LeaderHandle<T>,
  options: LeaderProxyOptions<T>,
): LeaderProxy<T> {
  const retryAfterSeconds = options.retryAfterSeconds ?? 1;
  if (!Number.isInteger(retryAfterSeconds) || retryAfterSeconds < 0) {
    throw new InvalidOptionError('retryAfterSeconds: expected a whole number of seconds');
  }
  const headersTimeout = durationOption(
    'timeouts.headers',
    options.timeouts?.headers,
    DEFAULT_HEADERS_TIMEOUT,
  );
  const bodyTimeout = durationOption('timeouts.body', options.timeouts?.body, DEFAULT_BODY_TIMEOUT);
  const preserveHost = options.preserveHost === true;
  const onError = options.onError ?? 'respond';
  const dispatcher = leaderDispatcher(handle, options);
  const retryAfter = String(retryAfterSeconds);

  const proxy = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    const failed = (error: LeaderDiscoveryError): void => {
      req.resume(); // a body nobody reads: let the connection be reused
      if (typeof onError === 'function') return onError(error, req, res);
      if (onError === 'next' && next) return next(error);
      const { status, body } = errorAnswer(error);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        ...(status === 504 ? {} : { 'retry-after': retryAfter }),
      });
      res.end(body);
    };
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    dispatcher.dispatch(
      {
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as 'GET',
        headers: forwardedHeaders(req, preserveHost),
        body: hasBody ? req : null,
        headersTimeout,
        bodyTimeout,
      },
      new ProxiedResponse(req, res, failed),
    );
  };

  return Object.assign(proxy, {
    upgrade: proxyUpgrade(dispatcher, { preserveHost, headersTimeout, retryAfter }),
    dispatcher,
    close: () => dispatcher.close(),
  });
}

/** The leader's answer, streamed to the client as it comes, with back-pressure both ways. */
class ProxiedResponse implements DispatchHandler {
  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly failed: (error: LeaderDiscoveryError) => void,
  ) {}

  onRequestStart(controller: DispatchController): void {
    // The client went away (or its upload broke): the leader's request is aborted too.
    const gone = (): void => {
      if (!this.res.writableFinished) controller.abort(new Error('the client closed the connection'));
    };
    this.res.once('close', gone);
    this.req.once('error', gone);
  }

  onResponseStart(
    _c: DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
    message?: string,
  ): void {
    this.res.writeHead(status, message, responseHeaders(headers));
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_c: DispatchController, error: Error): void {
    if (this.res.destroyed) return; // the client is gone: nobody to tell
    if (this.res.headersSent) {
      this.res.destroy(error); // the leader failed mid-answer: the client sees it cut short
      return;
    }
    // The dispatcher fails with the SDK's errors; anything else is a failed forward all the same.
    this.failed(
      error instanceof LeaderDiscoveryError
        ? error
        : new LeaderRequestError('', '', error.message, { cause: error }),
    );
  }
}
