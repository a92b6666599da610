/**
 * leaderDispatcher() (issue #15) against a real Consul agent and real HTTP backends in this
 * process, each scripted to answer, answer 421, break the connection, or not listen: what
 * reaches which leader, what waits, what is sent again and what fails with which error,
 * through undici's fetch and request and Node's global fetch.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fetch as undiciFetch, request } from 'undici';
import { z } from 'zod';
import {
  LeaderRequestError,
  NoLeaderError,
  type LeaderDispatcherOptions,
  leaderDispatcher,
} from '@consul-leader/discovery/http';
import { useAgent } from './support/agent.js';
import { type LocalBackend, startLocalBackend } from './support/local-backend.js';
import { delay, until } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number(), name: z.string() });
type Node = z.output<typeof Node>;
const origin: LeaderDispatcherOptions<Node>['origin'] = (leader) =>
  `http://${leader.node.host}:${leader.node.port}`;

const env = useAgent({ discovery: true });
const uniqueKey = (): string => env.uniqueKey('routing');

const backend = (name: string): Promise<LocalBackend> => startLocalBackend(name, env.consul, env.defer);
const backends = async (): Promise<[LocalBackend, LocalBackend]> => [
  await backend('b1'),
  await backend('b2'),
];

/** A key led by `leader`, a handle on it that has seen that leader, and a dispatcher. */
async function routed(
  leader: LocalBackend | undefined,
  options: Partial<LeaderDispatcherOptions<Node>> = {},
) {
  const key = uniqueKey();
  if (leader) await leader.lead(key);
  const handle = env.discovery.follow(key, { schema: Node });
  const dispatcher = leaderDispatcher(handle, { origin, ...options });
  env.defer(() => handle.close());
  env.defer(() => dispatcher.close());
  await handle.ready();
  if (leader)
    await until('the handle sees the leader', () => handle.current?.session.id === leader.sessionId);
  return { key, handle, dispatcher };
}

/** The error `fetch` rejected with: fetch wraps a dispatcher's error as its `cause`. */
async function fetchError(promise: Promise<unknown>): Promise<unknown> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TypeError);
  return (error as TypeError).cause;
}

describe('leaderDispatcher: routing', () => {
  it("sends the request to the leader's origin with its path, query, method, headers and body", async () => {
    const b1 = await backend('b1');
    const { dispatcher } = await routed(b1);
    const res = await undiciFetch('http://leader.invalid/orders/42?x=1', {
      method: 'POST',
      headers: { 'x-trace': 'abc', 'content-type': 'text/plain' },
      body: 'hello',
      dispatcher,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-session-id')).toBe(b1.sessionId);
    const seen = b1.lastReceived();
    expect(seen).toMatchObject({ method: 'POST', url: '/orders/42?x=1', body: 'hello' });
    expect(seen.headers['x-trace']).toBe('abc');
    // Host is the leader's origin, not the URL the caller wrote.
    expect(seen.headers.host).toBe(new URL(b1.origin).host);
  });

  it("keeps a Host the caller set (undici's request), and works through Node's global fetch", async () => {
    const b1 = await backend('b1');
    const { dispatcher } = await routed(b1);
    const res = await request('http://leader.invalid/a', { headers: { host: 'orders.example' }, dispatcher });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(b1.lastReceived().headers.host).toBe('orders.example');

    const global = await fetch('http://leader.invalid/b', { dispatcher } as unknown as RequestInit);
    expect(global.status).toBe(200);
    expect(await global.json()).toMatchObject({ url: '/b', name: 'b1' });
  });

  it('a request made while there is no leader waits for one; after waitForLeader it fails with NO_LEADER', async () => {
    const b1 = await backend('b1');
    const { key, dispatcher } = await routed(undefined, { waitForLeader: '10s' });
    const pending = request('http://leader.invalid/wait', { dispatcher });
    await delay(300);
    await b1.lead(key);
    const res = await pending;
    expect(res.statusCode).toBe(200);
    await res.body.text();

    const { dispatcher: quick } = await routed(undefined, { waitForLeader: 200 });
    const error = await request('http://leader.invalid/x', { dispatcher: quick }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoLeaderError);
    expect(error).toMatchObject({ code: 'NO_LEADER', message: expect.stringContaining('200 ms') });

    const { dispatcher: now } = await routed(undefined, { waitForLeader: 0 });
    expect(await fetchError(undiciFetch('http://leader.invalid/x', { dispatcher: now }))).toMatchObject({
      code: 'NO_LEADER',
    });
  });

  it('an abort reaches a request that waits for a leader', async () => {
    const { dispatcher } = await routed(undefined, { waitForLeader: '30s' });
    const controller = new AbortController();
    const pending = request('http://leader.invalid/x', { dispatcher, signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    await delay(100);
    controller.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
  });
});

describe('leaderDispatcher: not the leader (421) and retries', () => {
  it('a POST answered 421 goes to the next leader; the caller never sees the 421', async () => {
    const [b1, b2] = await backends();
    const { key, handle, dispatcher } = await routed(b1, { waitForLeader: '5s' });
    // b1 says it is not the leader before the handle can know: the window of a planned step-down.
    b1.behaviour = 'not-leader';
    const pending = undiciFetch('http://leader.invalid/pay', { method: 'POST', body: 'order-1', dispatcher });
    await until('b1 refused it', () => b1.received.length === 1);
    await b1.stepDown(key);
    await b2.lead(key);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-session-id')).toBe(b2.sessionId);
    expect(b2.lastReceived()).toMatchObject({ method: 'POST', body: 'order-1' });
    expect(handle.current?.session.id).toBe(b2.sessionId);
  });

  it('a streamed body is sent again after a 421 (within retry.bodyLimit), and not past it', async () => {
    const [b1, b2] = await backends();
    const { key, dispatcher } = await routed(b1, { retry: { bodyLimit: 1024 } });
    b1.behaviour = 'not-leader';
    const small = request('http://leader.invalid/up', {
      method: 'POST',
      body: Readable.from(['part-1,', 'part-2']),
      dispatcher,
    });
    await until('b1 refused it', () => b1.received.length === 1);
    await b1.stepDown(key);
    await b2.lead(key);
    const res = await small;
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(b2.lastReceived().body).toBe('part-1,part-2');

    b2.behaviour = 'not-leader';
    const big = Buffer.alloc(4096, 'x');
    const error = await request('http://leader.invalid/up', {
      method: 'POST',
      body: Readable.from([big.subarray(0, 2048), big.subarray(2048)]),
      dispatcher,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaderRequestError);
    expect(error).toMatchObject({
      code: 'LEADER_REQUEST_FAILED',
      sessionId: b2.sessionId,
      origin: b2.origin,
    });
    expect((error as Error).message).toContain('retry.bodyLimit');
  });

  it('notLeaderStatus: false hands the 421 to the caller; attempts: 0 turns it into LEADER_REQUEST_FAILED', async () => {
    const b1 = await backend('b1');
    const { dispatcher } = await routed(b1, { notLeaderStatus: false });
    b1.behaviour = 'not-leader';
    expect((await undiciFetch('http://leader.invalid/', { dispatcher })).status).toBe(421);

    const { dispatcher: noRetry } = await routed(b1, { retry: { attempts: 0 } });
    b1.behaviour = 'not-leader';
    const error = await request('http://leader.invalid/', { dispatcher: noRetry }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LEADER_REQUEST_FAILED', sessionId: b1.sessionId });
    expect((error as Error).message).toContain('retry.attempts is 0');
  });

  it('a refused connection is sent again, whatever the method, once the next leader is known', async () => {
    const [b1, b2] = await backends();
    const { key, dispatcher } = await routed(b1, { waitForLeader: '10s' });
    await b1.stopListening(); // dead, but Consul does not know yet: its session holds the key
    const pending = undiciFetch('http://leader.invalid/pay', { method: 'POST', body: 'order-2', dispatcher });
    await delay(200);
    await b1.stepDown(key); // as if its session had expired
    await b2.lead(key);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(b2.lastReceived()).toMatchObject({ method: 'POST', body: 'order-2' });
  });

  it('a refused request fails with LEADER_REQUEST_FAILED when the handle still names that leader after waitForLeader', async () => {
    const b1 = await backend('b1');
    const { dispatcher } = await routed(b1, { waitForLeader: 300 });
    await b1.stopListening();
    const error = await request('http://leader.invalid/', { dispatcher }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaderRequestError);
    expect(error).toMatchObject({ origin: b1.origin, sessionId: b1.sessionId });
    expect((error as Error).message).toContain('still the leader');
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it('a connection reset after the request was sent: a GET goes to the next leader, a POST fails and is not sent again', async () => {
    const [b1, b2] = await backends();
    const { key, dispatcher } = await routed(b1, { waitForLeader: '10s' });
    b1.behaviour = 'reset';
    const post = await request('http://leader.invalid/pay', {
      method: 'POST',
      body: 'order-3',
      dispatcher,
    }).catch((e: unknown) => e);
    expect(post).toMatchObject({ code: 'LEADER_REQUEST_FAILED', sessionId: b1.sessionId });
    expect(b1.received.filter((r) => r.method === 'POST')).toHaveLength(1);

    const get = request('http://leader.invalid/read', { dispatcher });
    await until('b1 got the GET', () => b1.received.some((r) => r.method === 'GET'));
    await b1.stepDown(key);
    await b2.lead(key);
    const res = await get;
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(b2.lastReceived()).toMatchObject({ method: 'GET', url: '/read' });
    expect(b2.received.some((r) => r.method === 'POST')).toBe(false);
  });
});

describe('leaderDispatcher: connections and closing', () => {
  it("closes the old leader's idle connections once the handle sees a new one; close() leaves none open", async () => {
    const [b1, b2] = await backends();
    const { key, handle, dispatcher } = await routed(b1);
    for (let i = 0; i < 3; i += 1)
      await (await request('http://leader.invalid/', { dispatcher })).body.text();
    expect(b1.connections).toBeGreaterThan(0);
    await b1.stepDown(key);
    await b2.lead(key);
    await until('the handle sees b2', () => handle.current?.session.id === b2.sessionId);
    await until('no connection to b1 is open', () => b1.connections === 0);
    await (await request('http://leader.invalid/', { dispatcher })).body.text();
    expect(b2.connections).toBeGreaterThan(0);
    await dispatcher.close();
    await until('no connection to b2 is open', () => b2.connections === 0);
    const error = await request('http://leader.invalid/', { dispatcher }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DISCOVERY_CLOSED' });
  });

  it('closing the handle ends the routing: requests fail with DISCOVERY_CLOSED and connections close', async () => {
    const b1 = await backend('b1');
    const { handle, dispatcher } = await routed(b1);
    await (await request('http://leader.invalid/', { dispatcher })).body.text();
    handle.close();
    await until('no connection to b1 is open', () => b1.connections === 0);
    const error = await request('http://leader.invalid/', { dispatcher }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DISCOVERY_CLOSED' });
  });

  it('an origin() that throws, or gives no http(s) origin, fails the request with a typed error', async () => {
    const b1 = await backend('b1');
    const { dispatcher } = await routed(b1, { origin: () => 'ftp://nowhere' });
    const error = await request('http://leader.invalid/', { dispatcher }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LEADER_REQUEST_FAILED', sessionId: b1.sessionId });
    expect(() => leaderDispatcher(env.discovery.follow(uniqueKey()), { origin: 'x' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});
