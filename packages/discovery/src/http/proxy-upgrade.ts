/**
 * Upgrades (WebSocket) through the proxy: the upgrade request goes to the leader of the
 * moment through the dispatcher (so it waits for a leader and is sent again after a 421
 * like any request); once the leader switches protocols the two sockets are joined.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { LeaderDiscoveryError } from '../errors.js';
import type { LeaderDispatcher } from './dispatcher.js';
import { forwardedHeaders, responseHeaders } from './forwarded-headers.js';
import type { DispatchController, DispatchHandler } from './handlers.js';
import { errorAnswer } from './proxy-errors.js';

type Headers = Record<string, string | string[] | undefined>;

interface UpgradeSettings {
  readonly preserveHost: boolean;
  readonly headersTimeout: number;
  readonly retryAfter: string;
}

/** An HTTP/1.1 head: status line and headers. */
function head(status: number, message: string, headers: Headers): string {
  const lines = [`HTTP/1.1 ${status} ${message}`];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export function proxyUpgrade<T>(
  dispatcher: LeaderDispatcher<T>,
  settings: UpgradeSettings,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, first) => {
    // A client that goes away must not become an unhandled 'error' in the user's process.
    socket.on('error', () => socket.destroy());
    dispatcher.dispatch(
      {
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as 'GET',
        headers: forwardedHeaders(req, settings.preserveHost),
        upgrade: String(req.headers.upgrade ?? 'websocket'),
        body: null,
        headersTimeout: settings.headersTimeout,
      },
      new UpgradeHandler(socket, first, settings.retryAfter),
    );
  };
}

class UpgradeHandler implements DispatchHandler {
  private answered = false;
  private readonly gone: () => void;
  private controller: DispatchController | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly first: Buffer,
    private readonly retryAfter: string,
  ) {
    this.gone = () => this.controller?.abort(new Error('the client closed the connection'));
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    this.socket.once('close', this.gone);
  }

  onRequestUpgrade(_c: DispatchController, status: number, headers: Headers, upstream: Duplex): void {
    this.socket.off('close', this.gone);
    this.answered = true;
    if (this.socket.destroyed) {
      upstream.destroy();
      return;
    }
    // The 101 keeps its Connection/Upgrade headers: they are what it says.
    this.socket.write(head(status, 'Switching Protocols', headers));
    if (this.first.length > 0) upstream.write(this.first);
    upstream.on('error', () => this.socket.destroy());
    this.socket.on('error', () => upstream.destroy());
    upstream.pipe(this.socket).pipe(upstream);
  }

  // The leader did not switch protocols: its answer is passed on, and the connection closed.
  onResponseStart(_c: DispatchController, status: number, headers: Headers, message?: string): void {
    this.answered = true;
    this.socket.write(head(status, message ?? '', { ...responseHeaders(headers), connection: 'close' }));
  }

  onResponseData(_c: DispatchController, chunk: Buffer): void {
    this.socket.write(chunk);
  }

  onResponseEnd(): void {
    this.socket.end();
  }

  onResponseError(_c: DispatchController, error: Error): void {
    this.socket.off('close', this.gone);
    if (this.answered || this.socket.destroyed || !(error instanceof LeaderDiscoveryError)) {
      this.socket.destroy();
      return;
    }
    const { status, body } = errorAnswer(error);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
      ...(status === 504 ? {} : { 'retry-after': this.retryAfter }),
    };
    const message =
      status === 503 ? 'Service Unavailable' : status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
    this.socket.end(head(status, message, headers) + body);
  }
}
