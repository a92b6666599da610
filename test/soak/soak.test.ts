/**
 * Load and soak test (`pnpm test:soak`, kept out of `pnpm test`): thousands of
 * leadership flips against a real Consul dev agent, written as fast as Consul
 * acknowledges them, followed by hundreds of subscribers of one
 * `createLeaderDiscovery`, some late, some leaving and coming back.
 *
 * Knobs (environment): SOAK_FLIPS (2000), SOAK_SUBSCRIBERS (300), SOAK_KEYS
 * (20, the second phase), SOAK_SEED (random; printed, to replay a run).
 *
 * The SDK talks to the agent through test/support/proxy.ts, which counts its
 * requests and connections; the writer talks to the agent directly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import type { Observable } from 'rxjs';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { consulClient } from '../support/contender.js';
import { type ConsulProxy, type ProxiedRequest, startProxy } from '../support/proxy.js';
import { intEnv, leftBehind, mb, settledHeap, until } from './harness.js';
import { Schedule, writeAndSettle } from './run.js';
import { type Kind, Tracker, spread } from './trackers.js';
import {
  FLIP_MIX,
  FLIP_OPS,
  type FinalState,
  type FlipOp,
  SoakWriter,
  readFinalState,
  rng,
} from './writer.js';

const FLIPS = intEnv('SOAK_FLIPS', 2000);
const SUBSCRIBERS = intEnv('SOAK_SUBSCRIBERS', 300);
const KEYS = Math.max(1, intEnv('SOAK_KEYS', 20));
const SEED = intEnv('SOAK_SEED', Math.floor(Math.random() * 2 ** 31));
/** `SOAK_WATCH_SESSIONS=1`: the SDK follows the session list too, under the writers' session churn. */
const WATCH_SESSIONS = intEnv('SOAK_WATCH_SESSIONS', 0) === 1;
const random = rng(SEED);

/** Slack over "one read per change" for a key's KV reads: the first read, the one in flight, a wake-up or two. */
const KV_READ_SLACK = 10;
/** The SDK's default `coalesce.minKeys`. */
const COALESCE_MIN_KEYS = 32;
/** Idle wake-ups (reads that bring nothing new) the SDK allows per key: burst 5, then 2 a second (its defaults). */
const idleWakeups = (seconds: number): number => 5 + Math.ceil(2 * seconds);
/** Heap growth allowed between before createLeaderDiscovery() and after close(). */
const HEAP_GROWTH_LIMIT = 20 * 1024 * 1024;
const PHASE_TIMEOUT_MS = 120_000 + FLIPS * 60;

const Node = z.object({ host: z.string(), port: z.number().int(), seq: z.number().int() });

let agent: ConsulAgent;
let proxy: ConsulProxy;
let proxyClosed = false;
let writer: Consul;
let discovery: LeaderDiscovery;
let trackers: Tracker[] = [];
const baseline = { heapUsed: 0, resources: [] as string[] };
/** Most KV reads of one key waiting for their answer at once, seen when each arrived at the proxy. */
const maxInFlight = new Map<string, number>();

const kvPath = (key: string): string => `/v1/kv/${key}`;
const kvGets = (key: string, from = 0): ProxiedRequest[] =>
  proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.path === kvPath(key));
const log = (...lines: string[]): void => console.log(lines.map((l) => `[soak] ${l}`).join('\n'));

beforeAll(async () => {
  agent = await startConsulAgent();
  proxy = await startProxy(agent);
  writer = consulClient(agent.address);
  proxy.rule = (req) => {
    if (req.method === 'GET' && req.path.startsWith('/v1/kv/')) {
      // The request is already counted as pending when the rule runs.
      const now = proxy.inFlight(req.path);
      if (now > (maxInFlight.get(req.path) ?? 0)) maxInFlight.set(req.path, now);
    }
    return undefined;
  };
  baseline.heapUsed = await settledHeap();
  baseline.resources = process.getActiveResourcesInfo();
  discovery = createLeaderDiscovery({
    consul: { host: proxy.host, port: proxy.port },
    watchSessions: WATCH_SESSIONS,
  });
  log(
    `seed ${SEED} (SOAK_SEED), flips ${FLIPS}, subscribers ${SUBSCRIBERS}, keys in phase 2 ${KEYS}, watchSessions ${WATCH_SESSIONS}`,
    `heap before createLeaderDiscovery(): ${mb(baseline.heapUsed)}`,
  );
}, 60_000);

afterAll(async () => {
  discovery?.close();
  if (proxy && !proxyClosed) await proxy.close();
  writer?.destroy();
  await agent?.destroy();
});

interface PhaseResult {
  readonly trackers: Tracker[];
  readonly finals: Map<string, FinalState>;
  readonly writers: SoakWriter[];
  readonly writeSeconds: number;
  readonly totalSeconds: number;
  readonly firstRequest: number;
  /** Every subscriber agreed with Consul's final state before the deadline. */
  readonly converged: boolean;
  /** Subscribers that still received something during the quiet period. */
  readonly lateEmissions: number;
  /** From the last write's ack until every subscriber agreed with Consul. */
  readonly convergeSeconds: number;
}

/**
 * Flips the keys' leadership `flips` times in all (one sequential writer per key,
 * all keys at once), while `subscribers` subscribers follow them: 70% from the
 * start, 25% joining at a random flip, 5% after the last write; 15% of them
 * leave and come back one to three times. Then waits for a quiet period.
 */
async function runPhase(
  label: string,
  keys: readonly string[],
  flips: number,
  subscribers: number,
): Promise<PhaseResult> {
  const firstRequest = proxy.requests.length;
  const leaderOf = (key: string): Observable<never> =>
    discovery.leader(key, { schema: Node }) as Observable<unknown> as Observable<never>;
  const watchOf = (key: string): Observable<never> =>
    discovery.watch(key, { schema: Node }) as Observable<unknown> as Observable<never>;
  // Three shared leader() and three shared watch() Observables per key; 20% of the subscribers make their own call per subscription.
  const shared = new Map(
    keys.map((key) => [
      key,
      {
        leader: [leaderOf(key), leaderOf(key), leaderOf(key)],
        watch: [watchOf(key), watchOf(key), watchOf(key)],
      },
    ]),
  );

  const schedule = new Schedule(flips, random, 2);
  const phaseTrackers: Tracker[] = [];
  for (let i = 0; i < subscribers; i += 1) {
    const key = keys[i % keys.length] as string;
    const kind: Kind = Math.floor(i / keys.length) % 2 === 0 ? 'leader' : 'watch';
    const ownCall = random() < 0.2;
    const pool = shared.get(key)?.[kind] ?? [];
    const sharedSource = pool[i % pool.length] as Observable<never>;
    const source = ownCall ? () => (kind === 'leader' ? leaderOf(key) : watchOf(key)) : () => sharedSource;
    const tracker = new Tracker(trackers.length + phaseTrackers.length, kind, key, source, ownCall);
    phaseTrackers.push(tracker);
    // Each key's first leader() and first watch() subscriber stay from start to end, so a key's stream
    // never loses its last subscriber (that would restart it: a new first read, an aborted one in flight).
    if (i < 2 * keys.length) {
      tracker.subscribe();
      continue;
    }
    const start = random();
    let from = 0;
    if (start < 0.7) tracker.subscribe();
    else if (start < 0.95) {
      from = schedule.randomWrite(0.9);
      schedule.at(from, () => tracker.subscribe());
    } else {
      schedule.afterLastWrite(() => tracker.subscribe());
      continue;
    }
    if (random() < 0.15) schedule.comesAndGoes(tracker, from, 1 + Math.floor(random() * 3));
  }
  trackers.push(...phaseTrackers);

  const writers = keys.map(
    (key, k) =>
      new SoakWriter(writer, {
        mix: FLIP_MIX,
        label: `${label}-k${k}`,
        random: rng(SEED + 7919 * (k + 1)),
        keys: [key],
      }),
  );
  const perKey = (k: number): number => Math.floor(flips / keys.length) + (k < flips % keys.length ? 1 : 0);
  let done = 0;
  const run = await writeAndSettle({
    writers,
    schedule,
    subscribers: phaseTrackers,
    // Each key its share of the flips; what is scheduled at the n-th flip happens once n are acknowledged.
    write: async (w, k) => {
      for (let n = perKey(k); n > 0; n -= 1) {
        await w.flip();
        done += 1;
        schedule.reached(done);
      }
    },
    readFinal: async () => {
      const finals = new Map<string, FinalState>();
      for (const key of keys) finals.set(key, await readFinalState(writer, key));
      return finals;
    },
    mismatch: (t, finals) => t.mismatch(finals.get(t.key) as FinalState),
  });
  return {
    trackers: phaseTrackers,
    finals: run.final,
    writers,
    writeSeconds: run.writeSeconds,
    totalSeconds: run.totalSeconds,
    firstRequest,
    converged: run.converged,
    lateEmissions: run.late.length,
    convergeSeconds: run.convergeSeconds,
  };
}

function report(label: string, keys: readonly string[], result: PhaseResult): void {
  const { writers, writeSeconds, totalSeconds } = result;
  const flips = writers.reduce((sum, w) => sum + w.flips, 0);
  const ops = FLIP_OPS.map((op: FlipOp) => `${op} ${writers.reduce((s, w) => s + w.counts[op], 0)}`);
  const gets = keys.reduce((sum, key) => sum + kvGets(key, result.firstRequest).length, 0);
  const sessionReads = proxy.requests
    .slice(result.firstRequest)
    .filter((r) => r.path.startsWith('/v1/session/info/')).length;
  const byKind = (kind: Kind) => result.trackers.filter((t) => t.kind === kind);
  const emissions = (list: Tracker[]): number => list.reduce((s, t) => s + t.emissions, 0);
  const throughout = result.trackers.filter((t) => t.subscriptions === 1 && t.emissions > 1);
  log(
    `${label}: ${flips} flips on ${keys.length} key(s) in ${writeSeconds.toFixed(2)} s = ${(flips / writeSeconds).toFixed(0)} flips/s (writes not paced; +${writers.reduce((s, w) => s + w.otherWrites, 0)} session writes)`,
    `${label}: mix: ${ops.join(', ')}`,
    `${label}: ${result.trackers.length} subscribers; emissions: leader() ${emissions(byKind('leader'))}, watch() ${emissions(byKind('watch'))}, total ${emissions(result.trackers)} (${(emissions(result.trackers) / totalSeconds).toFixed(0)}/s)`,
    `${label}: emissions per subscriber (${throughout.length} subscribed once): ${spread(throughout.map((t) => t.emissions))}`,
    `${label}: SDK requests: KV GETs ${gets} for ${flips} changes = ${(gets / Math.max(1, flips)).toFixed(3)} per change; session/info reads ${sessionReads}; max KV reads in flight per key ${Math.max(0, ...keys.map((k) => maxInFlight.get(kvPath(k)) ?? 0))}`,
    `${label}: every subscriber agreed with Consul ${result.convergeSeconds.toFixed(2)} s after the last write (then 1 s quiet)`,
  );
}

function assertPhase(keys: readonly string[], result: PhaseResult): void {
  const problems: string[] = [];
  for (const t of result.trackers) {
    const final = result.finals.get(t.key) as FinalState;
    const mismatch = t.mismatch(final);
    if (mismatch) problems.push(`subscriber ${t.id} (${t.kind}, ${t.key}) ends on ${mismatch}`);
  }
  expect(problems.slice(0, 10), `${problems.length} subscribers disagree with Consul`).toEqual([]);
  expect(result.converged).toBe(true);
  expect(result.lateEmissions, 'emissions during the quiet period').toBe(0);
  expect(result.trackers.flatMap((t) => t.violations).slice(0, 20)).toEqual([]);
  expect(result.trackers.flatMap((t) => t.errors)).toEqual([]);
  expect(result.trackers.filter((t) => t.completed).map((t) => t.id)).toEqual([]);
  // A healthy local agent: the SDK never had reason to report Consul unreachable.
  expect(result.trackers.reduce((s, t) => s + t.unreachable, 0)).toBe(0);

  const seconds = result.totalSeconds;
  // Every soak key is under `soak/`: once the SDK's default of 32 keys of a prefix are followed
  // (phase 1's key plus phase 2's), it serves them all from one recursive query on the prefix.
  const coalesced = keys.length > 1 && keys.length + 1 >= COALESCE_MIN_KEYS;
  if (coalesced) {
    const recursive = proxy.requests
      .slice(result.firstRequest)
      .filter((r) => r.method === 'GET' && r.path === kvPath('soak/') && r.query.has('recurse'));
    const changes = result.writers.reduce((sum, w) => sum + w.flips, 0);
    expect(recursive.length, 'recursive KV GETs of soak/').toBeLessThanOrEqual(
      changes + KV_READ_SLACK + idleWakeups(seconds),
    );
    expect(maxInFlight.get(kvPath('soak/')), 'recursive reads in flight at once').toBe(1);
    expect(proxy.inFlight(kvPath('soak/'))).toBe(1);
  }
  for (const [k, key] of keys.entries()) {
    const gets = kvGets(key, result.firstRequest);
    if (!result.trackers.some((t) => t.key === key)) {
      expect(gets, `KV GETs of ${key}, which no one follows`).toEqual([]);
      continue;
    }
    const changes = result.writers[k]?.flips ?? 0;
    // One stream's worth, whatever the number of subscribers: at most one read per change, plus the
    // first read, the one in flight, and the rate-limited wake-ups that bring nothing new.
    const bound = changes + KV_READ_SLACK + (keys.length > 1 ? idleWakeups(seconds) : 0);
    expect(gets.length, `KV GETs of ${key} (${changes} changes)`).toBeLessThanOrEqual(bound);
    // Coalesced keys stop their own reads when the group switches; the prefix's are checked above.
    if (coalesced) continue;
    // One chain of reads: each blocks on the X-Consul-Index of the answer before it, with an explicit wait.
    const unchained = gets.slice(1).filter((r, i) => r.query.get('index') !== gets[i]?.index);
    expect(unchained.length, `KV reads of ${key} not blocking on the previous answer's index`).toBe(0);
    expect(gets.slice(1).filter((r) => r.query.get('wait') !== '60000ms').length).toBe(0);
    // No failure, so the only non-blocking read is the first one.
    expect(gets.filter((r) => !r.query.has('index')).length, `non-blocking reads of ${key}`).toBe(1);
    expect(maxInFlight.get(kvPath(key)), `KV reads of ${key} in flight at once`).toBe(1);
    // After the quiet period the stream is parked on one blocking read.
    expect(proxy.inFlight(kvPath(key))).toBe(1);
  }
}

describe('soak: leadership flips at full speed, hundreds of subscribers', () => {
  it(
    `phase 1: ${FLIPS} flips of one key, ${SUBSCRIBERS} subscribers`,
    async () => {
      const keys = ['soak/one/leader'];
      const result = await runPhase('phase 1', keys, FLIPS, SUBSCRIBERS);
      report('phase 1', keys, result);
      assertPhase(keys, result);
    },
    PHASE_TIMEOUT_MS,
  );

  it(
    `phase 2: ${FLIPS} flips over ${KEYS} keys, ${SUBSCRIBERS} more subscribers; phase 1's subscribers stay put`,
    async () => {
      const earlier = trackers.slice();
      const earlierEmissions = earlier.map((t) => t.emissions);
      const earlierFinal = await readFinalState(writer, 'soak/one/leader');
      const keys = Array.from({ length: KEYS }, (_, k) => `soak/multi/k${String(k).padStart(2, '0')}/leader`);
      const result = await runPhase('phase 2', keys, FLIPS, SUBSCRIBERS);
      report('phase 2', keys, result);
      assertPhase(keys, result);
      // Phase 1's key did not change: its subscribers saw nothing new, and still agree with Consul.
      expect(earlier.filter((t, i) => t.emissions !== earlierEmissions[i]).map((t) => t.id)).toEqual([]);
      expect(earlier.filter((t) => t.mismatch(earlierFinal) !== null).map((t) => t.id)).toEqual([]);
    },
    PHASE_TIMEOUT_MS,
  );

  it('close(): every stream completes, no socket or timer is left, the heap returns near its start', async () => {
    for (const t of trackers) t.markCloseStarting();
    expect(trackers.filter((t) => t.completedEarly).map((t) => t.id)).toEqual([]);
    expect(trackers.flatMap((t) => t.errors)).toEqual([]);
    const subscribed = trackers.filter((t) => t.subscribed);
    expect(subscribed.length).toBe(trackers.length);
    expect(proxy.openConnections()).toBeGreaterThan(0);

    discovery.close();
    const closedAt = performance.now();
    expect(subscribed.filter((t) => !t.completed).map((t) => t.id)).toEqual([]);
    const socketsClosed = await until(() => proxy.openConnections() === 0, 10_000);
    expect(socketsClosed, `proxy connections still open: ${proxy.openConnections()}`).toBe(true);
    expect(proxy.inFlight('/')).toBe(0);

    // Drop what the test itself holds (subscribers' last values, the proxy's request log) and close
    // the test's own sockets (proxy, writer), so what remains open or allocated is the SDK's.
    const summary = { subscribers: trackers.length, requests: proxy.requests.length };
    for (const t of trackers) t.release();
    trackers = [];
    proxy.requests.length = 0;
    proxy.rule = undefined;
    await proxy.close();
    proxyClosed = true;
    writer.destroy();

    const { noSockets, timersGone, resources, heapAfter } = await leftBehind(baseline.resources, closedAt);
    log(
      `after close(): ${summary.subscribers} subscribers completed, ${summary.requests} proxied requests in all`,
      `heap: before createLeaderDiscovery() ${mb(baseline.heapUsed)}, after close() ${mb(heapAfter)}, growth ${mb(heapAfter - baseline.heapUsed)} (limit ${mb(HEAP_GROWTH_LIMIT)})`,
      `active resources before: ${JSON.stringify(baseline.resources)}`,
      `active resources after:  ${JSON.stringify(resources)}`,
    );
    expect(noSockets, `TCP sockets left: ${JSON.stringify(resources)}`).toBe(true);
    expect(timersGone, `timers left: ${JSON.stringify(resources)}`).toBe(true);
    expect(heapAfter - baseline.heapUsed).toBeLessThan(HEAP_GROWTH_LIMIT);
  }, 60_000);
});
