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
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import { type Dispatcher, Pool, WebSocket, fetch as undiciFetch, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Leader,
  type LeaderDiscovery,
  type LeaderHandle,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { type LeaderProxy, createLeaderProxy } from '@consul-leader/discovery/http';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { delay, until } from './support/recorder.js';
import {
  type Backend,
  type Backends,
  type BackendStats,
  type Holders,
  followHolders,
  startBackends,
} from './support/routing-backends.js';

const Node = z.object({ host: z.string(), port: z.number(), name: z.string() });
type Node = z.output<typeof Node>;
const originOf = (leader: Leader<Node>): string => `http://${leader.node.host}:${leader.node.port}`;

interface Echo {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  readonly sessionId: string;
  readonly headers: Record<string, string | undefined>;
}

/** Half the dispatcher test's 20: the proxy adds a hop to every request. */
const STEP_DOWNS = 10;
/** Short, so two contenders are usually campaigning; a step-down still waits for one (below). */
const REJOIN_MS = 300;
/** Requests answered after the proxy's handle saw each new leader, before the next step-down. */
const REQUESTS_AFTER_CHANGE = 40;

const stamp = Date.now();
const plannedKey = `routing/proxy-failover-${stamp}/planned`;
const crashKey = `routing/proxy-failover-${stamp}/crash`;

let agent: ConsulAgent;
let discovery: LeaderDiscovery;
let planned: Backends | undefined;
let crash: Backends | undefined;
let plannedHolders: Holders | undefined;
let crashHolders: Holders | undefined;
/** What each test opened, closed after it in reverse order (whether it passed or not). */
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  agent = await startConsulAgent();
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
  // Before the backends: the record starts with the key's first holder.
  plannedHolders = followHolders(agent.address, plannedKey);
  crashHolders = followHolders(agent.address, crashKey);
  // Both sets at once (process start-up dominates); the crash set idles until the last test.
  const [a, b] = await Promise.allSettled([
    startBackends({ consulAddress: agent.address, key: plannedKey, ttl: '10s', lockDelay: '0s' }),
    // 10s is the shortest TTL Consul accepts; the lock-delay keeps the key vacant after the crash.
    startBackends({ consulAddress: agent.address, key: crashKey, ttl: '10s', lockDelay: '1s' }),
  ]);
  if (a.status === 'fulfilled') planned = a.value;
  if (b.status === 'fulfilled') crash = b.value;
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // already closed by the test
    }
  }
});

afterAll(async () => {
  plannedHolders?.stop();
  crashHolders?.stop();
  discovery?.close();
  await Promise.all([planned?.close(), crash?.close()]);
  await agent?.destroy();
});

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start`);
  return value;
}

/** The session a backend last reported leading with. */
function leaderSession(backend: Backend): string {
  const event = [...backend.events].reverse().find((e) => e.type === 'leader');
  if (event?.type !== 'leader') throw new Error(`${backend.name} never led`);
  return event.sessionId;
}

/** Polls the backends' stats until `check` holds for them; the deadline only fails a stuck test. */
async function untilStats(
  backends: readonly Backend[],
  what: string,
  check: (stats: BackendStats[]) => boolean,
  timeoutMs = 10_000,
): Promise<BackendStats[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(backends.map((b) => b.stats()));
    if (check(all)) return all;
    if (performance.now() > deadline) {
      const brief = all.map((s) => ({
        name: s.name,
        leader: s.leader,
        open: s.openConnections,
        ws: s.openWebSockets,
      }));
      throw new Error(`not reached within ${timeoutMs} ms: ${what}: ${JSON.stringify(brief)}`);
    }
    await delay(25);
  }
}

const why = (error: unknown): string =>
  error instanceof Error
    ? `${error.name} ${String((error as { code?: unknown }).code ?? '')}: ${error.message}${error.cause ? ` <- ${why(error.cause)}` : ''}`
    : String(error);

const idOf = (url: string): string | null => new URL(url, 'http://backend').searchParams.get('id');

// ---- the proxy, served by node:http

interface Front {
  /** `http://127.0.0.1:port` */
  readonly url: string;
  /** A client's connections to the proxy (not the proxy's to the backends). */
  readonly client: Pool;
}

/**
 * `http.createServer(proxy).on('upgrade', proxy.upgrade)`, and a client Pool to it; both closed
 * after the test. `onHead` sees each answer's status as the proxy writes it (so a test can tell
 * what the handle named at the very moment the proxy decided how to answer).
 */
async function serve(
  proxy: LeaderProxy<Node>,
  onHead?: (req: http.IncomingMessage, status: number) => void,
): Promise<Front> {
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
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new Pool(url, { connections: 16 });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    () => client.destroy(),
  );
  return { url, client };
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

// ---- the client's own record of what the proxy's handle named

interface Named {
  readonly session: string | null;
  readonly origin: string | null;
  /** When the test saw it (`performance.now()`). */
  readonly at: number;
}

/**
 * Every value `handle.changes` showed, in order. Subscribed after the proxy's dispatcher
 * (the stream is shared), so each entry is pushed in the same synchronous emission that set
 * `handle.current` and told the dispatcher: `at` is never before the proxy knew.
 */
class HandleLog {
  readonly named: Named[] = [];
  private readonly subscription: Subscription;

  constructor(handle: LeaderHandle<Node>, onChange?: (entry: Named, named: readonly Named[]) => void) {
    this.subscription = handle.changes.subscribe((leader) => {
      const session = leader?.session.id ?? null;
      if (this.named.length > 0 && this.named[this.named.length - 1]?.session === session) return;
      const entry = { session, origin: leader ? originOf(leader) : null, at: performance.now() };
      this.named.push(entry);
      onChange?.(entry, this.named);
    });
    cleanups.push(() => this.stop());
  }

  /** The index of the entry naming `session`; -1 when the handle never named it. */
  indexOf(session: string): number {
    return this.named.findIndex((n) => n.session === session);
  }

  /** When the test first saw the handle name something else than `session` (Infinity: not yet). */
  lostAt(session: string): number {
    const i = this.indexOf(session);
    return i < 0 ? -Infinity : (this.named[i + 1]?.at ?? Infinity);
  }

  sessions(): string[] {
    return this.named.flatMap((n) => (n.session === null ? [] : [n.session]));
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

// ---- when each attempt's bytes left the proxy, seen from inside its pools

/** One attempt that a pool put on a connection (the dispatcher's own last check passed). */
interface Start {
  readonly id: string | null;
  readonly origin: string;
  readonly at: number;
  /** What the handle named at that moment. */
  readonly named: string | null;
  readonly namedOrigin: string | null;
}

/** Passes everything through; records the attempts whose bytes leave. */
class StartObserver implements Dispatcher.DispatchHandler {
  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    private readonly started: () => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.inner.onRequestStart?.(controller, context);
    // Not aborted here: undici writes the request to the socket right after this returns.
    if (!controller.aborted) this.started();
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>): void {
    this.inner.onRequestUpgrade?.(...args);
  }

  onResponseStart(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>): void {
    this.inner.onResponseStart?.(...args);
  }

  onResponseData(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseData']>>): void {
    this.inner.onResponseData?.(...args);
  }

  onResponseEnd(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>): void {
    this.inner.onResponseEnd?.(...args);
  }

  onResponseError(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseError']>>): void {
    this.inner.onResponseError?.(...args);
  }
}

/** The proxy's default pool (`new Pool(origin)`), observed: the backends only know when a request arrived. */
function observedPools(handle: LeaderHandle<Node>, starts: Start[]): (origin: string) => Dispatcher {
  return (origin) =>
    new Pool(origin).compose(
      (dispatch) => (options, handler) =>
        dispatch(
          options,
          new StartObserver(handler, () => {
            const leader = handle.current;
            starts.push({
              id: idOf(options.path),
              origin,
              at: performance.now(),
              named: leader?.session.id ?? null,
              namedOrigin: leader ? originOf(leader) : null,
            });
          }),
        ),
    );
}

// ---- a gate in front of Consul: holds what Consul answers a discovery, so its handle lags

interface Gate {
  readonly port: number;
  /** From now on Consul's answers are kept back (in order)... */
  hold(): void;
  /** ...and now passed on. */
  release(): void;
  close(): Promise<void>;
}

async function startGate(host: string, port: number): Promise<Gate> {
  let holding = false;
  const held: Array<() => void> = [];
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host, port, noDelay: true });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', () => {
      if (holding) held.push(end);
      else end();
    });
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (holding) held.push(() => client.write(chunk));
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const step of held.splice(0)) step();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [client, upstream] of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

// ---- requests

interface Kind {
  readonly via: 'request' | 'fetch';
  readonly method: 'GET' | 'POST';
  readonly route: string;
}

const KINDS: readonly Kind[] = [
  { via: 'request', method: 'GET', route: '/echo' },
  { via: 'request', method: 'POST', route: '/echo' },
  { via: 'fetch', method: 'GET', route: '/echo' },
  { via: 'fetch', method: 'POST', route: '/echo' },
  // Answered 25 ms after they arrive: some are in flight when a leader steps down.
  { via: 'request', method: 'POST', route: '/slow?ms=25' },
  { via: 'fetch', method: 'GET', route: '/slow?ms=25' },
];

interface Answer {
  readonly status: number;
  /** The backend's `x-session-id` ('' for the proxy's own answers). */
  readonly session: string;
  readonly retryAfter: string | null;
  readonly text: string;
}

const pathOf = (route: string, id: string): string => `${route}${route.includes('?') ? '&' : '?'}id=${id}`;
const one = (value: string | string[] | undefined): string | null =>
  value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;

/** One request to the proxy at `front`, through its client Pool. */
async function exchange(
  front: Front,
  via: Kind['via'],
  method: Kind['method'],
  path: string,
  body: string | undefined,
  signal?: AbortSignal,
): Promise<Answer> {
  const url = `${front.url}${path}`;
  const dispatcher = front.client;
  if (via === 'request') {
    const res = await request(url, { method, body, dispatcher, signal });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      session: one(res.headers['x-session-id']) ?? '',
      retryAfter: one(res.headers['retry-after']),
      text,
    };
  }
  const res = await undiciFetch(url, { method, body, dispatcher, signal });
  return {
    status: res.status,
    session: res.headers.get('x-session-id') ?? '',
    retryAfter: res.headers.get('retry-after'),
    text: await res.text(),
  };
}

/** The `{ error: { code } }` of one of the proxy's own answers. */
function codeOf(answer: Answer | undefined): string | undefined {
  try {
    return (JSON.parse(answer?.text ?? '') as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

interface Sent {
  readonly id: string;
  readonly kind: Kind;
  readonly path: string;
  readonly body: string | undefined;
  readonly dispatchedAt: number;
  /** The index in HandleLog.named of what the handle named when the request was made. */
  readonly namedAtDispatch: number;
  answeredAt?: number;
  answer?: Answer;
  error?: unknown;
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
    const set = need(planned, 'the planned backends');
    const holders = need(plannedHolders, 'followHolders');
    const first = await set.leader();
    const starts: Start[] = [];
    const handle = discovery.follow(plannedKey, { schema: Node });
    cleanups.push(() => handle.close());
    const proxy = createLeaderProxy(handle, {
      origin: originOf,
      waitForLeader: '1s',
      factory: observedPools(handle, starts),
    });
    cleanups.push(() => proxy.dispatcher.destroy());
    const log = new HandleLog(handle);
    const front = await serve(proxy);

    let running = true;
    const sent: Sent[] = [];
    let nextId = 0;
    const loops = KINDS.map(async (kind) => {
      while (running) {
        const id = `r${++nextId}`;
        const path = pathOf(kind.route, id);
        const body = kind.method === 'POST' ? `body-${id}` : undefined;
        const record: Sent = {
          id,
          kind,
          path,
          body,
          dispatchedAt: performance.now(),
          namedAtDispatch: log.named.length - 1,
        };
        sent.push(record);
        try {
          record.answer = await exchange(front, kind.via, kind.method, path, body);
        } catch (error) {
          record.error = error;
        }
        record.answeredAt = performance.now();
      }
    });
    const answeredSince = (at: number): number => {
      let count = 0;
      for (let i = sent.length - 1; i >= 0; i -= 1) {
        const r = sent[i];
        if (!r || r.dispatchedAt <= at) break;
        if (r.answeredAt !== undefined) count += 1;
      }
      return count;
    };

    try {
      await until(
        'the proxy names the first leader',
        () => handle.current?.session.id === leaderSession(first),
      );
      for (let step = 1; step <= STEP_DOWNS; step += 1) {
        const old = await set.leader(10_000);
        const oldSession = leaderSession(old);
        await until(
          `step ${step}: the proxy names ${old.name}`,
          () => handle.current?.session.id === oldSession,
        );
        // Without a contender the key would stay vacant until the stepped-down one rejoins.
        const others = set.backends.filter((b) => b !== old);
        await untilStats(others, `step ${step}: a contender`, (all) =>
          all.some((s) => s.sessionId !== null && !s.leader),
        );
        const from = holders.changes.length;
        expect(await old.stepDown(REJOIN_MS)).toBe(oldSession);
        const next = await holders.waitFor((c) => c.session !== null && c.session !== oldSession, {
          from,
          timeoutMs: 10_000,
        });
        await until(
          `step ${step}: the proxy sees ${String(next.session)}`,
          () => handle.current?.session.id === next.session,
          10_000,
        );
        const seenAt = performance.now();
        await until(
          `step ${step}: requests after the change`,
          () => answeredSince(seenAt) >= REQUESTS_AFTER_CHANGE,
        );
        // The old leader's pool was closed on the change: its connections end once their requests have.
        await untilStats(
          [old],
          `step ${step}: no connection open to ${old.name}`,
          ([s]) => s?.openConnections === 0,
        );
      }
    } finally {
      running = false;
      // After a failure, nothing may keep the loops waiting: the proxy answers 503 at once.
      if (!(await Promise.race([Promise.all(loops).then(() => true), delay(10_000).then(() => false)]))) {
        await proxy.dispatcher.destroy();
        await Promise.all(loops);
      }
    }

    const arrivals = await Promise.all(
      set.backends.map(async (b) => ({ backend: b, stats: await b.stats() })),
    );

    // proxy.close() and the handle's close() leave no connection to any backend open.
    await front.client.close();
    await proxy.close();
    handle.close();
    log.stop();
    await untilStats(set.backends, 'no connection open after close()', (all) =>
      all.every((s) => s.openConnections === 0),
    );

    // -- every request answered 200 by a backend: no 421, 502 or 503 reached a client
    for (const kind of KINDS) expect(sent.filter((r) => r.kind === kind).length).toBeGreaterThan(0);
    const failed = sent.filter((r) => r.error !== undefined || r.answer?.status !== 200);
    expect(
      failed.map(
        (r) =>
          `${r.id} ${r.kind.via} ${r.kind.method} ${r.path}: ${r.answer ? `${r.answer.status} ${r.answer.text}` : why(r.error)}`,
      ),
    ).toEqual([]);
    // The echo: method, path and body as sent, through this proxy, by the leader that stamped the answer.
    const misanswered = sent.flatMap((r) => {
      const echo = JSON.parse(r.answer?.text ?? '') as Echo;
      const ok =
        echo.method === r.kind.method &&
        echo.url === r.path &&
        echo.body === (r.body ?? '') &&
        echo.sessionId === r.answer?.session &&
        echo.headers['x-forwarded-host'] === new URL(front.url).host &&
        echo.headers.host === new URL(log.named[log.indexOf(echo.sessionId)]?.origin ?? 'http://-').host;
      return ok ? [] : [`${r.id}: ${r.answer?.text ?? ''}`];
    });
    expect(misanswered).toEqual([]);

    // -- the proxy's record follows Consul's: every holder, in order, each named once
    const proxySessions = log.sessions();
    expect(new Set(proxySessions).size).toBe(proxySessions.length);
    expect(proxySessions).toHaveLength(STEP_DOWNS + 1);
    const consulSessions = holders.changes.flatMap((c) => (c.session === null ? [] : [c.session]));
    const firstSeen = consulSessions.indexOf(proxySessions[0] ?? '');
    expect(firstSeen).toBeGreaterThanOrEqual(0);
    expect(consulSessions.slice(firstSeen)).toEqual(proxySessions);
    // ...and so did the answers each client loop got, one after another: leaders in Consul's order.
    for (const kind of KINDS) {
      const order = sent
        .filter((r) => r.kind === kind)
        .map((r) => consulSessions.indexOf(r.answer?.session ?? ''))
        .filter((i, k, all) => k === 0 || all[k - 1] !== i);
      expect(
        order.filter((i, k) => i < firstSeen || (k > 0 && i < (order[k - 1] ?? Infinity))),
        `${kind.via} ${kind.method} ${kind.route}: ${order.join(' ')}`,
      ).toEqual([]);
    }

    // -- every answer came from the leader named at dispatch or a later one, and only once
    //    the proxy had seen that one named
    const misordered = sent.flatMap((r) => {
      const session = r.answer?.session ?? '';
      const i = log.indexOf(session);
      const namedAt = log.named[i]?.at ?? Infinity;
      const ok = i >= r.namedAtDispatch && namedAt <= (r.answeredAt ?? -Infinity);
      return ok ? [] : [`${r.id}: answered by ${session} (#${i}), named #${r.namedAtDispatch} at dispatch`];
    });
    expect(misordered).toEqual([]);

    // -- bytes left the proxy only toward the leader the handle named at that very moment
    expect(starts.filter((s) => s.named === null || s.namedOrigin !== s.origin)).toEqual([]);

    // -- what reached the backends: each request served once, by the leader that answered it;
    //    nothing reached a backend unless it was sent before the proxy saw that leader lose
    const startsOf = new Map<string, Start[]>();
    for (const s of starts) {
      const key = `${s.id} ${s.origin}`;
      startsOf.set(key, [...(startsOf.get(key) ?? []), s]);
    }
    const served = new Map<string, string[]>();
    const arrivedAt = new Map<string, number>();
    const unexplained: string[] = [];
    let misdirected = 0;
    let afterLoss = 0;
    for (const { backend, stats } of arrivals) {
      for (const r of stats.requests) {
        const id = idOf(r.url);
        const what = `${backend.name} got ${r.method} ${r.url} (${r.leader ? 'leading' : 'not leading'}, session ${r.sessionId || '-'})`;
        if (id === null || !id.startsWith('r')) {
          // Left by other tests of this file (none run before this one).
          unexplained.push(`${what}: not this test's`);
          continue;
        }
        const key = `${id} ${backend.origin}`;
        arrivedAt.set(key, (arrivedAt.get(key) ?? 0) + 1);
        // The attempt that carried it: sent while the handle named this leadership of this
        // backend (a 421 may carry '' if the backend had already destroyed that session).
        const carrier = (startsOf.get(key) ?? []).find((s) =>
          r.leader ? s.named === r.sessionId : r.sessionId === s.named || r.sessionId === '',
        );
        if (!carrier?.named) {
          unexplained.push(`${what}: no attempt was sent to it while the handle named it`);
          continue;
        }
        const lostAt = log.lostAt(carrier.named);
        if (!(carrier.at < lostAt)) unexplained.push(`${what}: sent after the proxy saw it lose`);
        if (r.at > lostAt) afterLoss += 1; // in flight when the loss was seen: allowed
        if (r.leader) served.set(id, [...(served.get(id) ?? []), r.sessionId]);
        else misdirected += 1;
      }
    }
    for (const [key, count] of arrivedAt) {
      const sentCount = startsOf.get(key)?.length ?? 0;
      if (count > sentCount) unexplained.push(`${key}: arrived ${count} times, sent ${sentCount}`);
    }
    expect(unexplained).toEqual([]);
    // Each request (POST bodies included) served exactly once, by the leader whose answer the client got.
    expect(sent.filter((r) => served.get(r.id)?.join() !== r.answer?.session).map((r) => r.id)).toEqual([]);
    expect(served.size).toBe(sent.length);
    // Requests did meet backends that had stepped down (and were sent on): the path was exercised.
    expect(misdirected).toBeGreaterThan(0);
    console.info(
      `proxy planned: ${sent.length} requests, ${misdirected} answered 421 and sent on, ${afterLoss} arrived after the proxy saw the loss (sent before)`,
    );
  });

  it('a WebSocket opened while the leader steps down (it answers 421, the proxy still names it) connects to the next leader', async () => {
    const set = need(planned, 'the planned backends');
    const holders = need(plannedHolders, 'followHolders');
    // This proxy's discovery reads Consul through a gate: held, its handle keeps naming the
    // leader that has stepped down, which is the window a real proxy has for a few ms.
    const gate = await startGate(agent.host, agent.port);
    cleanups.push(() => gate.close());
    const gated = createLeaderDiscovery({ consul: { host: agent.host, port: gate.port } });
    cleanups.push(() => gated.close());
    const { handle, proxy } = proxyOf(gated, plannedKey, { waitForLeader: '10s' });
    const front = await serve(proxy);
    const wsUrl = (id: string): string => `${front.url.replace('http:', 'ws:')}/ws?id=${id}`;
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
    const set = need(planned, 'the planned backends');
    const { handle, proxy } = proxyOf(discovery, plannedKey, { waitForLeader: '5s' });
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

    await front.client.close();
    await proxy.close();
    handle.close();
    await untilStats(set.backends, 'no connection open after close()', (all) =>
      all.every((s) => s.openConnections === 0),
    );
  });

  it('a SIGKILLed leader, one crash for two proxies: the POST it had received is answered 502; GETs complete on the next leader (30s) or are answered 503/502 by what the handle named (500ms)', async () => {
    const set = need(crash, 'the crash backends');
    const holders = need(crashHolders, 'followHolders');
    const dead = await set.leader();
    const deadSession = leaderSession(dead);
    // Both proxies follow the key through the same handle: one crash, seen the same by both.
    const handle = discovery.follow(crashKey, { schema: Node });
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
    const pending: Array<Promise<void>> = [];
    const nextNamed = (): boolean => {
      const session = handle.current?.session.id;
      return session !== undefined && session !== deadSession;
    };

    interface Outcome {
      readonly id: string;
      readonly what: string;
      readonly namedAtDispatch: number;
      answer?: Answer;
      error?: unknown;
    }
    const outcomes: Outcome[] = [];
    let n = 0;
    const get = (
      front: Front,
      what: string,
      via: Kind['via'] = 'request',
      route = '/echo',
    ): Promise<Outcome> => {
      const outcome: Outcome = { id: `${what}-${++n}`, what, namedAtDispatch: log.named.length - 1 };
      outcomes.push(outcome);
      return exchange(front, via, 'GET', pathOf(route, outcome.id), undefined).then(
        (answer) => {
          outcome.answer = answer;
          return outcome;
        },
        (error: unknown) => {
          outcome.error = error;
          return outcome;
        },
      );
    };
    let vacancySeen = false;
    // The moment the key is seen vacant (the dead session invalidated, the lock-delay
    // running), a request to each proxy: the hasty one is answered 503 NO_LEADER.
    const log = new HandleLog(handle, (entry, named) => {
      if (entry.session !== null || named.length < 2 || vacancySeen) return;
      vacancySeen = true;
      pending.push(get(hastyFront, 'hasty-vacant').then(() => undefined));
      pending.push(get(patientFront, 'patient-vacant', 'fetch').then(() => undefined));
    });

    await until('the proxies name the leader', () => handle.current?.session.id === deadSession);
    const warm = await get(patientFront, 'warm');
    expect(warm.answer).toMatchObject({ status: 200, session: deadSession });

    // A POST the leader has received (never answered), and a GET it is still answering, when it dies.
    const from = dead.events.length;
    const post = exchange(patientFront, 'request', 'POST', '/hold?id=post-1', 'order-1').then(
      (answer) => answer,
      (error: unknown) => why(error),
    );
    await dead.waitFor((e) => e.type === 'holdArrived' && e.url === '/hold?id=post-1', {
      from,
      timeoutMs: 10_000,
    });
    const slow = get(patientFront, 'patient-reset', 'request', '/slow?ms=1500');
    await untilStats([dead], 'the GET reached the leader', ([s]) =>
      Boolean(s?.requests.some((r) => r.url.includes('patient-reset'))),
    );
    dead.kill();
    expect((await dead.exited()).signal).toBe('SIGKILL');

    // Its connection broke after the POST was sent: answered 502 at once, not after a wait for the next leader.
    const nextLeader = until('the next leader', () => nextNamed(), 40_000).then(
      () => 'still pending when the next leader was named',
      () => 'still pending, and no next leader',
    );
    const postAnswer = await Promise.race([post, nextLeader]);
    expect(postAnswer).toMatchObject({ status: 502, retryAfter: '1', session: '' });
    expect(JSON.parse((postAnswer as Answer).text)).toEqual({
      error: { code: 'LEADER_REQUEST_FAILED', message: 'the leader did not answer' },
    });
    expect(handle.current?.session.id).toBe(deadSession);

    // Meanwhile: patient GETs (refused by the dead process, then waiting), and hasty ones one
    // after another until the proxies name the next leader.
    pending.push(get(patientFront, 'patient-refused').then(() => undefined));
    pending.push(get(patientFront, 'patient-refused', 'fetch').then(() => undefined));
    const deadline = performance.now() + 40_000;
    for (let i = 0; !nextNamed(); i += 1) {
      if (performance.now() > deadline) throw new Error(`no next leader: ${JSON.stringify(log.named)}`);
      await get(hastyFront, 'hasty');
      if (i === 4) pending.push(get(patientFront, 'patient-later').then(() => undefined));
    }
    const nextSession = handle.current?.session.id ?? '';
    const after = await get(hastyFront, 'hasty-after');
    expect(after.answer).toMatchObject({ status: 200, session: nextSession });
    const reset = await slow;
    await Promise.all(pending);

    // -- the key went vacant (TTL), then to another backend (after the lock-delay), in Consul and for the proxies
    const consulSessions = holders.changes.map((c) => c.session);
    expect(consulSessions.slice(consulSessions.indexOf(deadSession))).toEqual([
      deadSession,
      null,
      nextSession,
    ]);
    expect(log.named.map((e) => e.session)).toEqual([deadSession, null, nextSession]);
    expect(vacancySeen).toBe(true);

    // -- through the patient proxy, GETs completed with 200 on the next leader, the one whose
    //    connection broke mid-request included
    const patients = outcomes.filter((o) => o.what.startsWith('patient'));
    expect(patients.map((o) => o.what).sort()).toEqual([
      'patient-later',
      'patient-refused',
      'patient-refused',
      'patient-reset',
      'patient-vacant',
    ]);
    for (const o of patients) {
      expect(o.error === undefined ? o.answer : why(o.error), o.id).toMatchObject({
        status: 200,
        session: nextSession,
      });
    }
    expect(JSON.parse(reset.answer?.text ?? '')).toMatchObject({
      url: expect.stringContaining('patient-reset'),
    });

    // -- through the hasty proxy, the answer matches what the handle named when the wait ended:
    //    the dead leader still named (it refused them): 502; no leader at all: 503
    const hastyOnes = outcomes.filter((o) => o.what.startsWith('hasty') && o.what !== 'hasty-after');
    let refusedCount = 0;
    let vacantCount = 0;
    for (const o of hastyOnes) {
      const at = decided.get(o.id);
      const label = `${o.id} (named when answered: ${String(at?.named)})`;
      expect(o.error, label).toBeUndefined();
      expect(at?.status, label).toBe(o.answer?.status);
      if (at?.named === deadSession) {
        expect(o.answer, label).toMatchObject({ status: 502, retryAfter: '1', session: '' });
        expect(codeOf(o.answer), label).toBe('LEADER_REQUEST_FAILED');
        refusedCount += 1;
      } else if (at?.named === null) {
        expect(o.answer, label).toMatchObject({ status: 503, retryAfter: '1', session: '' });
        expect(codeOf(o.answer), label).toBe('NO_LEADER');
        vacantCount += 1;
      } else {
        // Woken by the next leader within its wait: answered by it.
        expect(o.answer, label).toMatchObject({ status: 200, session: nextSession });
      }
      // The proxy's own answers name no internal address.
      expect(o.answer?.text, label).not.toContain(String(dead.port));
    }
    expect(refusedCount).toBeGreaterThan(0);
    expect(vacantCount).toBeGreaterThan(0);
    for (const o of outcomes.filter((x) => x.answer?.status === 200)) {
      expect(log.indexOf(o.answer?.session ?? ''), o.id).toBeGreaterThanOrEqual(o.namedAtDispatch);
    }

    // -- the POST reached the dead leader once, and no other backend ever
    expect(dead.events.filter((e) => e.type === 'holdArrived')).toHaveLength(1);
    const alive = set.backends.filter((b) => b !== dead);
    const stats = await Promise.all(alive.map((b) => b.stats()));
    expect(stats.flatMap((s) => s.requests.filter((r) => r.url.startsWith('/hold')))).toEqual([]);
    expect(stats.flatMap((s) => s.requests.filter((r) => r.method !== 'GET'))).toEqual([]);
    // The reset GET was served once more, by the next leader.
    expect(
      stats.flatMap((s) => s.requests.filter((r) => r.url.includes('patient-reset') && r.leader)),
    ).toMatchObject([{ sessionId: nextSession }]);
    console.info(
      `proxy crash: ${hastyOnes.length} hasty requests, ${refusedCount} answered 502 (refused by the dead leader), ${vacantCount} answered 503 (no leader)`,
    );

    await Promise.all([patientFront.client.close(), hastyFront.client.close()]);
    await Promise.all([patient.close(), hasty.close()]);
    handle.close();
    await untilStats(alive, 'no connection open after close()', (all) =>
      all.every((s) => s.openConnections === 0),
    );
  });
});
