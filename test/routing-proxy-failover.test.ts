/**
 * The acceptance tests of createLeaderProxy (issue #15): "the same scenarios through
 * node:http, plus a WebSocket that connects to the leader, and a client abort that reaches
 * the backend". A real Consul agent, three real backend processes campaigning for a key
 * (test/support/routing-backends.ts), the proxy served by `http.createServer(proxy)` and
 * clients talking to it through undici; Consul's holder changes read independently
 * (followHolders).
 *
 * - 10 planned step-downs under continuous GETs and POSTs: every answer a backend's 200,
 *   each body served once by one leader, none sent to a backend after the proxy's handle
 *   saw it lose, no connection left open to an old leader (nor any after close()).
 * - A WebSocket opened while the leader steps down (it answers 421, the proxy still names
 *   it): the 421 is sent on like any answer, and the WebSocket connects to the next leader.
 * - A client that goes away: the leader's request is closed too.
 * - A SIGKILLed leader, one crash for two proxies: the POST it had received is answered 502
 *   LEADER_REQUEST_FAILED and sent nowhere else; GETs complete on the next leader (30s wait),
 *   or are answered 503 NO_LEADER / 502 LEADER_REQUEST_FAILED by what the handle named (500ms).
 *
 * The scenarios, records and checks shared with test/routing-failover.test.ts are in
 * test/support/routing-*.ts; what is this file's own is the client's path: a proxy served by
 * node:http, and the proxy's own answers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, WebSocket } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type LeaderDiscovery, type LeaderHandle, createLeaderDiscovery } from '@consul-leader/discovery';
import { type LeaderProxy, createLeaderProxy } from '@consul-leader/discovery/http';
import { until } from './support/recorder.js';
import type { BackendStats } from './support/routing-backends.js';
import { expectCrashRecovered, expectHastyByWhatWasNamed } from './support/routing-checks.js';
import { type Answer, type ClientPath, exchange, idOf, why } from './support/routing-client.js';
import { LeaderCrash } from './support/routing-crash.js';
import {
  Node,
  leaderSession,
  originOf,
  setUpFailoverBackends,
  untilNoConnectionOpen,
  untilStats,
} from './support/routing-failover-setup.js';
import { REJOIN_MS, plannedStepDowns } from './support/routing-step-downs.js';
import { startTcpProxy } from './support/tcp-proxy.js';

/** Half the dispatcher test's 20: the proxy adds a hop to every request. */
const STEP_DOWNS = 10;
const world = setUpFailoverBackends('proxy-failover');

/** What each test opened, closed after it in reverse order (whether it passed or not). */
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // already closed by the test
    }
  }
});

// ---- the proxy, served by node:http

/**
 * `http.createServer(proxy).on('upgrade', proxy.upgrade)`, and a client Pool to it (the
 * client's path: `http://127.0.0.1:port`); both closed after the test. `onHead` sees each
 * answer's status as the proxy writes it (so a test can tell what the handle named at the
 * very moment the proxy decided how to answer).
 */
async function serve(
  proxy: LeaderProxy<Node>,
  onHead?: (req: http.IncomingMessage, status: number) => void,
): Promise<ClientPath & { readonly dispatcher: Pool }> {
  const server = http.createServer((req, res) => {
    if (onHead) {
      const writeHead = res.writeHead;
      res.writeHead = function (this: http.ServerResponse, ...args: unknown[]) {
        onHead(req, args[0] as number);
        return Reflect.apply(writeHead, this, args) as http.ServerResponse;
      } as typeof res.writeHead;
    }
    proxy(req, res);
  });
  server.on('upgrade', proxy.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A client's connections to the proxy (not the proxy's to the backends).
  const dispatcher = new Pool(origin, { connections: 16 });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    () => dispatcher.destroy(),
  );
  return { origin, dispatcher };
}

/** A proxy over its own handle of `key` (closed after the test). */
function proxyOf(
  from: LeaderDiscovery,
  key: string,
  options: Omit<Parameters<typeof createLeaderProxy<Node>>[1], 'origin'>,
): { handle: LeaderHandle<Node>; proxy: LeaderProxy<Node> } {
  const handle = from.follow(key, { schema: Node });
  cleanups.push(() => handle.close());
  const proxy = createLeaderProxy(handle, { origin: originOf, ...options });
  // A test that failed half-way must not leave requests waiting.
  cleanups.push(() => proxy.dispatcher.destroy());
  return { handle, proxy };
}

/** The `{ error: { code } }` of one of the proxy's own answers. */
function codeOf(answer: Answer | undefined): string | undefined {
  try {
    return (JSON.parse(answer?.text ?? '') as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
// ---- WebSockets

interface OpenSocket {
  readonly ws: WebSocket;
  /** Sends `text`, resolves with the next message. */
  echo(text: string): Promise<string>;
  close(): Promise<void>;
}

/** Resolves once the WebSocket is open (rejects if it fails first); the deadline only fails a stuck test. */
function opened(ws: WebSocket, timeoutMs = 20_000): Promise<OpenSocket> {
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  ws.addEventListener('message', (event) => {
    messages.push(String(event.data));
    for (const waiter of [...waiters]) waiter();
  });
  const closed = new Promise<void>((resolve) => ws.addEventListener('close', () => resolve()));
  const socket: OpenSocket = {
    ws,
    echo: (text) =>
      new Promise((resolve, reject) => {
        const from = messages.length;
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no echo of ${text} within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = (): void => {
          const message = messages[from];
          if (message === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(message);
        };
        waiters.add(check);
        ws.send(text);
      }),
    close: async () => {
      if (ws.readyState !== WebSocket.CLOSED) ws.close(1000);
      await closed;
    },
  };
  cleanups.push(() => socket.close());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${ws.url}: not open within ${timeoutMs} ms`)),
      timeoutMs,
    );
    ws.addEventListener('open', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    ws.addEventListener('error', () => {
      clearTimeout(timer);
      reject(new Error(`${ws.url}: the WebSocket failed`));
    });
  });
}

describe('createLeaderProxy: failover with real backends', () => {
  it(`${STEP_DOWNS} planned step-downs under continuous load through node:http: no request fails or reaches a leader the proxy saw lose`, async () => {
    const { requests, misdirected, afterLoss } = await plannedStepDowns(
      world,
      STEP_DOWNS,
      async (handle, factory) => {
        const proxy = createLeaderProxy(handle, { origin: originOf, waitForLeader: '1s', factory });
        cleanups.push(() => proxy.dispatcher.destroy());
        const front = await serve(proxy);
        return {
          client: front,
          // After a failure, nothing may keep the loops waiting: the proxy answers 503 at once.
          destroy: () => proxy.dispatcher.destroy(),
          // With the handle's close(), it leaves no connection to any backend open.
          close: async () => {
            await front.dispatcher.close();
            await proxy.close();
          },
          // Sent on by this proxy, to the host of the leader that stamped the answer.
          echoAlso: (echo, leaderOrigin) =>
            echo.headers['x-forwarded-host'] === new URL(front.origin).host &&
            echo.headers.host === new URL(leaderOrigin ?? 'http://-').host,
        };
      },
    );
    console.info(
      `proxy planned: ${requests} requests, ${misdirected} answered 421 and sent on, ${afterLoss} arrived after the proxy saw the loss (sent before)`,
    );
  });

  it('a WebSocket opened while the leader steps down (it answers 421, the proxy still names it) connects to the next leader', async () => {
    const set = world.planned;
    const holders = world.plannedHolders;
    const { agent } = world;
    // This proxy's discovery reads Consul through a gate: held, its handle keeps naming the
    // leader that has stepped down, which is the window a real proxy has for a few ms.
    const gate = await startTcpProxy(agent.host, agent.port);
    cleanups.push(() => gate.close());
    const gated = createLeaderDiscovery({ consul: { host: agent.host, port: gate.port } });
    cleanups.push(() => gated.close());
    const { handle, proxy } = proxyOf(gated, world.plannedKey, { waitForLeader: '10s' });
    const front = await serve(proxy);
    const wsUrl = (id: string): string => `${front.origin.replace('http:', 'ws:')}/ws?id=${id}`;
    const upgradesOf = (stats: BackendStats, id: string): BackendStats['requests'] =>
      stats.requests.filter((r) => r.upgrade && r.url === `/ws?id=${id}`);

    const old = await set.leader(10_000);
    const oldSession = leaderSession(old);
    await until('the proxy names the leader', () => handle.current?.session.id === oldSession);

    // The leader of the moment.
    const before = await opened(new WebSocket(wsUrl('ws-before')));
    expect(await before.echo('hello')).toBe(`${old.name}:hello`);
    await before.close();

    const others = set.backends.filter((b) => b !== old);
    await untilStats(others, 'a contender', (all) => all.some((s) => s.sessionId !== null && !s.leader));
    gate.hold();
    const from = holders.changes.length;
    // Not leading from here on: every request, upgrades included, is answered 421.
    expect(await old.stepDown(REJOIN_MS)).toBe(oldSession);
    const next = await holders.waitFor((c) => c.session !== null && c.session !== oldSession, {
      from,
      timeoutMs: 10_000,
    });
    expect(handle.current?.session.id).toBe(oldSession);

    const during = new WebSocket(wsUrl('ws-during'));
    const duringOpen = opened(during);
    duringOpen.catch(() => undefined); // awaited below
    const [refused] = await untilStats([old], `${old.name} answered the upgrade`, ([s]) =>
      Boolean(s && upgradesOf(s, 'ws-during').length > 0),
    );
    // It was sent to the leader the proxy named, which refused it: the client sees nothing yet.
    expect(upgradesOf(refused ?? (await old.stats()), 'ws-during')).toMatchObject([{ leader: false }]);
    expect(during.readyState).toBe(WebSocket.CONNECTING);
    expect(handle.current?.session.id).toBe(oldSession);

    gate.release();
    const socket = await duringOpen;
    expect(handle.current?.session.id).toBe(next.session);
    const nextBackend = await set.leader(10_000);
    expect(leaderSession(nextBackend)).toBe(next.session);
    expect(await socket.echo('during')).toBe(`${nextBackend.name}:during`);

    // After the step-down, a new WebSocket reaches the next leader too.
    const after = await opened(new WebSocket(wsUrl('ws-after')));
    expect(await after.echo('after')).toBe(`${nextBackend.name}:after`);

    // Each upgrade reached the backends once per attempt: 421 from the old one, 101 from the next.
    const stats = await Promise.all(set.backends.map((b) => b.stats()));
    const upgrades = stats.flatMap((s) =>
      ['ws-before', 'ws-during', 'ws-after'].flatMap((id) =>
        upgradesOf(s, id).map((r) => ({ id, backend: s.name, leader: r.leader, sessionId: r.sessionId })),
      ),
    );
    expect(upgrades.sort((a, b) => a.id.localeCompare(b.id) || Number(a.leader) - Number(b.leader))).toEqual([
      { id: 'ws-after', backend: nextBackend.name, leader: true, sessionId: next.session },
      { id: 'ws-before', backend: old.name, leader: true, sessionId: oldSession },
      { id: 'ws-during', backend: old.name, leader: false, sessionId: expect.any(String) },
      { id: 'ws-during', backend: nextBackend.name, leader: true, sessionId: next.session },
    ]);

    await socket.close();
    await after.close();
    await proxy.close();
    handle.close();
    await untilStats(set.backends, 'no WebSocket or connection open after close()', (all) =>
      all.every((s) => s.openWebSockets === 0 && s.openConnections === 0),
    );
  });

  it('a client that goes away: the leader sees its request closed, and nothing is sent again', async () => {
    const set = world.planned;
    const { handle, proxy } = proxyOf(world.discovery, world.plannedKey, { waitForLeader: '5s' });
    const front = await serve(proxy);
    const leader = await set.leader(10_000);
    await until('the proxy names the leader', () => handle.current?.session.id === leaderSession(leader));

    const from = leader.events.length;
    const controllers = [new AbortController(), new AbortController()];
    const pending = [
      exchange(front, 'request', 'GET', '/hold?id=abort-get', undefined, controllers[0]?.signal),
      exchange(front, 'fetch', 'POST', '/hold?id=abort-post', 'order-2', controllers[1]?.signal),
    ].map((p) =>
      p.then(
        (answer) => `answered ${answer.status}`,
        (error: unknown) => error,
      ),
    );
    for (const url of ['/hold?id=abort-get', '/hold?id=abort-post']) {
      await leader.waitFor((e) => e.type === 'holdArrived' && e.url === url, { from, timeoutMs: 10_000 });
    }
    for (const controller of controllers) controller.abort();
    for (const outcome of await Promise.all(pending)) expect(outcome).toBeInstanceOf(Error);
    for (const url of ['/hold?id=abort-get', '/hold?id=abort-post']) {
      await leader.waitFor((e) => e.type === 'holdClosed' && e.url === url, { from, timeoutMs: 10_000 });
    }

    // Each reached the leader once, and no backend got it again.
    const stats = await Promise.all(set.backends.map((b) => b.stats()));
    const holds = stats.flatMap((s) =>
      s.requests.filter((r) => r.url.includes('id=abort-')).map((r) => `${s.name} ${r.method} ${r.url}`),
    );
    expect(holds.sort()).toEqual([
      `${leader.name} GET /hold?id=abort-get`,
      `${leader.name} POST /hold?id=abort-post`,
    ]);
    expect(handle.current?.session.id).toBe(leaderSession(leader));

    await front.dispatcher.close();
    await proxy.close();
    handle.close();
    await untilNoConnectionOpen(set.backends);
  });

  it('a SIGKILLed leader, one crash for two proxies: the POST it had received is answered 502; GETs complete on the next leader (30s) or are answered 503/502 by what the handle named (500ms)', async () => {
    const set = world.crash;
    const dead = await set.leader();
    // Both proxies follow the key through the same handle: one crash, seen the same by both.
    const handle = world.discovery.follow(world.crashKey, { schema: Node });
    cleanups.push(() => handle.close());
    const patient = createLeaderProxy(handle, { origin: originOf, waitForLeader: '30s' });
    cleanups.push(() => patient.dispatcher.destroy());
    const hasty = createLeaderProxy(handle, { origin: originOf, waitForLeader: 500 });
    cleanups.push(() => hasty.dispatcher.destroy());
    /** What the handle named when the hasty proxy wrote each answer's head (its wait had just ended). */
    const decided = new Map<string, { status: number; named: string | null }>();
    const patientFront = await serve(patient);
    const hastyFront = await serve(hasty, (req, status) => {
      const id = idOf(req.url ?? '/');
      if (id !== null) decided.set(id, { status, named: handle.current?.session.id ?? null });
    });
    const crash = new LeaderCrash(handle, dead, patientFront, hastyFront);
    cleanups.push(() => crash.log.stop());

    // Its connection broke after the POST was sent: answered 502 at once, not after a wait for the next leader.
    const post = await crash.killWithRequestsInFlight();
    expect(post.error === undefined ? post.answer : why(post.error)).toMatchObject({
      status: 502,
      retryAfter: '1',
      session: '',
    });
    expect(JSON.parse(post.answer?.text ?? '')).toEqual({
      error: { code: 'LEADER_REQUEST_FAILED', message: 'the leader did not answer' },
    });

    await crash.untilNextLeader();
    const alive = await expectCrashRecovered(crash, set, world.crashHolders);

    // Through the hasty proxy, the answer matches what the handle named when the wait ended:
    // the dead leader still named (it refused them): 502; no leader at all: 503.
    const hastyCounts = expectHastyByWhatWasNamed(crash, {
      namedWhenDecided: (o) => decided.get(o.id)?.named,
      each: (o, label) => {
        expect(o.error, label).toBeUndefined();
        expect(decided.get(o.id)?.status, label).toBe(o.answer?.status);
        // The proxy's own answers name no internal address.
        expect(o.answer?.text, label).not.toContain(String(dead.port));
      },
      deadNamed: (o, label) => {
        expect(o.answer, label).toMatchObject({ status: 502, retryAfter: '1', session: '' });
        expect(codeOf(o.answer), label).toBe('LEADER_REQUEST_FAILED');
      },
      noneNamed: (o, label) => {
        expect(o.answer, label).toMatchObject({ status: 503, retryAfter: '1', session: '' });
        expect(codeOf(o.answer), label).toBe('NO_LEADER');
      },
    });
    console.info(
      `proxy crash: ${hastyCounts.hasty} hasty requests, ${hastyCounts.refused} answered 502 (refused by the dead leader), ${hastyCounts.vacant} answered 503 (no leader)`,
    );

    await Promise.all([patientFront.dispatcher.close(), hastyFront.dispatcher.close()]);
    await Promise.all([patient.close(), hasty.close()]);
    handle.close();
    await untilNoConnectionOpen(alive);
  });
});
