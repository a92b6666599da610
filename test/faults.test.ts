/**
 * Hostile or broken answers, injected by the fault proxy between the SDK and a
 * real Consul agent. For each fault the SDK must report a typed `unreachable`
 * state (or, for index anomalies, follow Consul's index rules without an
 * error), never crash, never spin, never adopt the index of an answer it
 * rejected, and follow the leader elected while the fault lasted once the
 * proxy behaves again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import {
  ConsulHttpError,
  ConsulUnreachableError,
  type Leader,
  type LeaderDiscovery,
  type LeaderDiscoveryOptions,
  type LeaderState,
  type RetryPolicy,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, release } from './support/contender.js';
import {
  type ConsulProxy,
  type FaultRule,
  type ProxiedAnswer,
  type ProxiedRequest,
  startProxy,
} from './support/proxy.js';
import { type Recorder, delay, record, until } from './support/recorder.js';

const Node = z.object({ host: z.string() });
type Node = z.output<typeof Node>;
type State = LeaderState<Node>;
type Unreachable = Extract<State, { status: 'unreachable' }>;
type Fault = Exclude<ReturnType<FaultRule>, undefined>;

/** A tight backoff so each test stays short; the no-spin bounds below are computed from it. */
const RETRY = { initialDelayMs: 100, maxDelayMs: 400 } as const satisfies Partial<RetryPolicy>;
/** Non-blocking reads (the first one, and every one after a failure) time out after this. */
const REQUEST_TIMEOUT_MS = 1_000;
/** The SDK's default rate limit of wake-ups that bring nothing new. */
const IDLE_BURST = 5;
const IDLE_PER_SECOND = 2;
/** How long requests are counted while a fault holds. */
const MEASURE_MS = 1_200;
/** The index of answers the SDK must reject: were it adopted, a later request would carry it. */
const POISON_INDEX = '987654321987';

let agent: ConsulAgent;
let consul: Consul;
let proxy: ConsulProxy;
let n = 0;
const uniqueKey = (): string => `faults/t${++n}-${Date.now()}/leader`;
const kvPath = (key: string): string => `/v1/kv/${key}`;
const kvRequests = (key: string): ProxiedRequest[] => proxy.requests.filter((r) => r.path === kvPath(key));

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  proxy = await startProxy(agent);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  await proxy?.close();
  await agent?.destroy();
});

afterEach(async () => {
  // A rejection of the test's last requests surfaces a tick or two later.
  await delay(50);
  expect(unhandled.splice(0)).toEqual([]);
});

interface Scenario {
  readonly key: string;
  readonly discovery: LeaderDiscovery;
  readonly states: Recorder<State>;
  readonly leaders: Recorder<Leader<Node> | null>;
  /** The session that leads when the fault starts. */
  readonly sessionA: string;
  /** Requests for the key that the fault answered (in arrival order). */
  readonly faulted: ProxiedRequest[];
  /** Starts the fault on the key's requests, and wakes the blocked read so the next one meets it. */
  startFault(): Promise<void>;
  /** Ends the fault; returns how many states were emitted before. */
  endFault(): number;
  /** While the fault holds: A releases the key and a new session B takes it. Returns B. */
  moveLeader(): Promise<string>;
}

/**
 * Runs `body` with a key led by session A, followed by a fresh discovery
 * (through the proxy, wait 2 s) with `watch()` and `leader()`, blocking on its
 * index; `fault` decides the answer to each request for the key once started.
 */
async function withFault(
  fault: (req: ProxiedRequest) => Fault | undefined,
  body: (s: Scenario) => Promise<void>,
  options: Pick<LeaderDiscoveryOptions, 'requestTimeout'> = { requestTimeout: REQUEST_TIMEOUT_MS },
): Promise<void> {
  const key = uniqueKey();
  const sessionA = await createSession(consul, { name: 'a' });
  expect(await acquire(consul, key, sessionA, JSON.stringify({ host: 'a' }))).toBe(true);
  const discovery = createLeaderDiscovery({
    consul: { host: proxy.host, port: proxy.port },
    wait: '2s',
    retry: RETRY,
    ...options,
  });
  const states = record(discovery.watch(key, { schema: Node }));
  const leaders = record(discovery.leader(key, { schema: Node }));
  const faulted: ProxiedRequest[] = [];
  try {
    await states.next((v) => v.status === 'leader' && v.leader.session.id === sessionA);
    await leaders.next((v) => v?.session.id === sessionA);
    await until(
      'a blocking read in flight',
      () => proxy.inFlight(kvPath(key)) === 1 && kvRequests(key).at(-1)?.query.has('index') === true,
    );
    const scenario: Scenario = {
      key,
      discovery,
      states,
      leaders,
      sessionA,
      faulted,
      async startFault() {
        proxy.rule = (req) => {
          if (req.path !== kvPath(key)) return undefined;
          const decision = fault(req);
          if (decision) faulted.push(req);
          return decision;
        };
        // The blocked read was forwarded before the fault: a write wakes it with Consul's
        // answer (same leader, new value), and the read after it meets the fault. (Consul
        // ignores an acquire by the holder that changes nothing: it would not wake the read.)
        expect(await acquire(consul, key, sessionA, JSON.stringify({ host: 'a', woken: true }))).toBe(true);
        await until('the fault served', () => faulted.length > 0);
      },
      endFault() {
        const emitted = states.values.length;
        proxy.rule = undefined;
        return emitted;
      },
      async moveLeader() {
        expect(await release(consul, key, sessionA)).toBe(true);
        const sessionB = await createSession(consul, { name: 'b' });
        expect(await acquire(consul, key, sessionB, JSON.stringify({ host: 'b' }))).toBe(true);
        return sessionB;
      },
    };
    await body(scenario);
    // Never a stream error or completion because of Consul or the network.
    for (const rec of [states, leaders]) {
      expect(rec.errors).toEqual([]);
      expect(rec.completed).toBe(false);
    }
  } finally {
    proxy.rule = undefined;
    discovery.close();
  }
  expect(states.completed && leaders.completed).toBe(true);
}

/** Counts the key's requests that reach the proxy over `measureMs`. */
async function countRequests(
  key: string,
  measureMs = MEASURE_MS,
): Promise<{ count: number; elapsedMs: number }> {
  const before = kvRequests(key).length;
  const start = performance.now();
  await delay(measureMs);
  const elapsedMs = performance.now() - start;
  return { count: kvRequests(key).length - before, elapsedMs };
}

/**
 * Most requests that can start within `elapsedMs` when each failure is
 * followed by the retry policy's sleep (equal jitter: at least half the
 * exponential delay), counting from the first, shortest delays; +1 for the
 * interval's edges.
 */
function backoffBound(elapsedMs: number): number {
  let count = 1;
  let slept = 0;
  for (let attempt = 1; ; attempt += 1) {
    const exp = Math.min(RETRY.maxDelayMs, RETRY.initialDelayMs * 2 ** (attempt - 1));
    slept += exp / 2;
    if (slept > elapsedMs) break;
    count += 1;
  }
  return count + 1;
}

/** Most requests when consecutive ones are at least `gapMs` apart; +1 for the interval's edges. */
const gapBound = (elapsedMs: number, gapMs: number): number => 1 + Math.floor(elapsedMs / gapMs) + 1;

/** Most answers with nothing new within `elapsedMs` under the idle wake-up token bucket; +1 for the edges. */
const idleBound = (elapsedMs: number): number =>
  IDLE_BURST + Math.ceil((IDLE_PER_SECOND * elapsedMs) / 1000) + 1;

/** The request after each faulted one (a failure or a rejected answer) is a non-blocking read. */
function expectNonBlockingAfterFaults(s: Scenario): void {
  const requests = kvRequests(s.key);
  let checked = 0;
  for (const [i, request] of requests.entries()) {
    if (!s.faulted.includes(request)) continue;
    const following = requests[i + 1];
    if (!following) continue;
    checked += 1;
    expect(following.query.has('index'), `request ${i + 1} follows a faulted one`).toBe(false);
  }
  expect(checked).toBeGreaterThan(0);
  expect(requests.some((r) => r.query.get('index') === POISON_INDEX)).toBe(false);
}

interface ErrorCase {
  readonly fault: (req: ProxiedRequest) => Fault;
  /** Checks one `unreachable` state's error and delay. */
  readonly expectState: (state: Unreachable) => void;
  /** Upper bound of requests during the fault over `elapsedMs`. */
  readonly bound?: (elapsedMs: number) => number;
  readonly options?: Pick<LeaderDiscoveryOptions, 'requestTimeout'>;
  /** How long requests are counted while the fault holds. Default `MEASURE_MS`. */
  readonly measureMs?: number;
}

/** The checks shared by faults that make a read fail. */
async function runErrorCase(c: ErrorCase): Promise<void> {
  await withFault(
    c.fault,
    async (s) => {
      await s.startFault();
      const first = await s.states.next((v) => v.status === 'unreachable', { timeoutMs: 20_000 });
      if (first.status !== 'unreachable') throw new Error('unreachable expected');
      expect(first.attempt).toBe(1);
      expect(first.lastKnown?.status).toBe('leader');
      expect(first.lastKnown?.status === 'leader' && first.lastKnown.leader.session.id).toBe(s.sessionA);
      const leadersBefore = s.leaders.values.length;

      // No spin: the requests sent while the fault holds are bounded by the backoff.
      const { count, elapsedMs } = await countRequests(s.key, c.measureMs);
      expect(count).toBeLessThanOrEqual((c.bound ?? backoffBound)(elapsedMs));

      const sessionB = await s.moveLeader();
      const emitted = s.endFault();
      const failures = s.states.values.slice(0, emitted).filter((v) => v.status === 'unreachable');
      expect(failures.length).toBeGreaterThan(0);
      for (const state of failures) c.expectState(state);
      // Attempts count up from 1, one state per failure, while the fault holds.
      expect(failures.map((v) => v.attempt)).toEqual(failures.map((_v, i) => i + 1));
      // leader() keeps its last value while Consul cannot be read; nothing of B leaks through the fault.
      expect(s.leaders.values.length).toBe(leadersBefore);
      expect(s.leaders.values.at(-1)?.session.id).toBe(s.sessionA);
      expect(
        s.states.values
          .slice(0, emitted)
          .some((v) => v.status === 'leader' && v.leader.session.id === sessionB),
      ).toBe(false);

      // Recovery: the leader elected during the fault is followed.
      const recovered = await s.states.next(
        (v) => v.status === 'leader' && v.leader.session.id === sessionB,
        {
          from: emitted,
          timeoutMs: 20_000,
        },
      );
      expect(recovered.status === 'leader' && recovered.leader.node).toEqual({ host: 'b' });
      await s.leaders.next((v) => v?.session.id === sessionB);
      expect(s.leaders.values.at(-1)?.session.id).toBe(sessionB);
      expect(s.states.values.at(-1)?.status).toBe('leader');
      expectNonBlockingAfterFaults(s);
    },
    c.options,
  );
}

/** Replaces (or with `undefined`, removes) Consul's X-Consul-Index header. */
function withIndex(answer: ProxiedAnswer, index: string | undefined): ProxiedAnswer {
  const headers = { ...answer.headers };
  if (index === undefined) delete headers['x-consul-index'];
  else headers['x-consul-index'] = index;
  return { ...answer, headers };
}

/** Forwards the key's read without index/wait (Consul answers at once), then rewrites the answer. */
const rewritten =
  (rewrite: (answer: ProxiedAnswer) => ProxiedAnswer) =>
  (req: ProxiedRequest): Fault => ({ action: 'forward', path: req.path, rewrite });

const expectInvalidResponse = (state: Unreachable): void => {
  expect(state.error.code).toBe('INVALID_RESPONSE');
  expect(state.retryInMs).toBeLessThanOrEqual(RETRY.maxDelayMs);
};

const expectUnreachable =
  (reason: ConsulUnreachableError['reason']) =>
  (state: Unreachable): void => {
    expect(state.error.code).toBe('CONSUL_UNREACHABLE');
    expect(state.error).toBeInstanceOf(ConsulUnreachableError);
    expect((state.error as ConsulUnreachableError).reason).toBe(reason);
    expect(state.retryInMs).toBeLessThanOrEqual(RETRY.maxDelayMs);
  };

describe('a 2xx answer that is not what Consul sends: INVALID_RESPONSE, its index never adopted', () => {
  const body = (text: string) =>
    rewritten((answer) => withIndex({ ...answer, body: Buffer.from(text) }, POISON_INDEX));

  it.each([
    ['a body that is not JSON', body('<html><body><h1>502 Bad Gateway</h1></body></html>')],
    [
      'a truncated body (a complete HTTP answer, its JSON cut short)',
      rewritten((answer) =>
        withIndex({ ...answer, body: answer.body.subarray(0, answer.body.length >> 1) }, POISON_INDEX),
      ),
    ],
    ['JSON of the wrong shape: {}', body('{}')],
    ['JSON of the wrong shape: [{"foo":1}]', body('[{"foo":1}]')],
    ['JSON of the wrong shape: null', body('null')],
    ['an empty list (no entry for the key)', body('[]')],
    ['a valid body without X-Consul-Index', rewritten((answer) => withIndex(answer, undefined))],
    ['a valid body whose X-Consul-Index is not a number', rewritten((answer) => withIndex(answer, 'abc'))],
  ])('%s', async (_name, fault) => {
    await runErrorCase({ fault, expectState: expectInvalidResponse });
  });
});

describe('no HTTP answer: CONSUL_UNREACHABLE', () => {
  it('a connection reset before the answer: reason reset', async () => {
    await runErrorCase({ fault: () => ({ action: 'reset' }), expectState: expectUnreachable('reset') });
  });

  /** Consul's answer, forwarded without index/wait (so it comes at once), cut after 20 bytes of its body. */
  const cutMidBody = (req: ProxiedRequest): Fault => ({
    action: 'forward',
    path: req.path,
    truncateAfterBytes: 20,
  });

  it('a connection reset mid-body (headers and part of the body, then the socket closes): reason reset', async () => {
    await runErrorCase({
      fault: cutMidBody,
      expectState: expectUnreachable('reset'),
      // The default requestTimeout (10 s): see the next test for a shorter one.
      options: {},
    });
  });

  // A connection closed mid-body is seen when it closes, not at a timeout.
  it('a connection reset mid-body with requestTimeout below 5 s: still reason reset, seen when the connection closes', async () => {
    const key = uniqueKey();
    const sessionA = await createSession(consul, { name: 'a' });
    expect(await acquire(consul, key, sessionA, JSON.stringify({ host: 'a' }))).toBe(true);
    proxy.rule = (req) => (req.path === kvPath(key) ? cutMidBody(req) : undefined);
    const discovery = createLeaderDiscovery({
      consul: { host: proxy.host, port: proxy.port },
      wait: '2s',
      requestTimeout: REQUEST_TIMEOUT_MS,
      retry: RETRY,
    });
    const states = record(discovery.watch(key, { schema: Node }));
    try {
      // The first read is non-blocking: its timeout is requestTimeout.
      const first = await states.next((v) => v.status === 'unreachable', { timeoutMs: 10_000 });
      if (first.status !== 'unreachable') throw new Error('unreachable expected');
      expect(first.error.code).toBe('CONSUL_UNREACHABLE');
      expect((first.error as ConsulUnreachableError).reason).toBe('reset');
    } finally {
      proxy.rule = undefined;
      discovery.close();
    }
  });

  it('a black hole (the answer never comes): reason timeout, after the client timeout', async () => {
    await runErrorCase({
      fault: () => ({ action: 'hang' }),
      expectState: expectUnreachable('timeout'),
      // Reads after the first failure are non-blocking: each waits requestTimeout before failing.
      bound: (elapsedMs) => gapBound(elapsedMs, REQUEST_TIMEOUT_MS),
    });
  });
});

describe('HTTP error statuses: CONSUL_HTTP_ERROR with the status, Retry-After honoured', () => {
  it.each([429, 500, 503])('%i without Retry-After: backoff', async (status) => {
    await runErrorCase({
      fault: () => ({
        action: 'respond',
        status,
        headers: { 'content-type': 'text/plain', 'x-consul-index': POISON_INDEX },
        body: `status ${status}`,
      }),
      expectState: (state) => {
        expect(state.error.code).toBe('CONSUL_HTTP_ERROR');
        expect(state.error.status).toBe(status);
        expect((state.error as ConsulHttpError).retryAfterMs).toBeUndefined();
        // Equal jitter: between half and all of the capped exponential delay.
        const exp = Math.min(RETRY.maxDelayMs, RETRY.initialDelayMs * 2 ** (state.attempt - 1));
        expect(state.retryInMs).toBeGreaterThanOrEqual(exp / 2);
        expect(state.retryInMs).toBeLessThanOrEqual(exp);
      },
    });
  });

  it.each([429, 500, 503])('%i with Retry-After: 2', async (status) => {
    await runErrorCase({
      fault: () => ({
        action: 'respond',
        status,
        headers: { 'content-type': 'text/plain', 'retry-after': '2', 'x-consul-index': POISON_INDEX },
        body: `status ${status}`,
      }),
      expectState: (state) => {
        expect(state.error.code).toBe('CONSUL_HTTP_ERROR');
        expect(state.error.status).toBe(status);
        expect(state.error).toBeInstanceOf(ConsulHttpError);
        expect((state.error as ConsulHttpError).retryAfterMs).toBe(2_000);
        expect(state.retryInMs).toBeGreaterThanOrEqual(2_000);
      },
      bound: (elapsedMs) => gapBound(elapsedMs, 2_000),
      // Long enough for a few retries, each after Retry-After.
      measureMs: 4_500,
    });
  });
});

describe('index anomalies in valid answers: followed by the index rules, not errors', () => {
  /** The checks shared by answers whose body is valid but whose index is not to be trusted. */
  async function runIndexCase(
    rewriteIndex: (answer: ProxiedAnswer, sentIndex: string | null) => string,
    extra: (s: Scenario) => void,
  ): Promise<void> {
    await withFault(
      (req) => ({
        action: 'forward',
        path: req.path,
        rewrite: (answer) => withIndex(answer, rewriteIndex(answer, req.query.get('index'))),
      }),
      async (s) => {
        await s.startFault();
        await until('several answers under the fault', () => s.faulted.length >= 3);
        // No spin: every answer brings nothing new, so wake-ups are rate-limited.
        const { count, elapsedMs } = await countRequests(s.key);
        expect(count).toBeLessThanOrEqual(idleBound(elapsedMs));

        // The body is valid, so a change is followed even while the index is broken.
        const sessionB = await s.moveLeader();
        await s.states.next((v) => v.status === 'leader' && v.leader.session.id === sessionB);
        s.endFault();
        expect(s.states.values.some((v) => v.status === 'unreachable')).toBe(false);

        // An answer whose index went back (0 included) is followed by a non-blocking read.
        const requests = kvRequests(s.key);
        let reset = 0;
        for (const [i, request] of requests.entries()) {
          const sent = request.query.get('index');
          const following = requests[i + 1];
          if (!s.faulted.includes(request) || sent === null || !following) continue;
          if (BigInt(request.index ?? '0') < BigInt(sent)) {
            reset += 1;
            expect(following.query.has('index'), `request ${i + 1} follows an index that went back`).toBe(
              false,
            );
          }
        }
        expect(reset).toBeGreaterThan(0);
        extra(s);

        // Once the proxy behaves, the SDK blocks on Consul's real index again.
        await until('blocking on a real index', () => {
          const last = kvRequests(s.key).at(-1);
          const previous = kvRequests(s.key).at(-2);
          return (
            proxy.inFlight(kvPath(s.key)) === 1 &&
            last !== undefined &&
            previous !== undefined &&
            !s.faulted.includes(last) &&
            !s.faulted.includes(previous) &&
            previous.index !== undefined &&
            BigInt(previous.index) > 1n &&
            last.query.get('index') === previous.index
          );
        });
        expect(s.states.values.at(-1)?.status).toBe('leader');
        expect(s.leaders.values.at(-1)?.session.id).toBe(sessionB);
        expect(s.leaders.values.at(-1)?.node).toEqual({ host: 'b' });
      },
    );
  }

  it('X-Consul-Index: 0 is never blocked on (index=1 or a non-blocking read instead)', async () => {
    await runIndexCase(
      () => '0',
      (s) => {
        const requests = kvRequests(s.key);
        expect(requests.some((r) => r.query.get('index') === '0')).toBe(false);
        let checked = 0;
        for (const [i, request] of requests.entries()) {
          const following = requests[i + 1];
          if (!s.faulted.includes(request) || !following) continue;
          checked += 1;
          expect([null, '1']).toContain(following.query.get('index'));
        }
        expect(checked).toBeGreaterThan(0);
      },
    );
  });

  it('an index that goes backwards resets to a non-blocking read', async () => {
    // Half of the index the SDK blocked on, or of Consul's own on a non-blocking read.
    await runIndexCase(
      (answer, sent) => String(BigInt(sent ?? String(answer.headers['x-consul-index'] ?? '2')) / 2n),
      () => undefined,
    );
  });
});
