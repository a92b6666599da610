/**
 * The HTTP glue: relays `watchPrefix()` to one client as Server-Sent Events on
 * a Node `http.ServerResponse`. The events themselves are built in events.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Observable, Subscription } from 'rxjs';
import type { PrefixState } from '../discovery.js';
import { InvalidOptionError } from '../errors.js';
import { formatSseComment, formatSseEvent, formatSseRetry, leaderEventJson, leaderEvents } from './events.js';
import { DEFAULT_HEARTBEAT_MS } from '../config/defaults.js';

export interface ServeLeaderEventsOptions {
  /** Interval of the `: heartbeat` comment that keeps proxies from closing an idle stream (default 15000; 0: none). */
  readonly heartbeatMs?: number;
  /** `retry:` sent first: how long a client waits before reconnecting, in ms (default: the browser's). */
  readonly retryMs?: number;
  /** Extra response headers (CORS, for instance). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface LeaderEventStream {
  /** Stops relaying and ends the response (also done when the client disconnects or the stream completes). */
  close(): void;
  /** Resolves once the relay stopped, for whatever reason. */
  readonly closed: Promise<void>;
}

export { DEFAULT_HEARTBEAT_MS };

/**
 * Writes `states$` (from `discovery.watchPrefix(prefix)`) to `res` as an event
 * stream: a `snapshot`, then `state`, `removed` and `consul` events as things
 * change, each with a monotonic `id` (continuing after a reconnecting client's
 * `Last-Event-ID`), and a comment heartbeat. Unsubscribes when the client goes.
 *
 * A client that reads slower than states change is sent the latest state, not
 * every one in between: while the socket's buffer is full, only the last state
 * is kept, and the events from what the client has to it are written on `drain`.
 */
export function serveLeaderEvents<T>(
  req: IncomingMessage,
  res: ServerResponse,
  states$: Observable<PrefixState<T>>,
  options: ServeLeaderEventsOptions = {},
): LeaderEventStream {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  if (!(heartbeatMs >= 0) || !Number.isFinite(heartbeatMs)) {
    throw new InvalidOptionError(
      `invalid option heartbeatMs: must be a finite number >= 0, got ${heartbeatMs}`,
    );
  }
  const lastEventId = Number(req.headers['last-event-id']);
  let id = Number.isSafeInteger(lastEventId) && lastEventId > 0 ? lastEventId : 0;

  let resolveClosed = (): void => undefined;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let done = false;
  let heartbeat: NodeJS.Timeout | undefined;
  // What the client was last sent; while `blocked`, the latest state not sent yet.
  let previous: PrefixState<T> | undefined;
  let blocked = false;
  let pending: PrefixState<T> | undefined;
  const subscription = new Subscription();

  res.writeHead(200, {
    ...options.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // nginx: do not buffer the stream.
    'x-accel-buffering': 'no',
  });
  res.write(
    options.retryMs === undefined ? formatSseComment('leader events') : formatSseRetry(options.retryMs),
  );

  const stop = (): void => {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    subscription.unsubscribe();
    req.off('close', stop);
    res.off('close', stop);
    res.off('drain', drained);
    if (!res.writableEnded) res.end();
    resolveClosed();
  };

  const send = (state: PrefixState<T>): void => {
    const events = leaderEvents(previous, state);
    previous = state;
    if (events.length === 0) return;
    blocked = !res.write(events.map((e) => formatSseEvent(++id, e.event, leaderEventJson(e))).join(''));
  };
  function drained(): void {
    blocked = false;
    const state = pending;
    pending = undefined;
    if (state && !done) send(state);
  }

  req.on('close', stop);
  res.on('close', stop);
  // A write to a connection the client reset: stop, not an unhandled 'error' (kept after stop).
  res.on('error', stop);
  res.on('drain', drained);
  if (heartbeatMs > 0) {
    heartbeat = setInterval(() => {
      // A stream with bytes still queued is not idle.
      if (!done && !blocked) res.write(formatSseComment('heartbeat'));
    }, heartbeatMs);
    heartbeat.unref();
  }

  // A replayed value (shareReplay) arrives synchronously, inside subscribe(); a closed
  // `subscription` (completed at once) unsubscribes what is added to it.
  subscription.add(
    states$.subscribe({
      next(state) {
        if (done) return;
        if (blocked) pending = state;
        else send(state);
      },
      error: stop,
      complete: stop,
    }),
  );
  return { close: stop, closed };
}
