/**
 * A live dashboard of every leader under a Consul KV prefix, on Node's `http` alone.
 *
 *   GET /         the page (page.html)
 *   GET /page.js  its script: plain browser ESM, no build step
 *   GET /vendor/  zod and @consul-leader/types as ESM, straight from node_modules
 *                 (the page's import map points `zod` and `@consul-leader/types` here)
 *   GET /events   `discovery.watchPrefix(prefix)` as Server-Sent Events (serveLeaderEvents)
 *
 * The page validates every payload with the SDK's own `leaderStateSchema()`.
 */
import { readFile, realpath } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Observable } from 'rxjs';
import {
  type LeaderDiscovery,
  type LeaderEventStream,
  type LeaderOptions,
  type PrefixState,
  serveLeaderEvents,
} from '@consul-leader/discovery';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Folders served under /vendor/<name>/: ESM builds the page imports through its import map. */
const VENDOR: Record<string, string> = {
  zod: dirname(require.resolve('zod/package.json')),
  types: join(dirname(require.resolve('@consul-leader/types/package.json')), 'dist'),
};

export interface DashboardOptions {
  /** The discovery to follow the prefix with. It stays yours: `close()` does not close it. */
  readonly discovery: LeaderDiscovery;
  /** The KV prefix whose leader keys the page shows (`service/`). */
  readonly prefix: string;
  /** Other options of `watchPrefix()` (consistency, wait, decode, ...). The descriptor is shown as JSON. */
  readonly watch?: Omit<LeaderOptions<unknown>, 'schema'>;
  /** Heartbeat of the event stream (default 15 s). */
  readonly heartbeatMs?: number;
}

export interface Dashboard {
  readonly server: http.Server;
  /** Event streams open now (one per page). */
  clients(): number;
  /** Ends the event streams, stops the server and closes its connections (the discovery stays open). */
  close(): Promise<void>;
}

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';

export function createDashboard(options: DashboardOptions): Dashboard {
  const states$: Observable<PrefixState<unknown>> = options.discovery.watchPrefix(options.prefix, {
    ...options.watch,
  });
  const streams = new Set<LeaderEventStream>();

  const sendFile = async (res: http.ServerResponse, file: string, type: string): Promise<void> => {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' }).end(body);
  };

  /** A .js file under a vendor folder, or undefined (no escaping the folder, no other files). */
  const vendorFile = async (path: string): Promise<string | undefined> => {
    const [, , name, ...rest] = path.split('/');
    const root = name === undefined ? undefined : VENDOR[name];
    if (!root || !path.endsWith('.js') || rest.some((part) => part === '..' || part === '')) return undefined;
    try {
      const file = await realpath(join(root, ...rest));
      return file.startsWith(root + sep) ? file : undefined;
    } catch {
      return undefined;
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/events') {
      const stream = serveLeaderEvents(req, res, states$, {
        heartbeatMs: options.heartbeatMs,
        retryMs: 2000,
      });
      streams.add(stream);
      void stream.closed.then(() => streams.delete(stream));
      return;
    }
    if (path === '/' || path === '/index.html') return sendFile(res, join(HERE, 'page.html'), HTML);
    if (path === '/page.js') return sendFile(res, join(HERE, 'page.js'), JS);
    if (path.startsWith('/vendor/')) {
      const file = await vendorFile(path);
      if (file) return sendFile(res, file, JS);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${error instanceof Error ? error.message : String(error)}\n`);
    });
  });

  return {
    server,
    clients: () => streams.size,
    async close() {
      for (const stream of streams) stream.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The event streams' connections would otherwise idle until their keep-alive timeout.
        server.closeAllConnections();
      });
    },
  };
}
