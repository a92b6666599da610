/**
 * The acceptance tests of leaderDispatcher (issue #15): a real Consul agent, three real
 * backend processes campaigning for the key (test/support/routing-backends.ts), a client
 * sending continuous requests through the dispatcher, and Consul's holder changes read
 * independently (followHolders). 20 planned step-downs lose no request and send none to a
 * backend after the client saw it lose; a SIGKILLed leader: idempotent requests wait for the
 * next one or fail with a typed error, a POST it had received fails and is not sent again;
 * no connection is left open.
 */
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import { type Dispatcher, Pool, fetch as undiciFetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Leader,
  type LeaderDiscovery,
  type LeaderHandle,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { LeaderRequestError, NoLeaderError, leaderDispatcher } from '@consul-leader/discovery/http';
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
}

const STEP_DOWNS = 20;
/** Short, so two contenders are usually campaigning; a step-down still waits for one (below). */
const REJOIN_MS = 300;
/** Requests answered after the client saw each new leader, before the next step-down. */
const REQUESTS_AFTER_CHANGE = 40;

const stamp = Date.now();
const plannedKey = `routing/failover-${stamp}/planned`;
const crashKey = `routing/failover-${stamp}/crash`;

let agent: ConsulAgent;
let discovery: LeaderDiscovery;
let planned: Backends | undefined;
let crash: Backends | undefined;
let plannedHolders: Holders | undefined;
let crashHolders: Holders | undefined;

beforeAll(async () => {
  agent = await startConsulAgent();
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
  // Before the backends: the record starts with the key's first holder.
  plannedHolders = followHolders(agent.address, plannedKey);
  crashHolders = followHolders(agent.address, crashKey);
  // Both sets at once (process start-up dominates); the crash set idles through the first test.
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
      const brief = all.map((s) => ({ name: s.name, leader: s.leader, open: s.openConnections }));
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

// ---- the client's own record of what the handle named

interface Named {
  readonly session: string | null;
  readonly origin: string | null;
  /** When the client saw it (`performance.now()`). */
  readonly at: number;
}

/**
 * Every value `handle.changes` showed, in order. Subscribed after the handle itself (the
 * stream is shared), so each entry is pushed in the same synchronous emission that set
 * `handle.current` and told the dispatcher: `at` is never before the dispatcher knew.
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
  }

  /** The index of the entry naming `session`; -1 when the handle never named it. */
  indexOf(session: string): number {
    return this.named.findIndex((n) => n.session === session);
  }

  /** When the client first saw the handle name something else than `session` (Infinity: not yet). */
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

// ---- when each attempt's bytes left, seen from inside the pools

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

/**
 * The dispatcher's default pool (`new Pool(origin)`), observed: the backends log when a
 * request arrived, but only the client can tell when its bytes left, which is what "sent
 * after the client observed the loss" is about.
 */
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
  readonly session: string;
  readonly text: string;
}

const pathOf = (route: string, id: string): string => `${route}${route.includes('?') ? '&' : '?'}id=${id}`;

async function exchange(
  dispatcher: Dispatcher,
  via: Kind['via'],
  method: Kind['method'],
  path: string,
  body: string | undefined,
): Promise<Answer> {
  // The host is never resolved: the dispatcher replaces the origin with the leader's.
  const url = `http://leader.invalid${path}`;
  if (via === 'request') {
    const res = await request(url, { method, body, dispatcher });
    const text = await res.body.text();
    return { status: res.statusCode, session: String(res.headers['x-session-id'] ?? ''), text };
  }
  const res = await undiciFetch(url, { method, body, dispatcher });
  return { status: res.status, session: res.headers.get('x-session-id') ?? '', text: await res.text() };
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

describe('leaderDispatcher: failover with real backends', () => {
  it(`${STEP_DOWNS} planned step-downs under continuous load: no request fails or reaches a leader the client saw lose`, async () => {
    const set = need(planned, 'the planned backends');
    const holders = need(plannedHolders, 'followHolders');
    const first = await set.leader();
    const handle = discovery.follow(plannedKey, { schema: Node });
    const log = new HandleLog(handle);
    const starts: Start[] = [];
    const dispatcher = leaderDispatcher(handle, {
      origin: originOf,
      waitForLeader: '1s',
      factory: observedPools(handle, starts),
    });
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
          record.answer = await exchange(dispatcher, kind.via, kind.method, path, body);
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
        'the client names the first leader',
        () => handle.current?.session.id === leaderSession(first),
      );
      for (let step = 1; step <= STEP_DOWNS; step += 1) {
        const old = await set.leader(10_000);
        const oldSession = leaderSession(old);
        await until(
          `step ${step}: the client names ${old.name}`,
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
          `step ${step}: the client sees ${String(next.session)}`,
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
    } catch (error) {
      // Nothing left waiting on a broken run.
      await dispatcher.destroy();
      throw error;
    } finally {
      running = false;
      await Promise.all(loops);
    }

    const arrivals = await Promise.all(
      set.backends.map(async (b) => ({ backend: b, stats: await b.stats() })),
    );

    // dispatcher.close() and the handle's close() leave no connection open anywhere.
    await dispatcher.close();
    handle.close();
    log.stop();
    await untilStats(set.backends, 'no connection open after close()', (all) =>
      all.every((s) => s.openConnections === 0),
    );

    // -- every request succeeded, POSTs included; no 421 reached the caller
    for (const kind of KINDS) expect(sent.filter((r) => r.kind === kind).length).toBeGreaterThan(0);
    const failed = sent.filter((r) => r.error !== undefined || r.answer?.status !== 200);
    expect(
      failed.map(
        (r) => `${r.id} ${r.kind.via} ${r.kind.method} ${r.path}: ${r.answer?.status ?? why(r.error)}`,
      ),
    ).toEqual([]);
    const misanswered = sent.flatMap((r) => {
      const echo = JSON.parse(r.answer?.text ?? '') as Echo;
      const ok =
        echo.method === r.kind.method &&
        echo.url === r.path &&
        echo.body === (r.body ?? '') &&
        echo.sessionId === r.answer?.session;
      return ok ? [] : [`${r.id}: ${r.answer?.text ?? ''}`];
    });
    expect(misanswered).toEqual([]);

    // -- the client's record follows Consul's: every holder, in order, each named once
    const clientSessions = log.sessions();
    expect(new Set(clientSessions).size).toBe(clientSessions.length);
    expect(clientSessions).toHaveLength(STEP_DOWNS + 1);
    const consulSessions = holders.changes.flatMap((c) => (c.session === null ? [] : [c.session]));
    const firstSeen = consulSessions.indexOf(clientSessions[0] ?? '');
    expect(firstSeen).toBeGreaterThanOrEqual(0);
    expect(consulSessions.slice(firstSeen)).toEqual(clientSessions);

    // -- every answer came from the leader named at dispatch or a later one, and only once
    //    the client had seen that one named
    const misordered = sent.flatMap((r) => {
      const session = r.answer?.session ?? '';
      const i = log.indexOf(session);
      const namedAt = log.named[i]?.at ?? Infinity;
      const ok = i >= r.namedAtDispatch && namedAt <= (r.answeredAt ?? -Infinity);
      return ok ? [] : [`${r.id}: answered by ${session} (#${i}), named #${r.namedAtDispatch} at dispatch`];
    });
    expect(misordered).toEqual([]);

    // -- bytes left only toward the leader the handle named at that very moment
    expect(starts.filter((s) => s.named === null || s.namedOrigin !== s.origin)).toEqual([]);

    // -- what reached the backends: each request served once, by the leader that answered it;
    //    nothing reached a backend unless it was sent before the client saw that leader lose
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
        if (id === null) {
          unexplained.push(`${what}: not the client's`);
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
        if (!(carrier.at < lostAt)) unexplained.push(`${what}: sent after the client saw it lose`);
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
    expect(sent.filter((r) => served.get(r.id)?.join() !== r.answer?.session).map((r) => r.id)).toEqual([]);
    expect(served.size).toBe(sent.length);
    // Requests did meet backends that had stepped down (and were sent on): the path was exercised.
    expect(misdirected).toBeGreaterThan(0);
    console.info(
      `planned: ${sent.length} requests, ${misdirected} answered 421 and sent on, ${afterLoss} arrived after the client saw the loss (sent before)`,
    );
  });

  it('a SIGKILLed leader: idempotent requests complete on the next leader or fail typed; a POST it had received fails and is not sent again', async () => {
    const set = need(crash, 'the crash backends');
    const holders = need(crashHolders, 'followHolders');
    const dead = await set.leader();
    const deadSession = leaderSession(dead);
    const handle = discovery.follow(crashKey, { schema: Node });
    const patient = leaderDispatcher(handle, { origin: originOf, waitForLeader: '30s' });
    const hasty = leaderDispatcher(handle, { origin: originOf, waitForLeader: 500 });
    const pending: Array<Promise<void>> = [];
    const nextNamed = (): boolean => {
      const session = handle.current?.session.id;
      return session !== undefined && session !== deadSession;
    };

    interface Outcome {
      readonly what: string;
      readonly dispatchedAt: number;
      readonly namedAtDispatch: number;
      answer?: Answer;
      error?: unknown;
      /** What the handle named when the request settled (the error is delivered in microtasks, so: at expiry). */
      namedAtSettle?: string | null;
    }
    const outcomes: Outcome[] = [];
    let n = 0;
    const get = (
      dispatcher: Dispatcher,
      what: string,
      via: Kind['via'] = 'request',
      route = '/echo',
    ): Promise<Outcome> => {
      const outcome: Outcome = {
        what,
        dispatchedAt: performance.now(),
        namedAtDispatch: log.named.length - 1,
      };
      outcomes.push(outcome);
      return exchange(dispatcher, via, 'GET', pathOf(route, `${what}-${++n}`), undefined).then(
        (answer) => {
          outcome.namedAtSettle = handle.current?.session.id ?? null;
          outcome.answer = answer;
          return outcome;
        },
        (error: unknown) => {
          outcome.namedAtSettle = handle.current?.session.id ?? null;
          outcome.error = error;
          return outcome;
        },
      );
    };
    let vacancySeen = false;
    // The moment the client sees the key vacant (the dead session invalidated, the lock-delay
    // running), a request of each kind: the hasty one must fail with NO_LEADER.
    const log = new HandleLog(handle, (entry, named) => {
      if (entry.session !== null || named.length < 2 || vacancySeen) return;
      vacancySeen = true;
      pending.push(get(hasty, 'hasty-vacant').then(() => undefined));
      pending.push(get(patient, 'patient-vacant', 'fetch').then(() => undefined));
    });

    try {
      await until('the client names the leader', () => handle.current?.session.id === deadSession);
      const warm = await get(patient, 'warm');
      expect(warm.answer).toMatchObject({ status: 200, session: deadSession });

      // A POST the leader has received (never answered), and a GET it is still answering, when it dies.
      const from = dead.events.length;
      const post = request('http://leader.invalid/hold?id=post-1', {
        method: 'POST',
        body: 'order-1',
        dispatcher: patient,
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await dead.waitFor((e) => e.type === 'holdArrived' && e.url === '/hold?id=post-1', {
        from,
        timeoutMs: 10_000,
      });
      const slow = get(patient, 'patient-reset', 'request', '/slow?ms=1500');
      await untilStats([dead], 'the GET reached the leader', ([s]) =>
        Boolean(s?.requests.some((r) => r.url.includes('patient-reset'))),
      );
      dead.kill();
      expect((await dead.exited()).signal).toBe('SIGKILL');

      // Its connection broke after the POST was sent: a typed error at once, not a wait for the next leader.
      const nextLeader = until('the next leader', () => nextNamed(), 40_000).then(
        () => 'still pending when the next leader was named',
        () => 'still pending, and no next leader',
      );
      const postError = await Promise.race([post, nextLeader]);
      expect(postError).toBeInstanceOf(LeaderRequestError);
      expect(postError).toMatchObject({
        code: 'LEADER_REQUEST_FAILED',
        origin: dead.origin,
        sessionId: deadSession,
      });
      expect((postError as Error).message).toContain('broke the connection before answering');
      expect((postError as Error).cause).toBeInstanceOf(Error);
      expect(handle.current?.session.id).toBe(deadSession);

      // Meanwhile: patient GETs (refused by the dead process, then waiting), and hasty ones one
      // after another until the client names the next leader.
      pending.push(get(patient, 'patient-refused').then(() => undefined));
      pending.push(get(patient, 'patient-refused', 'fetch').then(() => undefined));
      const deadline = performance.now() + 40_000;
      for (let i = 0; !nextNamed(); i += 1) {
        if (performance.now() > deadline) throw new Error(`no next leader: ${JSON.stringify(log.named)}`);
        await get(hasty, 'hasty');
        if (i === 4) pending.push(get(patient, 'patient-later').then(() => undefined));
      }
      const nextSession = handle.current?.session.id ?? '';
      const after = await get(hasty, 'hasty-after');
      expect(after.answer).toMatchObject({ status: 200, session: nextSession });
      const reset = await slow;
      await Promise.all(pending);

      // -- the key went vacant (TTL), then to another backend (after the lock-delay), in Consul and for the client
      const consulSessions = holders.changes.map((c) => c.session);
      expect(consulSessions.slice(consulSessions.indexOf(deadSession))).toEqual([
        deadSession,
        null,
        nextSession,
      ]);
      expect(log.named.map((e) => e.session)).toEqual([deadSession, null, nextSession]);
      expect(vacancySeen).toBe(true);

      // -- idempotent requests with a long waitForLeader completed on the next leader, the one
      //    whose connection broke mid-request included
      const patients = outcomes.filter((o) => o.what.startsWith('patient'));
      expect(patients.map((o) => o.what).sort()).toEqual([
        'patient-later',
        'patient-refused',
        'patient-refused',
        'patient-reset',
        'patient-vacant',
      ]);
      for (const o of patients) {
        expect(o.error === undefined ? o.answer : why(o.error)).toMatchObject({
          status: 200,
          session: nextSession,
        });
      }
      expect(JSON.parse(reset.answer?.text ?? '')).toMatchObject({
        url: expect.stringContaining('patient-reset'),
      });

      // -- hasty ones failed with the error matching what the handle named when their wait ended:
      //    the dead leader still named (it refused them) or no leader at all
      const hastyOnes = outcomes.filter((o) => o.what.startsWith('hasty') && o.what !== 'hasty-after');
      let refusedCount = 0;
      let vacantCount = 0;
      for (const o of hastyOnes) {
        const at = `${o.what} (named at the end: ${String(o.namedAtSettle)})`;
        if (o.namedAtSettle === deadSession) {
          expect(o.error, at).toBeInstanceOf(LeaderRequestError);
          expect(o.error, at).toMatchObject({
            code: 'LEADER_REQUEST_FAILED',
            origin: dead.origin,
            sessionId: deadSession,
          });
          expect((o.error as Error).message, at).toContain('still the leader');
          expect((o.error as Error).cause, at).toMatchObject({ code: 'ECONNREFUSED' });
          refusedCount += 1;
        } else if (o.namedAtSettle === null) {
          expect(o.error, at).toBeInstanceOf(NoLeaderError);
          expect(o.error, at).toMatchObject({ code: 'NO_LEADER', key: crashKey });
          vacantCount += 1;
        } else {
          // Woken by the next leader within its wait: answered by it.
          expect(o.answer, at).toMatchObject({ status: 200, session: nextSession });
        }
      }
      expect(refusedCount).toBeGreaterThan(0);
      expect(vacantCount).toBeGreaterThan(0);
      for (const o of outcomes.filter((x) => x.answer)) {
        expect(log.indexOf(o.answer?.session ?? '')).toBeGreaterThanOrEqual(o.namedAtDispatch);
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
        `crash: ${hastyOnes.length} hasty requests, ${refusedCount} refused by the dead leader, ${vacantCount} without a leader`,
      );

      await patient.close();
      await hasty.close();
      handle.close();
      await untilStats(alive, 'no connection open after close()', (all) =>
        all.every((s) => s.openConnections === 0),
      );
    } finally {
      log.stop();
      handle.close();
      // Closed above when all went well; after a failure nothing may keep the test waiting.
      await Promise.all([patient.destroy(), hasty.destroy()]);
    }
  });
});
