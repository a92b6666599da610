/**
 * A gateway to whoever leads a Consul lock key: `createLeaderProxy` (forwarding, waiting
 * for a leader, retries, 421s, upgrades) and `leaderHealth` of `@consul-leader/discovery/http`
 * on two `node:http` servers, with a graceful close; the health server can serve `/metrics`
 * too. Nothing of a proxy of its own: what it answers when is the SDK's (README.md).
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { z } from 'zod';
import type { LeaderDiscovery, LeaderHandle, LeaderOptions } from '@consul-leader/discovery';
import {
  type LeaderHealthOptions,
  type LeaderProxy,
  type LeaderProxyOptions,
  createLeaderProxy,
  leaderHealth,
} from '@consul-leader/discovery/http';

export interface LeaderGatewayOptions<T> extends LeaderProxyOptions<T> {
  /** The discovery to follow the key with. It stays yours: `close()` does not close it. */
  readonly discovery: LeaderDiscovery;
  /** The leader key. */
  readonly key: string;
  /** zod schema of the leader's descriptor (the key's value). */
  readonly schema: z.ZodType<T>;
  /** Other options of `discovery.follow()` (consistency, nullWhenUnreachableFor, ...). */
  readonly follow?: Omit<LeaderOptions<T>, 'schema'>;
  /** Options of the health server's `leaderHealth()`. */
  readonly health?: LeaderHealthOptions;
  /**
   * Answers `GET`/`HEAD /metrics` of the health server (as an OpenTelemetry
   * `PrometheusExporter`'s `getMetricsRequestHandler`); every other request stays
   * `leaderHealth()`'s. Default: none, `leaderHealth()` answers every path.
   */
  readonly metrics?: http.RequestListener;
  /** On `close()`, how long answers in flight may take before their connections are ended. Default 5 000 ms. */
  readonly graceMs?: number;
}

export interface LeaderGateway<T> {
  /** The proxy's server (requests and upgrades), not listening yet. */
  readonly server: http.Server;
  /**
   * The health server (`leaderHealth`, and `/metrics` with the `metrics` option), not listening
   * yet: listen on another port, or not at all.
   */
  readonly health: http.Server;
  /** The handle both route and report with. */
  readonly handle: LeaderHandle<T>;
  readonly proxy: LeaderProxy<T>;
  /**
   * Stops accepting; requests waiting for a leader get 503s, forwarded ones finish (up to
   * `graceMs`); stops following. The discovery stays open.
   */
  close(): Promise<void>;
}

export function createLeaderGateway<T>(options: LeaderGatewayOptions<T>): LeaderGateway<T> {
  const {
    discovery,
    key,
    schema,
    follow,
    health: healthOptions,
    metrics,
    graceMs = 5_000,
    ...proxyOptions
  } = options;
  const handle = discovery.follow(key, { ...follow, schema });
  let proxy: LeaderProxy<T>;
  try {
    proxy = createLeaderProxy(handle, proxyOptions);
  } catch (error) {
    handle.close(); // an invalid option
    throw error;
  }
  const server = http.createServer(proxy).on('upgrade', proxy.upgrade);
  const healthOf = leaderHealth(handle, healthOptions);
  const health = http.createServer(
    metrics === undefined
      ? healthOf
      : (req, res) => (isMetricsRequest(req) ? metrics(req, res) : healthOf(req, res)),
  );

  let closing: Promise<void> | undefined;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Node keeps an idle keep-alive connection open after close(): while closing, each ends once answered.
  server.on('request', (_req, res: http.ServerResponse) =>
    res.once('finish', () => closing && server.closeIdleConnections()),
  );
  const closed = (s: http.Server): Promise<void> =>
    new Promise((resolve) => (s.listening ? s.close(() => resolve()) : resolve()));

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const stopped = Promise.all([closed(server), closed(health)]);
      health.closeAllConnections();
      const grace = setTimeout(() => sockets.forEach((socket) => socket.destroy()), graceMs).unref();
      await proxy.close(); // waiting requests: 503 now; forwarded ones finish
      handle.close();
      server.closeIdleConnections();
      await stopped;
      clearTimeout(grace);
    })());

  return { server, health, handle, proxy, close };
}

/** `GET` or `HEAD` of `/metrics` (whatever the query). */
function isMetricsRequest(req: http.IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.url?.split('?', 1)[0] === '/metrics';
}
