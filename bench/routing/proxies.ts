/**
 * The routing case's proxies, in a process of their own (bench/child.ts, plain JavaScript):
 *
 * - minimal: a `node:http` server whose handler `http.request`s the fixed upstream (the
 *   leader's address when it started) on a keep-alive `http.Agent`, pipes the request in and
 *   the answer back, headers passed as they are; 502 on an upstream error;
 * - SDK: a `node:http` server with `createLeaderProxy(handle, { origin })` as its handler and
 *   `proxy.upgrade` on `'upgrade'`, its handle following the key in this process.
 *
 * Only one of them is under load at a time (the rounds are interleaved).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Sdk from '@consul-leader/discovery';
import type * as SdkHttp from '@consul-leader/discovery/http';
import { serveParent } from '../in-child.js';
import type { Address, ProxiesRequest, ProxiesStarted } from './protocol.js';

const servers: http.Server[] = [];
const upstreamAgent = new http.Agent({ keepAlive: true });
let discovery: Sdk.LeaderDiscovery | undefined;
let handle: Sdk.LeaderHandle<unknown> | undefined;
let close: (() => Promise<void>) | undefined;

function minimalProxy(upstream: Address): http.RequestListener {
  return (req, res) => {
    const forward = http.request(
      {
        host: upstream.host,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: upstreamAgent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  };
}

async function listen(server: http.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function start(request: Extract<ProxiesRequest, { type: 'start' }>): Promise<ProxiesStarted> {
  const plainOrigin = await listen(http.createServer(minimalProxy(request.upstream)));
  const sdk = (await import(request.sdk)) as typeof Sdk;
  const sdkHttp = (await import(new URL('./http/index.js', request.sdk).href)) as Partial<typeof SdkHttp>;
  // Checked at run time: the SDK build measured may predate `createLeaderProxy`.
  if (typeof sdkHttp.createLeaderProxy !== 'function') return { plainOrigin, sdkOrigin: null };
  discovery = sdk.createLeaderDiscovery({ consul: request.consul });
  handle = discovery.follow(request.key);
  await handle.ready();
  const proxy = sdkHttp.createLeaderProxy(handle, {
    origin: (leader) => {
      const node = leader.node as { host: string; port: number };
      return `http://${node.host}:${node.port}`;
    },
  });
  close = () => proxy.close();
  const server = http.createServer(proxy);
  server.on('upgrade', proxy.upgrade);
  return { plainOrigin, sdkOrigin: await listen(server) };
}

async function handleRequest(request: ProxiesRequest): Promise<unknown> {
  switch (request.type) {
    case 'start':
      return start(request);
    case 'cpu': {
      const { user, system } = process.cpuUsage();
      return user + system;
    }
    case 'exit':
      return null;
  }
}

serveParent<ProxiesRequest>(handleRequest, async () => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await close?.();
  upstreamAgent.destroy();
  handle?.close();
  discovery?.close();
});
