/**
 * examples/gateway (createLeaderProxy + leaderHealth) against a real Consul dev agent:
 * three backend HTTP servers in this process campaign for a key (sessions with TTL 10s,
 * behaviour `release`, lock-delay 1s), the gateway forwards a continuous load to the
 * leader, and the leader is killed under that load; main.ts is run as a process too.
 *
 * Every check is causal, with no tolerance and no wall-clock bound on speed
 * (deadlines only fail a stuck test), from three timelines on one clock
 * (`performance.now()` in this process):
 * - the test's own acquire, release and kill calls (Consul's truth, as the contenders made it);
 * - the gateway's view: `handle.changes`, recorded in the same synchronous emission
 *   that sets `handle.current` (so no request handler can run between the two);
 * - each request's `[sentAt, doneAt]`: the gateway read `handle.current` inside it.
 * The one lower bound on time is waitForLeader's: a request the gateway received after
 * `sentAt` waited that long (its timer's clock is whole ms, hence 1 ms) before it gives up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { type LeaderGateway, createLeaderGateway } from '../examples/gateway/gateway.js';
import { ROOT, cleanEnv } from './support/cli.js';
import { acquire, consulClient, createSession, destroySession, release } from './support/contender.js';
import { delay, until } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number().int(), name: z.string() });
type Node = z.output<typeof Node>;

const RETRY_AFTER_SECONDS = 2;
/** The gateway's waitForLeader (main.ts's default). */
const WAIT_FOR_LEADER_MS = 2_000;
/** Lock-delay of the backends' sessions: after a destroyed session the key stays vacant this long. */
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
  readonly method: string;
  readonly at: number;
}

interface Backend {
  readonly name: string;
  readonly server: http.Server;
  readonly port: number;
  readonly session: string;
  /** Requests that reached this backend's handler, by x-request-id, with the time. */
  readonly received: Map<string, Received>;
  /** Requests it answered 421 (not the leader), by x-request-id. */
  readonly refused: Set<string>;
  /** False once killed: it stops campaigning and renewing. */
  alive: boolean;
  /** It knows it is not the leader (any more): it answers 421, the gateway's convention. */
  notLeader: boolean;
  stop(): void;
}

/** One leadership, from the test's own calls: `from` is when the winning acquire was sent. */
interface Leadership {
  readonly backend: string;
  readonly session: string;
  readonly from: number;
  /** When the test killed it (its server closed, its session destroyed, or it stepped down): it leads no more. */
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

/**
 * An HTTP server answering `{ "backend": name, ... }` (and echoing the request), with a session.
 * `/slow...` answers after 300 ms; while `notLeader`, everything is a 421.
 */
async function startBackend(name: string): Promise<Backend> {
  const received = new Map<string, Received>();
  const refused = new Set<string>();
  const server = http.createServer((req, res) => {
    const at = now();
    const id = String(req.headers['x-request-id'] ?? '');
    if (id) received.set(id, { id, method: req.method ?? '', at });
    const notLeader = backend.notLeader;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (notLeader) {
        if (id) refused.add(id);
        res.writeHead(421, { 'content-type': 'application/json' }).end('{"error":"not the leader"}');
        return;
      }
      const body = JSON.stringify({
        backend: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const answer = (): void => {
        res.writeHead(req.url?.startsWith('/created') ? 201 : 200, {
          'content-type': 'application/json',
          'x-backend': name,
          'set-cookie': ['a=1', 'b=2'],
        });
        res.end(body);
      };
      if (req.url?.startsWith('/slow')) setTimeout(answer, 300);
      else answer();
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
    refused,
    alive: true,
    notLeader: false,
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
   * Also what keeps the key vacant as long as the test wants.
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
  /** The backend the gateway routes to from `at` on, or null (requests wait, then 503). */
  readonly backend: string | null;
}

interface Started {
  readonly gateway: LeaderGateway<Node>;
  readonly url: string;
  readonly healthUrl: string;
  readonly views: View[];
}

/** The gateway as main.ts makes it, on ports of its own. */
function createGateway(
  key: string,
  on: LeaderDiscovery = discovery,
  waitForLeader = WAIT_FOR_LEADER_MS,
): LeaderGateway<Node> {
  const gateway = createLeaderGateway({
    discovery: on,
    key,
    schema: Node,
    origin: ({ node }) => `http://${node.host}:${node.port}`,
    waitForLeader,
    retryAfterSeconds: RETRY_AFTER_SECONDS,
  });
  cleanups.push(() => gateway.close());
  return gateway;
}

async function startGateway(key: string, on: LeaderDiscovery = discovery): Promise<Started> {
  const gateway = createGateway(key, on);
  // Before its first answer the handle's `current` is null too.
  const views: View[] = [{ at: -Infinity, backend: null }];
  const subscription = gateway.handle.changes.subscribe((leader) =>
    views.push({ at: now(), backend: leader?.node.name ?? null }),
  );
  cleanups.push(() => subscription.unsubscribe());
  const port = await listen(gateway.server);
  const healthPort = await listen(gateway.health);
  return { gateway, url: `http://127.0.0.1:${port}`, healthUrl: `http://127.0.0.1:${healthPort}`, views };
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

/** Resolves once the gateway's server has received the request of `id` (it is forwarding, or waiting). */
function arrival(gateway: LeaderGateway<Node>, id: string): Promise<void> {
  return new Promise((resolve) => {
    const seen = (req: http.IncomingMessage): void => {
      if (req.headers['x-request-id'] !== id) return;
      gateway.server.off('request', seen);
      resolve();
    };
    gateway.server.on('request', seen);
  });
}

// ---- requests

interface Body {
  readonly backend?: string;
  readonly method?: string;
  readonly body?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

interface Result {
  readonly id: string;
  readonly method: string;
  readonly sentAt: number;
  readonly doneAt: number;
  /** 0: no HTTP answer (the gateway dropped the connection). */
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: Body | undefined;
  readonly failure?: string;
}

/** One request through the gateway, timed; a POST carries `payload of <id>`. */
async function send(url: string, id: string, method: 'GET' | 'POST', path = `/work/${id}`): Promise<Result> {
  const sentAt = now();
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { 'x-request-id': id, ...(method === 'POST' ? { 'content-type': 'text/plain' } : {}) },
      ...(method === 'POST' ? { body: `payload of ${id}` } : {}),
    });
    const text = await res.text();
    return {
      id,
      method,
      sentAt,
      doneAt: now(),
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      body: text ? (JSON.parse(text) as Body) : undefined,
    };
  } catch (error) {
    const failure = String(error);
    return { id, method, sentAt, doneAt: now(), status: 0, retryAfter: null, body: undefined, failure };
  }
}

function startLoad(url: string): { results: Result[]; stop(): Promise<void> } {
  const results: Result[] = [];
  const started = Date.now();
  let seq = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && seq < MAX_REQUESTS && Date.now() - started < LOAD_MS) {
      const id = `r${++seq}`;
      // Alternate GETs and POSTs with a body: POSTs are not idempotent, so not retried after a reset.
      results.push(await send(url, id, seq % 2 === 0 ? 'POST' : 'GET'));
      await delay(2);
    }
  };
  const workers = Array.from({ length: WORKERS }, () => worker());
  return {
    results,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

const describeResult = (r: Result): string =>
  `${r.method} ${r.id} sent ${r.sentAt.toFixed(1)} done ${r.doneAt.toFixed(1)}: ${r.status} ${JSON.stringify(r.body)}${r.failure ? ` ${r.failure}` : ''}`;

/** The 503 of a request that waited waitForLeader for a leader that did not come. */
function expectNoLeader(r: Result): void {
  expect(r.status, describeResult(r)).toBe(503);
  expect(r.retryAfter).toBe(String(RETRY_AFTER_SECONDS));
  expect(r.body).toEqual({ error: { code: 'NO_LEADER', message: 'no leader to forward to' } });
  expect(r.doneAt - r.sentAt).toBeGreaterThanOrEqual(WAIT_FOR_LEADER_MS - 1);
}

async function health(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** One sample of Prometheus' text format: `name{label="value",...} value`. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A scrape of `/metrics`: its answer, and its samples parsed (comments left out). */
async function scrape(
  url: string,
): Promise<{ status: number; contentType: string | null; text: string; samples: Sample[] }> {
  const res = await fetch(url);
  const text = await res.text();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const [, name = '', labelText = '', value = ''] = match;
    const labels: Record<string, string> = {};
    for (const [, label = '', escaped = ''] of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label] = escaped.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name, labels, value: Number(value) });
  }
  return { status: res.status, contentType: res.headers.get('content-type'), text, samples };
}

/** The samples named `name` whose labels include `labels`. */
const samplesOf = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

// ---- the tests

describe('examples/gateway', () => {
  it("before Consul's first answer: requests wait waitForLeader, then 503 with Retry-After; health says no leader", async () => {
    // An address where nothing listens: the SDK keeps retrying, `ready()` never resolves.
    const probe = http.createServer();
    const deadPort = await listen(probe);
    await closeServer(probe);
    const unreachable = createLeaderDiscovery({ consul: { host: '127.0.0.1', port: deadPort } });
    cleanups.push(() => unreachable.close());
    const { gateway, url, healthUrl } = await startGateway(uniqueKey(), unreachable);

    const answers = await Promise.all([send(url, 'g', 'GET'), send(url, 'p', 'POST')]);
    for (const r of answers) expectNoLeader(r);
    // No leader: `unknown` before any answer, `unreachable` once a read has failed.
    const said = await health(healthUrl);
    expect(said).toMatchObject({ status: 503, body: { leader: null, consul: null } });
    expect(['unknown', 'unreachable']).toContain(said.body.status);
    expect(gateway.handle.current).toBeNull();
  });

  it("waits for a vacant key's first leader; forwards method, path, query, headers and body; a dead leader is a 502", async () => {
    const key = uniqueKey();
    const { gateway, url, healthUrl, views } = await startGateway(key);
    expect(await gateway.handle.ready()).toBeNull(); // the key is missing
    expect(await health(healthUrl)).toMatchObject({ status: 503, body: { status: 'vacant', leader: null } });
    const b = await startBackend('echo');

    // A raw client, to send hop-by-hop headers fetch() would not let through; sent while vacant.
    const body = 'é'.repeat(150_000); // 300 kB: streamed in several chunks
    const sentAt = now();
    const arrived = arrival(gateway, 'first');
    const answered = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const req = http.request(`${url}/created/p%20q/r?x=1&y=%C3%A9`, {
          method: 'PUT',
          headers: {
            'x-request-id': 'first',
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
    await arrived; // the gateway holds it, waiting for a leader
    expect(await acquire(consul, key, b.session, descriptorOf(b))).toBe(true);
    const answer = await answered;
    // It was sent, and received by the gateway, before the gateway knew of any leader: it waited.
    const echoAt = (views.find((v) => v.backend === 'echo') as View).at;
    expect(sentAt).toBeLessThan(echoAt);
    expect((b.received.get('first') as Received).at).toBeGreaterThanOrEqual(echoAt);

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
    expect(echoed.headers['x-forwarded-proto']).toBe('http');
    expect(echoed.headers.host).toBe(`127.0.0.1:${b.port}`); // the leader's (main.ts: --preserve-host)
    expect(await health(healthUrl)).toMatchObject({
      status: 200,
      body: { status: 'leader', leader: { sessionId: b.session, node: { name: 'echo', port: b.port } } },
    });

    // The leader dies without Consul noticing: its address refuses connections, and it is
    // still the leader to Consul (so to the gateway) for as long as its session lives.
    b.stop();
    await closeServer(b.server);
    const [get, post] = await Promise.all([send(url, 'g', 'GET'), send(url, 'p', 'POST')]);
    for (const r of [get, post]) {
      expect(r.status, describeResult(r)).toBe(502);
      expect(r.retryAfter).toBe(String(RETRY_AFTER_SECONDS));
      expect(r.body).toEqual({
        error: { code: 'LEADER_REQUEST_FAILED', message: 'the leader did not answer' },
      });
    }
    // The GET was refused (or reset), then waited for another leader, which did not come. The POST
    // too when its connection was refused; one reset on a kept-alive connection is not sent twice.
    expect(get.doneAt - get.sentAt).toBeGreaterThanOrEqual(WAIT_FOR_LEADER_MS - 1);
    expect(b.received.has('g')).toBe(false);
    expect(gateway.handle.current?.session.id).toBe(b.session);
    expect((await health(healthUrl)).status).toBe(200); // the leader is known; it is its own to be down
  });

  it('close(): a request waiting for a leader gets a 503 then, one being answered finishes', async () => {
    const key = uniqueKey();
    const { gateway, url } = await startGateway(key);
    const b = await startBackend('slow');
    expect(await acquire(consul, key, b.session, descriptorOf(b))).toBe(true);
    await until('the gateway follows the leader', () => gateway.handle.current?.node.name === 'slow');

    const inFlight = send(url, 'slow', 'POST', '/slow');
    await until('the leader has it', () => b.received.has('slow'));
    // The leader steps down: a request now waits for the next leader.
    expect(await release(consul, key, b.session)).toBe(true);
    await until('the gateway sees the key vacant', () => gateway.handle.current === null);
    const arrived = arrival(gateway, 'waiting');
    const waiting = send(url, 'waiting', 'GET');
    await arrived;

    await gateway.close();
    const [slow, closed] = await Promise.all([inFlight, waiting]);
    expect(slow).toMatchObject({ status: 200, body: { backend: 'slow', body: 'payload of slow' } });
    // Not the end of its wait (NO_LEADER): the close answered it.
    expect(closed).toMatchObject({ status: 503, body: { error: { code: 'DISCOVERY_CLOSED' } } });
    expect(gateway.server.listening).toBe(false);
    expect(gateway.health.listening).toBe(false);
    expect((await send(url, 'after', 'GET')).status).toBe(0); // refused
  });

  /**
   * The failover under load. `crash`: the leader's server is closed (it answers nothing
   * more), then its session is destroyed (Consul noticed). `session-lost`: only the
   * session is destroyed and the server keeps answering (an operator, or a TTL that ran
   * out while the process lived): then any request the gateway sent it after observing
   * the loss would come back as a 200 from it, so nothing but the gateway's reading of
   * `handle.current` keeps it away. In both the key is then kept vacant longer than
   * waitForLeader (503s), and a request sent into the vacancy waits for the next leader.
   * `step-down`: the leader knows it is leaving: it answers 421 (POSTs included) while
   * still holding the key, then releases it; the next one takes it at once.
   */
  it.each(['crash', 'session-lost', 'step-down'] as const)(
    'fails over under load (%s): only the leader of the moment answers, none to the old one after its loss',
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

      // The kill (no contender's acquire racing it: see Campaign.pause).
      await elections.pause();
      const killAt = now();
      first.killedAt = killAt;
      if (kill === 'step-down') {
        old.notLeader = true;
        await until(`${old.name} has answered a POST 421`, () =>
          [...old.refused].some((id) => old.received.get(id)?.method === 'POST'),
        );
        expect(await release(consul, key, old.session)).toBe(true);
      }
      old.stop();
      if (kill === 'crash') await closeServer(old.server);
      await destroySession(consul, old.session);

      await until('the gateway observes the loss', () =>
        views.some((v) => v.at > killAt && v.backend !== old.name),
      );
      const lossAt = (views.find((v) => v.at > killAt && v.backend !== old.name) as View).at;
      let probe: Promise<Result> | undefined;
      if (kill !== 'step-down') {
        // Vacant longer than waitForLeader: requests sent into the vacancy are answered 503...
        await until('a 503 to a request sent after the loss', () =>
          load.results.some((r) => r.status === 503 && r.sentAt >= lossAt),
        );
        // ... and one the gateway holds when the next leader comes is forwarded to it.
        const arrived = arrival(gateway, 'probe');
        probe = send(url, 'probe', 'POST');
        await arrived;
      }
      elections.resume();

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
      // null (the key vacant), then the new leader. A release followed at once by the next
      // acquire may be seen as one change.
      const seenViews = views.map((v) => v.backend);
      if (kill === 'step-down' && seenViews.length === 4) {
        expect(seenViews).toEqual([null, null, old.name, next.name]);
      } else {
        expect(seenViews).toEqual([null, null, old.name, null, next.name]);
      }
      expect(lossAt).toBe((views[3] as View).at);

      const problems: string[] = [];
      for (const r of results) {
        const seen = viewsDuring(views, r.sentAt, r.doneAt);
        if (r.status === 200) {
          const name = r.body?.backend ?? '';
          const backend = byName.get(name);
          const at = backend?.received.get(r.id)?.at;
          // It held the key: its winning acquire was sent before the request reached it, and
          // (crash, step-down) it answered nothing but 421s after the kill.
          const held = leaderships.find(
            (l) =>
              l.backend === name &&
              at !== undefined &&
              l.from <= at &&
              (kill === 'session-lost' || l.killedAt === undefined || at <= l.killedAt),
          );
          if (!held)
            problems.push(`answered by ${name}, which did not hold the key then: ${describeResult(r)}`);
          // The gateway routed to it at the moment of forwarding.
          if (!seen.has(name))
            problems.push(`answered by ${name}, not the gateway's leader: ${describeResult(r)}`);
          // After the loss was observed, the old leader gets nothing.
          if (name === old.name && r.sentAt >= lossAt)
            problems.push(`old leader after the loss: ${describeResult(r)}`);
          // The request as sent, a retried body included.
          if (r.body?.method !== r.method || (r.method === 'POST' && r.body?.body !== `payload of ${r.id}`))
            problems.push(`not the request sent: ${describeResult(r)}`);
        } else if (r.status === 503) {
          // It waited waitForLeader with no leader coming (none other than the one that failed it).
          const ok =
            r.retryAfter === String(RETRY_AFTER_SECONDS) &&
            r.body?.error?.code === 'NO_LEADER' &&
            seen.has(null) &&
            nextAt >= r.sentAt + WAIT_FOR_LEADER_MS - 1;
          if (!ok) problems.push(`503 though a leader came within waitForLeader: ${describeResult(r)}`);
        } else if (r.status === 502) {
          // The gateway had forwarded it to the old leader, which failed it after the kill: a POST
          // whose connection broke (it may have been received: not sent twice), or any request
          // when the old leader was still the gateway's leader waitForLeader later.
          const ok =
            kill !== 'session-lost' &&
            r.retryAfter === String(RETRY_AFTER_SECONDS) &&
            r.body?.error?.code === 'LEADER_REQUEST_FAILED' &&
            r.sentAt < lossAt &&
            r.doneAt >= killAt &&
            seen.has(old.name) &&
            ((kill === 'crash' && r.method === 'POST') || lossAt >= r.sentAt + WAIT_FOR_LEADER_MS - 1);
          if (!ok) problems.push(`502 outside the kill window: ${describeResult(r)}`);
        } else {
          // A 421 included: the gateway sends those to the next leader, the client never sees them.
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

      if (probe) {
        // The vacancy was answered with 503s, and a request held at its end went to the new leader.
        expect(results.some((r) => r.status === 503 && r.sentAt >= lossAt && r.sentAt < nextAt)).toBe(true);
        const held = await probe;
        expect(held.sentAt).toBeLessThan(nextAt);
        expect(held).toMatchObject({ status: 200, body: { backend: next.name, body: 'payload of probe' } });
      } else {
        // A step-down shorter than waitForLeader is not seen by clients: each request the old
        // leader answered 421, POSTs too, went to the new one; no 503, no 502.
        const byId = new Map(results.map((r) => [r.id, r]));
        const refused = [...old.refused].map((id) => byId.get(id) as Result);
        expect(refused.some((r) => r.method === 'POST')).toBe(true);
        for (const r of refused) expect(r.body?.backend, describeResult(r)).toBe(next.name);
        expect(results.filter((r) => r.status !== 200).map(describeResult)).toEqual([]);
      }
      // After the new leader was observed, every request was answered by it.
      const after = results.filter((r) => r.sentAt > nextAt);
      expect(after.length).toBeGreaterThanOrEqual(RESUMED);
      expect(
        after.filter((r) => r.status !== 200 || r.body?.backend !== next.name).map(describeResult),
      ).toEqual([]);
      // Every request got an HTTP answer (none dropped).
      expect(results.filter((r) => r.status === 0)).toEqual([]);
    },
  );

  it('main.ts: the CLI flags, the health port and its /metrics, and a graceful stop on SIGTERM', async () => {
    const MAIN = join(ROOT, 'examples', 'gateway', 'main.ts');
    const run = (...args: string[]): ChildProcess =>
      spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
        cwd: ROOT,
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const exited = (child: ChildProcess): Promise<number | null> =>
      new Promise((resolve) => {
        if (child.exitCode !== null) resolve(child.exitCode);
        else child.once('exit', (code) => resolve(code));
      });

    // A bad flag: the usage, exit 2.
    const bad = run('--wait-for-leader', 'soon');
    let badErr = '';
    bad.stderr?.on('data', (chunk: Buffer) => (badErr += chunk.toString()));

    const key = uniqueKey();
    const child = run(
      ...['--addr', agent.address, '--key', key, '--listen', '0', '--health-port', '0'],
      ...['--wait-for-leader', '300ms', '--retry-after', '3'],
    );
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const portOf = (name: string): number | undefined => {
      const match = new RegExp(`${name} listening on http://127\\.0\\.0\\.1:(\\d+)`).exec(out);
      return match ? Number(match[1]) : undefined;
    };
    await until('the gateway process listens and has read the key', () =>
      Boolean(portOf('proxy') && portOf('health') && out.includes(`no leader of ${key}`)),
    );
    const url = `http://127.0.0.1:${portOf('proxy')}`;
    const healthUrl = `http://127.0.0.1:${portOf('health')}`;

    expect(await exited(bad)).toBe(2);
    expect(badErr).toMatch(/waitForLeader/);
    expect(badErr).toMatch(/Usage:/);

    expect(await health(healthUrl)).toMatchObject({ status: 503, body: { key, status: 'vacant' } });
    const vacant = await send(url, 'v', 'GET');
    expect(vacant).toMatchObject({ status: 503, retryAfter: '3', body: { error: { code: 'NO_LEADER' } } });
    expect(vacant.doneAt - vacant.sentAt).toBeGreaterThanOrEqual(300 - 1);

    const b = await startBackend('cli');
    expect(await acquire(consul, key, b.session, descriptorOf(b))).toBe(true);
    await until('the gateway process forwards to it', () => out.includes('forwarding to cli'));
    expect(await send(url, 'c', 'POST')).toMatchObject({
      status: 200,
      body: { backend: 'cli', body: 'payload of c' },
    });
    expect(await health(healthUrl)).toMatchObject({ status: 200, body: { status: 'leader' } });

    // /metrics of the health port: the SDK's OpenTelemetry metrics in Prometheus' text format
    // (dots become underscores, counters get `_total`, units stay in `# UNIT` comments).
    const metrics = await scrape(`${healthUrl}/metrics`);
    expect(metrics.status, metrics.text).toBe(200);
    expect(metrics.contentType).toMatch(/^text\/plain\b/);
    expect(metrics.text).toContain('# TYPE consul_leader_requests_total counter');
    const scope = { otel_scope_name: '@consul-leader/discovery' };
    const kvReads = samplesOf(metrics.samples, 'consul_leader_requests_total', { ...scope, kind: 'kv' });
    expect(kvReads.length, metrics.text).toBeGreaterThan(0);
    expect(kvReads.reduce((sum, s) => sum + s.value, 0)).toBeGreaterThan(0);
    // The key's first read found nothing (a 404), and it was read again once acquired.
    expect(samplesOf(kvReads, 'consul_leader_requests_total', { outcome: 'not_found' })).not.toEqual([]);
    expect(samplesOf(kvReads, 'consul_leader_requests_total', { outcome: 'ok' })).not.toEqual([]);
    expect(
      samplesOf(metrics.samples, 'consul_leader_followed').map((s) => [s.labels.type, s.value]),
      metrics.text,
    ).toEqual([['key', 1]]);
    expect(samplesOf(metrics.samples, 'consul_leader_unreachable', scope).map((s) => s.value)).toEqual([0]);
    expect(
      samplesOf(metrics.samples, 'consul_leader_changes_total', { status: 'leader' }).map((s) => s.value),
    ).toEqual([1]);
    // Every other path and method of the health port is still leaderHealth's.
    expect((await fetch(`${healthUrl}/metrics`, { method: 'POST' })).status).toBe(405);
    expect(await health(`${healthUrl}/ready`)).toMatchObject({ status: 200, body: { status: 'leader' } });

    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(out).toMatch(/SIGTERM: stopping/);
    expect(out).toMatch(/stopped/);
  });
});
