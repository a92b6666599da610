/**
 * examples/gateway against a real Consul dev agent: three backend HTTP servers in
 * this process campaign for a key (sessions with TTL 10s, behaviour `release`,
 * lock-delay 1s), the gateway forwards a continuous load to the leader, and the
 * leader is killed under that load.
 *
 * Every check is causal, with no tolerance and no wall-clock bound on speed
 * (deadlines only fail a stuck test), from three timelines on one clock
 * (`performance.now()` in this process):
 * - the test's own acquire and kill calls (Consul's truth, as the contenders made it);
 * - the gateway's view: `handle.changes`, recorded in the same synchronous emission
 *   that sets `handle.current` (so no request handler can run between the two);
 * - each request's `[sentAt, doneAt]`: the gateway read `handle.current` inside it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { type LeaderGateway, createLeaderGateway } from '../examples/gateway/gateway.js';
import { acquire, consulClient, createSession, destroySession } from './support/contender.js';
import { delay, until } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number().int(), name: z.string() });
type Node = z.output<typeof Node>;

const RETRY_AFTER_SECONDS = 2;
/** Lock-delay of the backends' sessions: after a crash the key stays vacant this long (503s). */
const LOCK_DELAY = '1s';
/** Concurrent request loops of the load. */
const WORKERS = 4;
/** Bounds of the load, so a stuck test ends; reaching one fails the waits below. */
const MAX_REQUESTS = 40_000;
const LOAD_MS = 45_000;
/** How many answers from a leader the load must see before the kill, and from the new one after. */
const BEFORE_KILL = 40;
const RESUMED = 40;

const now = (): number => performance.now();

let agent: ConsulAgent;
let consul: Consul;
let discovery: LeaderDiscovery;
let n = 0;
const uniqueKey = (): string => `gateway/t${++n}-${Date.now()}/leader`;

/** Teardowns of the running test, run in reverse order after it (pass or fail). */
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  discovery?.close();
  await agent?.destroy();
});

// ---- backends: HTTP servers that campaign for the key

interface Received {
  readonly id: string;
  readonly at: number;
}

interface Backend {
  readonly name: string;
  readonly server: http.Server;
  readonly port: number;
  readonly session: string;
  /** Requests that reached this backend's handler, by x-request-id, with the time. */
  readonly received: Map<string, Received>;
  /** False once killed: it stops campaigning and renewing. */
  alive: boolean;
  stop(): void;
}

/** One leadership, from the test's own calls: `from` is when the winning acquire was sent. */
interface Leadership {
  readonly backend: string;
  readonly session: string;
  readonly from: number;
  /** When the test killed it (its server closed, or its session destroyed): it leads no more. */
  killedAt?: number;
}

const listen = (server: http.Server): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

const closeServer = (server: http.Server): Promise<void> =>
  new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });

/** An HTTP server answering `{ "backend": name, ... }` (and echoing the request), with a session. */
async function startBackend(name: string): Promise<Backend> {
  const received = new Map<string, Received>();
  const server = http.createServer((req, res) => {
    const at = now();
    const id = String(req.headers['x-request-id'] ?? '');
    if (id) received.set(id, { id, at });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.stringify({
        backend: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(req.url?.startsWith('/created') ? 201 : 200, {
        'content-type': 'application/json',
        'x-backend': name,
        'set-cookie': ['a=1', 'b=2'],
      });
      res.end(body);
    });
  });
  const port = await listen(server);
  const session = await createSession(consul, {
    name,
    ttl: '10s',
    behavior: 'release',
    lockDelay: LOCK_DELAY,
  });
  const renew = setInterval(() => {
    if (backend.alive) consul.session.renew(session).catch(() => undefined);
  }, 5_000);
  const backend: Backend = {
    name,
    server,
    port,
    session,
    received,
    alive: true,
    stop() {
      backend.alive = false;
      clearInterval(renew);
    },
  };
  cleanups.push(async () => {
    backend.stop();
    await closeServer(server);
    await destroySession(consul, session).catch(() => undefined);
  });
  return backend;
}

const descriptorOf = (b: Backend): string =>
  JSON.stringify({ host: '127.0.0.1', port: b.port, name: b.name });

/**
 * Each backend tries `PUT ?acquire` every 100 ms while alive and not leading (a held
 * key, or a lock-delay, refuses it); whoever acquires leads, logged in `leaderships`.
 */
interface Campaign {
  /**
   * No new acquire until `resume()`; resolves once none is in flight. Consul checks an
   * acquire against the lock-delay before it goes through Raft, so an acquire checked
   * just before a destroy is applied, and applied just after, wins the key at once.
   */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<void>;
}

function campaign(key: string, backends: readonly Backend[], leaderships: Leadership[]): Campaign {
  let stopped = false;
  let paused = false;
  const inFlight = new Set<Promise<boolean>>();
  const loops = backends.map(async (b) => {
    while (!stopped && b.alive) {
      if (!paused && !leaderships.some((l) => l.backend === b.name && l.killedAt === undefined)) {
        const from = now();
        const attempt = acquire(consul, key, b.session, descriptorOf(b)).catch(() => false);
        inFlight.add(attempt);
        const won = await attempt;
        inFlight.delete(attempt);
        if (won && b.alive) leaderships.push({ backend: b.name, session: b.session, from });
      }
      await delay(100);
    }
  });
  return {
    async pause() {
      paused = true;
      await Promise.all(inFlight);
    },
    resume() {
      paused = false;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

// ---- the gateway and its view

interface View {
  readonly at: number;
  /** The backend the gateway routes to from `at` on, or null (503). */
  readonly backend: string | null;
}

async function startGateway(
  key: string,
): Promise<{ gateway: LeaderGateway<Node>; url: string; views: View[] }> {
  const gateway = createLeaderGateway({
    discovery,
    key,
    schema: Node,
    target: (leader) => ({ host: leader.node.host, port: leader.node.port }),
    retryAfterSeconds: RETRY_AFTER_SECONDS,
  });
  // Before its first answer the handle's `current` is null too.
  const views: View[] = [{ at: -Infinity, backend: null }];
  const subscription = gateway.handle.changes.subscribe((leader) =>
    views.push({ at: now(), backend: leader?.node.name ?? null }),
  );
  const port = await listen(gateway.server);
  cleanups.push(async () => {
    subscription.unsubscribe();
    await gateway.close();
  });
  return { gateway, url: `http://127.0.0.1:${port}`, views };
}

/** What the gateway routed to at some moment of `[from, to]`: its view at `from`, and every change up to `to`. */
function viewsDuring(views: readonly View[], from: number, to: number): Set<string | null> {
  const seen = new Set<string | null>();
  let atFrom: string | null = null;
  for (const v of views) {
    if (v.at <= from) atFrom = v.backend;
    else if (v.at <= to) seen.add(v.backend);
  }
  seen.add(atFrom);
  return seen;
}

// ---- the load

interface Result {
  readonly id: string;
  readonly sentAt: number;
  readonly doneAt: number;
  /** 0: no HTTP answer (the gateway dropped the connection). */
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: { backend?: string; error?: string; upstream?: string; code?: string } | undefined;
  readonly failure?: string;
}

function startLoad(url: string): { results: Result[]; stop(): Promise<void> } {
  const results: Result[] = [];
  const started = Date.now();
  let seq = 0;
  let stopped = false;
  const worker = async (w: number): Promise<void> => {
    while (!stopped && seq < MAX_REQUESTS && Date.now() - started < LOAD_MS) {
      const id = `r${++seq}`;
      const sentAt = now();
      // Alternate GETs and POSTs with a body: both must be forwarded the same way.
      const post = seq % 2 === 0;
      try {
        const res = await fetch(`${url}/work/${id}?w=${w}`, {
          method: post ? 'POST' : 'GET',
          headers: { 'x-request-id': id, ...(post ? { 'content-type': 'text/plain' } : {}) },
          ...(post ? { body: `payload of ${id}` } : {}),
        });
        const text = await res.text();
        results.push({
          id,
          sentAt,
          doneAt: now(),
          status: res.status,
          retryAfter: res.headers.get('retry-after'),
          body: text ? (JSON.parse(text) as Result['body']) : undefined,
        });
      } catch (error) {
        results.push({
          id,
          sentAt,
          doneAt: now(),
          status: 0,
          retryAfter: null,
          body: undefined,
          failure: String(error),
        });
      }
      await delay(2);
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
  return {
    results,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

const describeResult = (r: Result): string =>
  `${r.id} sent ${r.sentAt.toFixed(1)} done ${r.doneAt.toFixed(1)}: ${r.status} ${JSON.stringify(r.body)}${r.failure ? ` ${r.failure}` : ''}`;

// ---- the tests

describe('examples/gateway', () => {
  it('answers 503 with Retry-After while the handle has no answer from Consul yet', async () => {
    // An address where nothing listens: the SDK keeps retrying, `ready()` never resolves.
    const probe = http.createServer();
    const deadPort = await listen(probe);
    await closeServer(probe);
    const unreachable = createLeaderDiscovery({ consul: { host: '127.0.0.1', port: deadPort } });
    const gateway = createLeaderGateway({
      discovery: unreachable,
      key: uniqueKey(),
      schema: Node,
      target: (leader) => ({ host: leader.node.host, port: leader.node.port }),
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    });
    cleanups.push(() => unreachable.close());
    cleanups.push(() => gateway.close());
    const port = await listen(gateway.server);

    for (const method of ['GET', 'POST']) {
      const res = await fetch(`http://127.0.0.1:${port}/x`, {
        method,
        ...(method === 'POST' ? { body: 'x'.repeat(100_000) } : {}),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
      expect(await res.json()).toMatchObject({ error: 'leader not known yet' });
    }
    expect(gateway.handle.current).toBeNull();
  });

  it('forwards method, path, query, headers and body, and the answer back; a dead leader is a 502', async () => {
    const key = uniqueKey();
    const { gateway, url } = await startGateway(key);
    expect(await gateway.handle.ready()).toBeNull(); // the key is missing
    const vacant = await fetch(`${url}/a`);
    expect(vacant.status).toBe(503);
    expect(vacant.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
    expect(await vacant.json()).toMatchObject({ error: 'no leader' });

    const b = await startBackend('echo');
    expect(await acquire(consul, key, b.session, descriptorOf(b))).toBe(true);
    await until('the gateway follows the leader', () => gateway.handle.current?.node.name === 'echo');

    // A raw client, to send hop-by-hop headers fetch() would not let through.
    const body = 'é'.repeat(150_000); // 300 kB: streamed in several chunks
    const answer = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const req = http.request(`${url}/created/p%20q/r?x=1&y=%C3%A9`, {
          method: 'PUT',
          headers: {
            'content-type': 'text/plain; charset=utf-8',
            'x-custom': 'kept',
            'x-forwarded-for': '10.1.2.3',
            connection: 'keep-alive, x-hop',
            'x-hop': 'dropped',
          },
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        });
        req.on('error', reject);
        req.end(body); // chunked: no content-length
      },
    );
    expect(answer.status).toBe(201);
    expect(answer.headers['x-backend']).toBe('echo');
    expect(answer.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const echoed = JSON.parse(answer.body) as {
      method: string;
      url: string;
      headers: http.IncomingHttpHeaders;
      body: string;
    };
    expect(echoed.method).toBe('PUT');
    expect(echoed.url).toBe('/created/p%20q/r?x=1&y=%C3%A9');
    expect(echoed.body).toBe(body);
    expect(echoed.headers['x-custom']).toBe('kept');
    expect(echoed.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(echoed.headers['x-hop']).toBeUndefined();
    expect(echoed.headers['x-forwarded-for']).toBe('10.1.2.3, 127.0.0.1');
    expect(echoed.headers['x-forwarded-host']).toBe(new URL(url).host);
    expect(echoed.headers.host).toBe(new URL(url).host);

    // The leader dies without Consul noticing: its address refuses connections.
    b.stop();
    await closeServer(b.server);
    const refused = await fetch(`${url}/b`, { method: 'POST', body: 'lost' });
    expect(refused.status).toBe(502);
    expect(refused.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
    // A POST on the gateway's kept-alive connection to it is reset (it was sent before the
    // close was seen, and a body is not sent twice); a new connection is refused.
    expect(await refused.json()).toMatchObject({ error: 'upstream failed', upstream: `127.0.0.1:${b.port}` });
    // ... and the gateway still serves; a GET is retried once after a reset, so it meets the refusal.
    const again = await fetch(`${url}/c`);
    expect(again.status).toBe(502);
    expect(await again.json()).toMatchObject({ upstream: `127.0.0.1:${b.port}`, code: 'ECONNREFUSED' });
  });

  /**
   * The failover under load. `crash`: the leader's server is closed (it answers nothing
   * more), then its session is destroyed (Consul noticed). `session-lost`: only the
   * session is destroyed and the server keeps answering (an operator, or a TTL that ran
   * out while the process lived): then any request the gateway sent it after observing
   * the loss would come back as a 200 from it, so nothing but the gateway's reading of
   * `handle.current` keeps it away.
   */
  it.each(['crash', 'session-lost'] as const)(
    'fails over under load (%s): only the leader of the moment answers, 503s while vacant, none to the old one after its loss',
    async (kill) => {
      const key = uniqueKey();
      const { gateway, url, views } = await startGateway(key);
      expect(await gateway.handle.ready()).toBeNull();
      const backends = await Promise.all(['b1', 'b2', 'b3'].map(startBackend));
      const byName = new Map(backends.map((b) => [b.name, b]));
      const leaderships: Leadership[] = [];

      const load = startLoad(url);
      cleanups.push(() => load.stop());
      const elections = campaign(key, backends, leaderships);
      cleanups.push(() => elections.stop());

      // The first leader, and traffic to it.
      await until('a first leader', () => leaderships.length === 1);
      const first = leaderships[0] as Leadership;
      const old = byName.get(first.backend) as Backend;
      await until(
        `${BEFORE_KILL} answers from ${old.name}`,
        () => load.results.filter((r) => r.body?.backend === old.name).length >= BEFORE_KILL,
      );

      // The kill (no contender's acquire racing the destroy: see Campaign.pause).
      await elections.pause();
      const killAt = now();
      first.killedAt = killAt;
      old.stop();
      if (kill === 'crash') await closeServer(old.server);
      await destroySession(consul, old.session);
      elections.resume();

      // The gateway observes the loss (a null: the lock-delay keeps the key vacant), then the next leader.
      await until('the gateway observes the loss', () =>
        views.some((v) => v.at > killAt && v.backend !== old.name),
      );
      const lossAt = (views.find((v) => v.at > killAt && v.backend !== old.name) as View).at;
      await until('a second leader', () => leaderships.length === 2);
      const second = leaderships[1] as Leadership;
      const next = byName.get(second.backend) as Backend;
      await until(
        `the gateway routes to ${next.name}`,
        () => gateway.handle.current?.node.name === next.name,
      );
      const nextAt = (views.find((v) => v.backend === next.name) as View).at;
      await until(
        `${RESUMED} answers from ${next.name} to requests sent after it was observed`,
        () =>
          load.results.filter((r) => r.sentAt > nextAt && r.body?.backend === next.name).length >= RESUMED,
      );
      await load.stop();
      const results = [...load.results].sort((a, b) => a.sentAt - b.sentAt);

      // The elections: the first leader, then another backend, each logged once.
      expect(leaderships.map((l) => l.backend)).toEqual([old.name, next.name]);
      expect(next.name).not.toBe(old.name);
      // The gateway's view: nobody (not ready, then the missing key), the old leader, then
      // null (Consul's lock-delay after the kill keeps the key vacant), then the new leader.
      expect(views.map((v) => v.backend)).toEqual([null, null, old.name, null, next.name]);
      expect(lossAt).toBe((views[3] as View).at);

      const problems: string[] = [];
      for (const r of results) {
        const seen = viewsDuring(views, r.sentAt, r.doneAt);
        if (r.status === 200) {
          const name = r.body?.backend ?? '';
          const backend = byName.get(name);
          const at = backend?.received.get(r.id)?.at;
          // It held the key: its winning acquire was sent before the request reached it,
          // and (crash) its server answered nothing after the kill.
          const held = leaderships.find(
            (l) =>
              l.backend === name &&
              at !== undefined &&
              l.from <= at &&
              (kill !== 'crash' || l.killedAt === undefined || at <= l.killedAt),
          );
          if (!held)
            problems.push(`answered by ${name}, which did not hold the key then: ${describeResult(r)}`);
          // The gateway routed to it at the moment of forwarding.
          if (!seen.has(name))
            problems.push(`answered by ${name}, not the gateway's leader: ${describeResult(r)}`);
          // After the loss was observed, the old leader gets nothing.
          if (name === old.name && r.sentAt >= lossAt)
            problems.push(`old leader after the loss: ${describeResult(r)}`);
        } else if (r.status === 503) {
          if (r.retryAfter !== String(RETRY_AFTER_SECONDS))
            problems.push(`503 without Retry-After: ${describeResult(r)}`);
          if (!seen.has(null)) problems.push(`503 while the gateway had a leader: ${describeResult(r)}`);
        } else if (r.status === 502 && kill === 'crash') {
          // Accepted only for the dead leader between its kill and the observation of its loss:
          // the gateway forwarded to the leader it knew, which refused or reset the connection.
          const ok =
            r.body?.upstream === `127.0.0.1:${old.port}` &&
            r.retryAfter === String(RETRY_AFTER_SECONDS) &&
            r.sentAt < lossAt &&
            r.doneAt >= killAt &&
            seen.has(old.name);
          if (!ok) problems.push(`502 outside the kill window: ${describeResult(r)}`);
        } else {
          problems.push(`unexpected answer: ${describeResult(r)}`);
        }
      }
      expect(problems).toEqual([]);

      // Nothing reached the old leader that was sent after its loss was observed.
      const sentAfterLoss = new Set(results.filter((r) => r.sentAt >= lossAt).map((r) => r.id));
      expect(sentAfterLoss.size).toBeGreaterThan(RESUMED);
      expect([...old.received.keys()].filter((id) => sentAfterLoss.has(id))).toEqual([]);
      if (kill === 'crash') expect([...old.received.values()].filter((r) => r.at > killAt)).toEqual([]);
      // No backend that never led received anything.
      for (const b of backends.filter((b) => b !== old && b !== next)) expect(b.received.size).toBe(0);

      // The vacancy was answered with 503s, and traffic resumed to the new leader.
      expect(results.some((r) => r.status === 503 && r.sentAt >= lossAt && r.sentAt < nextAt)).toBe(true);
      expect(results.slice(-RESUMED).map((r) => `${r.status} ${r.body?.backend}`)).toEqual(
        Array(RESUMED).fill(`200 ${next.name}`),
      );
      // Every request got an HTTP answer (none dropped), and the gateway was not the one to fail.
      expect(results.filter((r) => r.status === 0)).toEqual([]);
    },
  );
});
