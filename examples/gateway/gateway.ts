/**
 * A reverse proxy to whoever leads a Consul lock key, on Node's `http` alone.
 *
 * Each request is forwarded to the leader `handle.current` names at the moment the
 * request arrives (read once, synchronously, right before the upstream request is
 * sent; never cached), so no request is sent to a leader after the SDK has observed
 * its loss. While there is no leader, or before the first answer from Consul, the
 * gateway answers 503 with `Retry-After`. An upstream that cannot be reached (a
 * leader that died before Consul noticed) is a 502, never a crash.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { z } from 'zod';
import type { Leader, LeaderDiscovery, LeaderHandle, LeaderOptions } from '@consul-leader/discovery';

/** Where to send a request for a leader. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

export interface LeaderGatewayOptions<T> {
  /** The discovery to follow the key with. It stays yours: `close()` does not close it. */
  readonly discovery: LeaderDiscovery;
  /** The leader key. */
  readonly key: string;
  /** zod schema of the leader's descriptor (the key's value). */
  readonly schema: z.ZodType<T>;
  /** The address of a leader, from its descriptor (and session). */
  readonly target: (leader: Leader<T>) => Upstream;
  /** `Retry-After` (seconds) of 503 and 502 answers. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Other options of `discovery.follow()` (consistency, wait, nullWhenUnreachableFor, ...). */
  readonly follow?: Omit<LeaderOptions<T>, 'schema'>;
  /** An upstream that has not answered (headers) in this time is a 504. Default 30 000 ms. */
  readonly upstreamTimeoutMs?: number;
  /** The agent of upstream requests. Default: a keep-alive agent of the gateway's own. */
  readonly agent?: http.Agent;
}

export interface LeaderGateway<T> {
  /** The HTTP server, not listening yet: call `server.listen(...)`. */
  readonly server: http.Server;
  /** The handle the gateway routes with (`current`, `ready()`, `changes`). */
  readonly handle: LeaderHandle<T>;
  /** Stops following, stops accepting requests, ends open connections. The discovery stays open. */
  close(): Promise<void>;
}

/** Hop-by-hop headers (RFC 9110, 7.6.1) and `expect` (this gateway answers it): never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function appendForwardedFor(previous: string | string[] | undefined, address: string | undefined): string {
  const list = [previous].flat().filter((v): v is string => Boolean(v));
  if (address) list.push(address);
  return list.join(', ');
}

/** A request that can be sent again after a reset: safe method, no body. */
function repeatable(req: http.IncomingMessage): boolean {
  const method = req.method ?? 'GET';
  return (
    (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') &&
    req.headers['transfer-encoding'] === undefined &&
    (req.headers['content-length'] === undefined || req.headers['content-length'] === '0')
  );
}

export function createLeaderGateway<T>(options: LeaderGatewayOptions<T>): LeaderGateway<T> {
  const { discovery, key, schema, target } = options;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 30_000;
  // Node's agent closes idle sockets before the upstream's announced `Keep-Alive: timeout`.
  const ownAgent = options.agent ? undefined : new http.Agent({ keepAlive: true });
  const agent = options.agent ?? ownAgent;

  const handle = discovery.follow(key, { ...options.follow, schema });
  let ready = false;
  let closing: Promise<void> | undefined;
  handle.ready().then(
    () => (ready = true),
    () => undefined, // closed before the first answer: `current` stays null, 503s
  );

  const reply = (
    res: http.ServerResponse,
    status: number,
    body: Record<string, unknown>,
    headers: http.OutgoingHttpHeaders = {},
  ): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, retry = false): void => {
    // Read at the moment of forwarding (again on a retry): the upstream request below is sent in this same turn.
    // A closed handle keeps its last value, no longer followed: not used while closing.
    const leader = closing ? null : handle.current;
    if (leader === null) {
      req.resume(); // the body is not wanted; let the connection be reused
      const error = closing ? 'gateway closing' : ready ? 'no leader' : 'leader not known yet';
      reply(res, 503, { error, key }, { 'retry-after': retryAfter });
      return;
    }

    let upstream: Upstream;
    try {
      upstream = target(leader);
    } catch (error) {
      req.resume();
      reply(res, 500, {
        error: `target() failed: ${error instanceof Error ? error.message : String(error)}`,
      });
      return;
    }
    const address = `${upstream.host}:${upstream.port}`;

    const headers = endToEnd(req.headers);
    headers['x-forwarded-for'] = appendForwardedFor(req.headers['x-forwarded-for'], req.socket.remoteAddress);
    headers['x-forwarded-host'] ??= req.headers.host;
    headers['x-forwarded-proto'] ??= 'http';

    const proxied = http.request({
      host: upstream.host,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    });
    const timer = setTimeout(() => {
      reply(res, 504, { error: 'upstream timeout', upstream: address });
      proxied.destroy(new Error(`no answer from ${address} within ${upstreamTimeoutMs} ms`));
    }, upstreamTimeoutMs);

    proxied.on('response', (up) => {
      clearTimeout(timer);
      res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEnd(up.headers));
      up.pipe(res);
      up.on('error', () => res.destroy()); // cut short: the client sees a truncated answer
    });
    proxied.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // The client is gone, or the answer (a 504) is already given: nothing more to say.
      if (res.destroyed || res.writableEnded) return;
      if (res.headersSent) {
        res.destroy(); // the upstream failed mid-answer: the client sees a truncated answer
        return;
      }
      // A kept-alive connection the upstream had closed meanwhile (it died, or timed it out):
      // a request without a body that is safe to repeat is sent again, to the leader of now.
      if (!retry && proxied.reusedSocket && error.code === 'ECONNRESET' && repeatable(req)) {
        forward(req, res, true);
        return;
      }
      req.resume();
      // Refused or reset: most likely a leader that died before Consul noticed.
      reply(
        res,
        502,
        { error: 'upstream failed', upstream: address, code: error.code ?? error.message },
        { 'retry-after': retryAfter },
      );
    });
    // The client went away before the answer was complete: stop the upstream request too.
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished) proxied.destroy();
    });
    req.on('error', () => proxied.destroy()); // the client aborted while sending the body
    if (req.readableEnded)
      proxied.end(); // a retry: the (empty) body was read already
    else req.pipe(proxied);
  };

  const server = http.createServer((req, res) => forward(req, res));
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // WebSocket and other upgrades are not proxied.
  server.on('upgrade', (_req, socket: Socket) => {
    socket.end('HTTP/1.1 501 Not Implemented\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });

  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      handle.close();
      if (!server.listening) {
        ownAgent?.destroy();
        resolve();
        return;
      }
      server.close(() => {
        ownAgent?.destroy();
        resolve();
      });
      server.closeIdleConnections();
      // Requests in flight get a moment to finish, then their connections are ended.
      setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, 1_000).unref();
    });
    return closing;
  };

  return { server, handle, close };
}
