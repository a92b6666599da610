/**
 * A small HTTP proxy placed between the SDK and a real Consul agent: it counts
 * requests and connections, and lets a test inject faults into chosen answers.
 * Consul itself is never replaced: every answer that is not a fault comes from it.
 */
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
  createServer,
  request as httpRequest,
  Agent,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** Status and `X-Consul-Index` of the answer, once sent (as the SDK saw it: after a fault's `rewrite`). */
  status?: number;
  index?: string;
}

/** An answer of Consul's as the proxy is about to send it on; header names are lowercase. */
export interface ProxiedAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * What to do with one request: forward it (maybe to another path, later,
 * with its body cut short, or with Consul's answer rewritten), answer it in
 * Consul's place, hold it forever (black hole), or reset its connection.
 */
export type FaultRule = (req: ProxiedRequest) =>
  | {
      readonly action: 'forward';
      readonly path?: string;
      readonly delayMs?: number;
      /** Send the headers and this many bytes of the body, then close the connection. */
      readonly truncateAfterBytes?: number;
      /**
       * Change Consul's answer (status, headers, body) before it is sent on, as a
       * complete HTTP answer: Content-Length is set to the new body's length.
       */
      readonly rewrite?: (answer: ProxiedAnswer) => ProxiedAnswer;
    }
  | { readonly action: 'hang' }
  | { readonly action: 'reset' }
  | {
      readonly action: 'respond';
      readonly status: number;
      readonly headers?: Record<string, string>;
      readonly body?: string;
    }
  | undefined;

export interface ConsulProxy {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly requests: ProxiedRequest[];
  /** Client connections open right now. */
  openConnections(): number;
  /** Client connections accepted since the proxy started. */
  connectionsAccepted(): number;
  /** Requests whose path starts with `prefix` that are waiting for their answer right now. */
  inFlight(prefix: string): number;
  rule: FaultRule | undefined;
  close(): Promise<void>;
}

export async function startProxy(
  target: { host: string; port: number },
  host = '127.0.0.1',
): Promise<ConsulProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const pending = new Set<ProxiedRequest>();
  const upstream = new Agent({ keepAlive: true });
  const proxy: ConsulProxy = {
    address: '',
    host,
    port: 0,
    requests: [],
    openConnections: () => sockets.size,
    connectionsAccepted: () => accepted,
    inFlight: (prefix) => [...pending].filter((r) => r.path.startsWith(prefix)).length,
    rule: undefined,
    close: async () => {
      for (const s of sockets) s.destroy();
      upstream.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    truncateAfterBytes?: number,
    rewrite?: (answer: ProxiedAnswer) => ProxiedAnswer,
  ): void => {
    const up = httpRequest(
      {
        host: target.host,
        port: target.port,
        method: req.method,
        path,
        headers: req.headers,
        agent: upstream,
      },
      (upRes) => {
        if (rewrite) {
          const chunks: Buffer[] = [];
          upRes.on('data', (chunk: Buffer) => chunks.push(chunk));
          upRes.on('end', () => {
            const answer = rewrite({
              status: upRes.statusCode ?? 502,
              headers: upRes.headers,
              body: Buffer.concat(chunks),
            });
            const headers: IncomingHttpHeaders = { ...answer.headers };
            delete headers['transfer-encoding'];
            headers['content-length'] = String(answer.body.length);
            noteIndex(res, headers['x-consul-index']);
            res.writeHead(answer.status, headers);
            if (truncateAfterBytes === undefined) {
              res.end(answer.body);
              return;
            }
            res.write(answer.body.subarray(0, truncateAfterBytes));
            setTimeout(() => res.socket?.destroy(), 50);
          });
          return;
        }
        noteIndex(res, upRes.headers['x-consul-index']);
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (truncateAfterBytes === undefined) {
          upRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upRes.on('end', () => {
          res.write(Buffer.concat(chunks).subarray(0, truncateAfterBytes));
          // Let the partial body leave, then cut the connection mid-body.
          setTimeout(() => res.socket?.destroy(), 50);
        });
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  };

  const seenOf = new WeakMap<ServerResponse, ProxiedRequest>();
  const noteIndex = (res: ServerResponse, index: string | string[] | undefined): void => {
    const entry = seenOf.get(res);
    if (entry && typeof index === 'string') entry.index = index;
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const seen: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      headers: req.headers,
    };
    proxy.requests.push(seen);
    seenOf.set(res, seen);
    pending.add(seen);
    res.on('close', () => {
      pending.delete(seen);
      // A request held (hang) or reset got no answer: no status.
      if (res.headersSent) seen.status = res.statusCode;
    });
    const decision = proxy.rule?.(seen);
    if (decision?.action === 'respond') {
      const index = Object.entries(decision.headers ?? {}).find(
        ([name]) => name.toLowerCase() === 'x-consul-index',
      );
      noteIndex(res, index?.[1]);
      res.writeHead(decision.status, { 'content-type': 'application/json', ...decision.headers });
      res.end(decision.body ?? '');
      return;
    }
    if (decision?.action === 'hang') return;
    if (decision?.action === 'reset') {
      req.socket.destroy();
      return;
    }
    const path = decision?.path ?? req.url ?? '/';
    const truncate = decision?.truncateAfterBytes;
    const rewrite = decision?.rewrite;
    if (decision?.delayMs) {
      const timer = setTimeout(() => forward(req, res, path, truncate, rewrite), decision.delayMs);
      res.on('close', () => clearTimeout(timer));
    } else {
      forward(req, res, path, truncate, rewrite);
    }
  });
  server.on('connection', (socket: Socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, { port, address: `${host}:${port}` });
}
