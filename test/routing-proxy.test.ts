/**
 * createLeaderProxy() (issue #15) against a real Consul agent and real HTTP backends in this
 * process: what the leader receives (path, body, headers, X-Forwarded-*, Host), what the
 * client gets back (streamed as it comes), 503/502/504 with their codes, a 421 the client
 * never sees, a client abort that reaches the leader, and the proxy under Express.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type LeaderProxy, type LeaderProxyOptions, createLeaderProxy } from '@consul-leader/discovery/http';
import { useAgent } from './support/agent.js';
import { type LocalBackend, startLocalBackend } from './support/local-backend.js';
import { until } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number(), name: z.string() });
type Node = z.output<typeof Node>;

const env = useAgent({ discovery: true });
const uniqueKey = (): string => env.uniqueKey('proxy');

const backend = (name: string): Promise<LocalBackend> => startLocalBackend(name, env.consul, env.defer);

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  env.defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A proxy for a key led by `leader` (none: vacant), served by node:http. */
async function proxied(
  leader: LocalBackend | undefined,
  options: Partial<LeaderProxyOptions<Node>> = {},
): Promise<{ key: string; url: string; proxy: LeaderProxy<Node> }> {
  const key = uniqueKey();
  if (leader) await leader.lead(key);
  const handle = env.discovery.follow(key, { schema: Node });
  env.defer(() => handle.close());
  const proxy = createLeaderProxy(handle, {
    origin: (l) => `http://${l.node.host}:${l.node.port}`,
    ...options,
  });
  env.defer(() => proxy.close());
  const url = await listen(http.createServer(proxy).on('upgrade', proxy.upgrade));
  await handle.ready();
  if (leader)
    await until('the handle sees the leader', () => handle.current?.session.id === leader.sessionId);
  return { key, url, proxy };
}

describe('createLeaderProxy', () => {
  it('forwards method, path, query, body and end-to-end headers; X-Forwarded-* added; Host is the leader', async () => {
    const b1 = await backend('b1');
    const { url } = await proxied(b1);
    // node:http, not fetch: fetch does not send a Connection header of the caller's.
    const status = await new Promise<{ status: number; session: unknown }>((resolve, reject) => {
      const req = http.request(`${url}/orders/7?x=1`, {
        method: 'POST',
        headers: {
          'x-forwarded-for': '203.0.113.9',
          'x-trace': 'abc',
          connection: 'keep-alive, x-drop-me',
          'x-drop-me': 'hop',
          'keep-alive': 'timeout=5',
          'content-type': 'text/plain',
        },
        agent: false,
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, session: res.headers['x-session-id'] }));
      });
      req.on('error', reject);
      req.end('payload');
    });
    expect(status).toEqual({ status: 200, session: b1.sessionId });
    const seen = b1.lastReceived();
    expect(seen).toMatchObject({ method: 'POST', url: '/orders/7?x=1', body: 'payload' });
    expect(seen.headers['x-trace']).toBe('abc');
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(url).host);
    expect(seen.headers.host).toBe(new URL(b1.origin).host);
  });

  it('preserveHost passes the client Host on', async () => {
    const b1 = await backend('b1');
    const { url } = await proxied(b1, { preserveHost: true });
    await (await fetch(`${url}/`)).text();
    expect(b1.lastReceived().headers.host).toBe(new URL(url).host);
  });

  it("streams the leader's answer as it comes", async () => {
    const b1 = await backend('b1');
    const { url } = await proxied(b1);
    const res = await fetch(`${url}/stream`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    // The first chunk is in before the backend has written the last one (150 ms later).
    expect(new TextDecoder().decode(first.value)).toBe('chunk-1\n');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('chunk-2\nchunk-3\n');
  });

  it('no leader: 503 with Retry-After and the code; a leader that refuses: 502; a slow one: 504', async () => {
    const { url } = await proxied(undefined, { waitForLeader: 0, retryAfterSeconds: 3 });
    const vacant = await fetch(`${url}/`);
    expect(vacant.status).toBe(503);
    expect(vacant.headers.get('retry-after')).toBe('3');
    expect(await vacant.json()).toEqual({ error: { code: 'NO_LEADER', message: 'no leader to forward to' } });

    const b1 = await backend('b1');
    const { url: refusing } = await proxied(b1, { waitForLeader: 200 });
    await b1.stopListening();
    const bad = await fetch(`${refusing}/`);
    expect(bad.status).toBe(502);
    expect(await bad.json()).toMatchObject({ error: { code: 'LEADER_REQUEST_FAILED' } });

    const b2 = await backend('b2');
    const { url: slow } = await proxied(b2, { timeouts: { headers: 200 } });
    const late = await fetch(`${slow}/hold`);
    expect(late.status).toBe(504);
  });

  it('a POST answered 421 during a step-down reaches the next leader; the client never sees the 421', async () => {
    const b1 = await backend('b1');
    const b2 = await backend('b2');
    const { key, url } = await proxied(b1, { waitForLeader: '5s' });
    b1.behaviour = 'not-leader';
    const pending = fetch(`${url}/pay`, { method: 'POST', body: 'order-9' });
    await until('b1 refused it', () => b1.received.length === 1);
    await b1.stepDown(key);
    await b2.lead(key);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-session-id')).toBe(b2.sessionId);
    expect(b2.lastReceived()).toMatchObject({ method: 'POST', body: 'order-9' });
  });

  it("a client that goes away aborts the leader's request", async () => {
    const b1 = await backend('b1');
    const { url } = await proxied(b1);
    const controller = new AbortController();
    const pending = fetch(`${url}/hold`, { signal: controller.signal }).catch((e: unknown) => e);
    await until('the leader has the request', () => b1.received.some((r) => r.url === '/hold'));
    controller.abort();
    await pending;
    await until('the leader saw the client go', () => b1.holdsClosed === 1);
  });

  it('a bad option throws INVALID_OPTION at once, naming it', () => {
    using handle = env.discovery.follow(uniqueKey(), { schema: Node });
    const origin = (l: { node: Node }): string => `http://${l.node.host}:${l.node.port}`;
    const invalid = (options: Partial<LeaderProxyOptions<Node>>): unknown => {
      try {
        createLeaderProxy(handle, { origin, ...options });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(invalid({ timeouts: { headers: {} as never } })).toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('timeouts.headers'),
    });
    expect(invalid({ waitForLeader: 'soon' })).toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('waitForLeader'),
    });
    expect(invalid({ retryAfterSeconds: -1 })).toMatchObject({ code: 'INVALID_OPTION' });
    expect(invalid({ notLeaderStatus: 99 })).toMatchObject({ code: 'INVALID_OPTION' });
  });

  it("under Express: forwards as middleware; onError: 'next' hands the typed error to Express", async () => {
    const b1 = await backend('b1');
    const key = uniqueKey();
    await b1.lead(key);
    const handle = env.discovery.follow(key, { schema: Node });
    env.defer(() => handle.close());
    const proxy = createLeaderProxy(handle, {
      origin: (l) => `http://${l.node.host}:${l.node.port}`,
      onError: 'next',
      waitForLeader: 0,
    });
    env.defer(() => proxy.close());
    const app = express();
    app.use('/api', proxy);
    app.use(
      (
        error: { code?: string },
        _req: express.Request,
        res: express.Response,
        _next: express.NextFunction,
      ) => {
        res.status(599).json({ handledBy: 'express', code: error.code });
      },
    );
    const url = await listen(http.createServer(app));
    await handle.ready();
    const res = await fetch(`${url}/api/orders?id=3`);
    expect(res.status).toBe(200);
    // Express strips the mount path: the leader sees the path below it.
    expect(b1.lastReceived().url).toBe('/orders?id=3');
    handle.close();
    const failed = await fetch(`${url}/api/orders`);
    expect(failed.status).toBe(599);
    expect(await failed.json()).toEqual({ handledBy: 'express', code: 'DISCOVERY_CLOSED' });
  });
});
