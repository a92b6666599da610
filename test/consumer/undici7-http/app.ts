// Type-checked (not run) under module nodenext with skipLibCheck false, against undici 7
// (this app) and undici 8 (undici8-http, which gets a copy of this file): the subpath
// @consul-leader/discovery/http with the app's own undici, leader.node inferred from a zod
// schema inside the origin callback, the dispatcher given to undici's fetch and request,
// the proxy and the health endpoint as node:http handlers, the errors narrowed.
import http from 'node:http';
import { z } from 'zod';
import { type Observable, map } from 'rxjs';
import { type Dispatcher, fetch, request } from 'undici';
import { type LeaderDiscovery, type LeaderHandle, createLeaderDiscovery } from '@consul-leader/discovery';
import {
  type LeaderDispatcher,
  type LeaderDispatcherOptions,
  type LeaderHealthBody,
  type LeaderProxy,
  LeaderRequestError,
  NoLeaderError,
  createLeaderProxy,
  leaderDispatcher,
  leaderHealth,
} from '@consul-leader/discovery/http';

const Node = z.object({ host: z.string(), port: z.number().int(), tls: z.boolean().optional() });
type Node = z.output<typeof Node>;

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export function route(discovery: LeaderDiscovery): LeaderDispatcher<Node> {
  const handle = discovery.follow('service/db/leader', { schema: Node });
  assertType<Equal<typeof handle, LeaderHandle<Node>>>();
  const dispatcher = leaderDispatcher(handle, {
    origin: (leader) => {
      assertType<Equal<typeof leader.node, Node>>();
      const host: string = leader.node.host;
      const port: number = leader.node.port;
      // @ts-expect-error `nope` is not in the schema's output
      void leader.node.nope;
      return `${leader.node.tls ? 'https' : 'http'}://${host}:${port}`;
    },
    waitForLeader: '2s',
    retry: { attempts: 1, bodyLimit: 64 * 1024 },
    notLeaderStatus: 421,
  });
  assertType<Equal<typeof dispatcher, LeaderDispatcher<Node>>>();
  // It is the app's undici's Dispatcher (one undici: the SDK's types resolve to the app's copy).
  const asDispatcher: Dispatcher = dispatcher;
  void asDispatcher;
  return dispatcher;
}

export async function getOrder(dispatcher: LeaderDispatcher<Node>, id: string): Promise<unknown> {
  try {
    const res = await fetch(`http://leader.invalid/orders/${encodeURIComponent(id)}`, { dispatcher });
    return await res.json();
  } catch (error) {
    // fetch wraps the dispatcher's error: the SDK's error is its cause.
    const cause = error instanceof TypeError ? error.cause : error;
    if (cause instanceof NoLeaderError) {
      const code: 'NO_LEADER' = cause.code;
      const key: string = cause.key;
      return { code, key };
    }
    throw error;
  }
}

export async function putOrder(dispatcher: LeaderDispatcher<Node>, body: string): Promise<number | string> {
  try {
    const { statusCode, body: answer } = await request('http://leader.invalid/orders', {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/json' },
      dispatcher,
    });
    await answer.dump();
    return statusCode;
  } catch (error) {
    if (error instanceof LeaderRequestError && error.code === 'LEADER_REQUEST_FAILED') {
      const origin: string = error.origin;
      const sessionId: string = error.sessionId;
      return `${origin} (${sessionId}): ${error.message}`;
    }
    if (error instanceof NoLeaderError) return error.code;
    throw error;
  }
}

export function serve(handle: LeaderHandle<Node>): { proxy: LeaderProxy<Node>; servers: http.Server[] } {
  const options: LeaderDispatcherOptions<Node> = {
    origin: (leader) => new URL(`http://${leader.node.host}:${leader.node.port}`),
  };
  const proxy = createLeaderProxy(handle, {
    ...options,
    retryAfterSeconds: 2,
    timeouts: { headers: '10s', body: 0 },
    onError: (error, _req, res) => {
      const code: string = error.code;
      res.writeHead(error.code === 'NO_LEADER' ? 503 : 502).end(code);
    },
  });
  assertType<Equal<typeof proxy, LeaderProxy<Node>>>();
  const gateway = http.createServer(proxy).on('upgrade', proxy.upgrade);
  const health = http.createServer(leaderHealth(handle, { vacantStatus: 503, unreachableStatus: 200 }));
  return { proxy, servers: [gateway, health] };
}

export function healthStatus(
  body: LeaderHealthBody,
): 'leader' | 'vacant' | 'invalid' | 'unreachable' | 'unknown' {
  return body.status;
}

export function hosts(handle: LeaderHandle<Node>): Observable<string | null> {
  return handle.changes.pipe(map((leader) => leader?.node.host ?? null));
}

export async function shutDown(
  discovery: LeaderDiscovery,
  dispatcher: LeaderDispatcher<Node>,
  proxy: LeaderProxy<Node>,
): Promise<void> {
  await proxy.close();
  await dispatcher.close();
  dispatcher.handle.close();
  discovery.close();
}

route(createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 8500 } }));
