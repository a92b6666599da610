/**
 * The OpenTelemetry metrics against a real agent, with the counting proxy in front and the
 * OpenTelemetry SDK's `MeterProvider` read on demand: a run with a change, an outage, a
 * permission denial and a vacancy, where each instrument equals what the proxy counted and
 * what the test did; the highest last contact among followed scopes; a prefix (followed as
 * one, its outages, a vacancy of one of its keys); the global provider read when a discovery
 * is created; the `key` attribute only with `metrics.perKey`; and a CommonJS program without
 * `@opentelemetry/api` installed.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { type Observable, map } from 'rxjs';
import { z } from 'zod';
import { metrics } from '@opentelemetry/api';
import {
  DataPointType,
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  type LeaderDiscovery,
  type LeaderDiscoveryOptions,
  type LeaderState,
  type PrefixState,
  type RetryPolicy,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { useAgent } from './support/agent.js';
import { acquire, createSession, release } from './support/contender.js';
import type { FaultRule, ProxiedRequest } from './support/proxy.js';
import { type Recorder, delay, record, until } from './support/recorder.js';
import { failOnUnhandledRejections } from './support/unhandled.js';

const Node = z.object({ host: z.string() });
type State = LeaderState<z.output<typeof Node>>;

/** Retries in a few ms (403s too), so outages of several failed reads stay short. */
const RETRY = {
  initialDelayMs: 10,
  maxDelayMs: 40,
  permissionDeniedDelayMs: 40,
} as const satisfies Partial<RetryPolicy>;
/** How long the test leaves the key without a leader. */
const VACANCY_MS = 400;
const METER = '@consul-leader/discovery';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A CommonJS program for which `@opentelemetry/api` is not installed (its resolution fails):
 * it require()s the SDK, reads KEY once with a discovery without a provider and once with a
 * provider that records what is called, and prints what it saw.
 */
const WITHOUT_API = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api') {
    throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};
let missing = false;
try { require('@opentelemetry/api'); } catch { missing = true; }
const { createLeaderDiscovery } = require('@consul-leader/discovery');
const meters = [];
const calls = [];
const instrument = (name) => ({
  add: (value, attributes) => calls.push([name, value, attributes]),
  record: (value, attributes) => calls.push([name, attributes]),
  addCallback: () => calls.push([name, 'callback']),
});
const provider = {
  getMeter: (name, version) => {
    meters.push([name, version]);
    return { createCounter: instrument, createHistogram: instrument, createUpDownCounter: instrument, createObservableGauge: instrument };
  },
};
const consul = { host: process.env.PROXY_HOST, port: Number(process.env.PROXY_PORT) };
(async () => {
  const plain = createLeaderDiscovery({ consul });
  const metered = createLeaderDiscovery({ consul, meterProvider: provider });
  const leaders = [await plain.current(process.env.KEY), await metered.current(process.env.KEY)];
  plain.close();
  metered.close();
  console.log(JSON.stringify({ missing, leaders: leaders.map((l) => l && l.session.id), meters, calls }));
})();
`;

const env = useAgent({ proxy: true });
const uniqueKey = (): string => env.uniqueKey('observability-metrics');
const uniquePrefix = (): string => env.uniquePrefix('observability-metrics');
const kvPath = (key: string): string => `/v1/kv/${key}`;
const kvRequests = (key: string): ProxiedRequest[] =>
  env.proxy.requests.filter((r) => r.path === kvPath(key));

const discoveries: LeaderDiscovery[] = [];
const providers: MeterProvider[] = [];

failOnUnhandledRejections();
afterEach(async () => {
  env.proxy.rule = undefined;
  metrics.disable();
  for (const discovery of discoveries.splice(0)) discovery.close();
  for (const provider of providers.splice(0)) await provider.shutdown();
});

/** A reader collected on demand (cumulative: each value is the total since the start). */
class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

interface Metered {
  readonly provider: MeterProvider;
  /** The SDK's instruments as collected now, by name. */
  collect(): Promise<Map<string, MetricData>>;
}

function meterProvider(): Metered {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  providers.push(provider);
  return {
    provider,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      expect(errors).toEqual([]);
      const byName = new Map<string, MetricData>();
      for (const scope of resourceMetrics.scopeMetrics) {
        if (scope.scope.name !== METER) continue;
        expect(scope.scope.version).toMatch(/^\d+\.\d+\.\d+/);
        for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
      }
      return byName;
    },
  };
}

function discoveryWith(options: Partial<LeaderDiscoveryOptions>): LeaderDiscovery {
  const discovery = createLeaderDiscovery({
    consul: { host: env.proxy.host, port: env.proxy.port },
    // Long: a blocked read ends only when the test changes the key (or unsubscribes).
    wait: '10s',
    requestTimeout: '2s',
    retry: RETRY,
    ...options,
  });
  discoveries.push(discovery);
  return discovery;
}

/** The number data points of a counter, up-down counter or gauge (none when it is absent). */
function numbers(collected: Map<string, MetricData>, name: string): DataPoint<number>[] {
  const metric = collected.get(name);
  if (!metric) return [];
  expect([DataPointType.SUM, DataPointType.GAUGE]).toContain(metric.dataPointType);
  return metric.dataPoints as DataPoint<number>[];
}

function histograms(collected: Map<string, MetricData>, name: string): DataPoint<Histogram>[] {
  const metric = collected.get(name);
  if (!metric) return [];
  expect(metric.dataPointType).toBe(DataPointType.HISTOGRAM);
  return metric.dataPoints as DataPoint<Histogram>[];
}

/** Points' values by their attributes (as sorted `name=value` pairs), zeros left out. */
function byAttributes<V>(
  points: DataPoint<V>[],
  value: (point: DataPoint<V>) => number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const point of points) {
    const v = value(point);
    if (v === 0) continue;
    const label = Object.entries(point.attributes)
      .map(([name, attribute]) => `${name}=${String(attribute)}`)
      .sort()
      .join(',');
    out[label] = (out[label] ?? 0) + v;
  }
  return out;
}

const count = (tally: Record<string, number>, label: string): void => {
  tally[label] = (tally[label] ?? 0) + 1;
};

/** What the SDK calls the read: from the proxy's log. */
function kindOf(request: ProxiedRequest): string {
  if (request.path.startsWith('/v1/session/info/')) return 'session_info';
  if (request.path === '/v1/session/list') return 'session_list';
  if (request.query.has('recurse')) return 'kv_recurse';
  if (request.query.has('keys')) return 'kv_keys';
  return 'kv';
}

/** A state and when the test's subscriber got it (performance.now()). */
interface Timed {
  readonly state: State;
  readonly at: number;
}

const timed = (states: Observable<State>): Observable<Timed> =>
  states.pipe(map((state) => ({ state, at: performance.now() })));

const blockedRead = (key: string): Promise<void> =>
  until(
    'a blocking read in flight',
    () => env.proxy.inFlight(kvPath(key)) === 1 && kvRequests(key).at(-1)?.query.has('index') === true,
  );

describe('OpenTelemetry metrics', () => {
  it('equal what the proxy counted and what the test did, instrument by instrument', async () => {
    const { provider, collect } = meterProvider();
    const key = uniqueKey();
    const a = await createSession(env.consul, { name: 'a' });
    expect(await acquire(env.consul, key, a, JSON.stringify({ host: 'a' }))).toBe(true);
    const discovery = discoveryWith({ meterProvider: provider });
    // Three subscribers of the key (two pipelines): each state counts once.
    const states: Recorder<Timed> = record(timed(discovery.watch(key, { schema: Node })));
    const again = record(discovery.watch(key, { schema: Node }));
    const leaders = record(discovery.leader(key, { schema: Node }));
    await states.next(({ state }) => state.status === 'leader');
    await blockedRead(key);

    let collected = await collect();
    expect(byAttributes(numbers(collected, 'consul_leader.followed'), (p) => p.value)).toEqual({
      'type=key': 1,
    });
    expect(numbers(collected, 'consul_leader.unreachable').map((p) => p.value)).toEqual([0]);

    // A change: the leader writes another descriptor.
    expect(await acquire(env.consul, key, a, JSON.stringify({ host: 'a2' }))).toBe(true);
    await states.next(({ state }) => state.status === 'leader' && state.leader.node.host === 'a2');
    await blockedRead(key);

    /** Fails the key's reads from now on; the leader's write wakes the blocked read into it. */
    const fault = async (rule: NonNullable<FaultRule>, host: string): Promise<void> => {
      env.proxy.rule = (req) => (req.path === kvPath(key) ? rule(req) : undefined);
      expect(await acquire(env.consul, key, a, JSON.stringify({ host }))).toBe(true);
    };
    const expectUnreachableGauge = async (value: number): Promise<void> => {
      collected = await collect();
      expect(numbers(collected, 'consul_leader.unreachable').map((p) => p.value)).toEqual([value]);
    };

    // An outage: the proxy resets every read of the key.
    const reset = new Set<ProxiedRequest>();
    let from = states.values.length;
    await fault((req) => {
      reset.add(req);
      return { action: 'reset' };
    }, 'a3');
    await states.next(({ state }) => state.status === 'unreachable' && state.attempt >= 5, { from });
    await expectUnreachableGauge(1);
    env.proxy.rule = undefined;
    await states.next(({ state }) => state.status === 'leader', { from: states.values.length });
    await expectUnreachableGauge(0);
    await blockedRead(key);

    // A permission denial: the proxy answers 403 for a while.
    from = states.values.length;
    await fault(
      () => ({
        action: 'respond',
        status: 403,
        headers: { 'content-type': 'text/plain' },
        body: 'Permission denied',
      }),
      'a4',
    );
    await states.next(
      ({ state }) =>
        state.status === 'unreachable' && state.error.code === 'PERMISSION_DENIED' && state.attempt >= 3,
      { from },
    );
    await expectUnreachableGauge(1);
    env.proxy.rule = undefined;
    await states.next(({ state }) => state.status === 'leader', { from: states.values.length });
    await expectUnreachableGauge(0);
    await blockedRead(key);

    // A vacancy: the leader releases, another session acquires VACANCY_MS later.
    from = states.values.length;
    expect(await release(env.consul, key, a)).toBe(true);
    const vacant = await states.next(({ state }) => state.status === 'vacant', { from });
    await delay(VACANCY_MS);
    const b = await createSession(env.consul, { name: 'b' });
    expect(await acquire(env.consul, key, b, JSON.stringify({ host: 'b' }))).toBe(true);
    const next = await states.next(
      ({ state }) => state.status === 'leader' && state.leader.session.id === b,
      { from },
    );
    await blockedRead(key);

    collected = await collect();
    expect(numbers(collected, 'consul_leader.last_contact')).toHaveLength(1);
    // A dev agent is its own Raft leader: its reads are never stale.
    expect(numbers(collected, 'consul_leader.last_contact')[0]?.value).toBe(0);

    // Unsubscribed: the blocked read is aborted, the key no longer followed.
    states.unsubscribe();
    again.unsubscribe();
    leaders.unsubscribe();
    await until('no read in flight', () => env.proxy.inFlight('/v1/') === 0);
    await delay(100);
    collected = await collect();

    // consul_leader.followed: back to 0.
    expect(numbers(collected, 'consul_leader.followed').map((p) => [p.attributes, p.value])).toEqual([
      [{ type: 'key' }, 0],
    ]);
    // consul_leader.unreachable: 0, reported.
    expect(numbers(collected, 'consul_leader.unreachable').map((p) => p.value)).toEqual([0]);
    // Nothing followed: 0.
    expect(numbers(collected, 'consul_leader.last_contact').map((p) => p.value)).toEqual([0]);

    // consul_leader.requests: the proxy's log, by kind, blocking and outcome.
    const expected: Record<string, number> = {};
    const expectedReads: Record<string, number> = {};
    for (const request of env.proxy.requests) {
      const ours = [kvPath(key), `/v1/session/info/${a}`, `/v1/session/info/${b}`];
      if (!ours.includes(request.path)) continue;
      const outcome =
        request.status === 200
          ? 'ok'
          : request.status === 404
            ? 'not_found'
            : request.status === 403
              ? 'PERMISSION_DENIED'
              : reset.has(request)
                ? 'CONSUL_UNREACHABLE'
                : request.status === undefined
                  ? 'aborted'
                  : `status ${request.status}`;
      const blocking = request.query.has('index');
      count(expected, `blocking=${blocking},kind=${kindOf(request)},outcome=${outcome}`);
      if (!blocking) count(expectedReads, `kind=${kindOf(request)},outcome=${outcome}`);
    }
    const requests = byAttributes(numbers(collected, 'consul_leader.requests'), (p) => p.value);
    expect(requests).toEqual(expected);
    // Every kind of answer the run made is there.
    expect(expected).toMatchObject({
      'blocking=false,kind=kv,outcome=ok': expect.any(Number),
      'blocking=true,kind=kv,outcome=ok': expect.any(Number),
      'blocking=true,kind=kv,outcome=aborted': 1,
      'blocking=false,kind=kv,outcome=CONSUL_UNREACHABLE': expect.any(Number),
      'blocking=false,kind=kv,outcome=PERMISSION_DENIED': expect.any(Number),
      'blocking=false,kind=session_info,outcome=ok': 2,
    });
    expect(reset.size).toBeGreaterThanOrEqual(5);

    // consul_leader.request.duration: every non-blocking read, failed ones included, in seconds.
    const reads = histograms(collected, 'consul_leader.request.duration');
    expect(byAttributes(reads, (p) => p.value.count)).toEqual(expectedReads);
    for (const point of reads) {
      expect(point.value.sum).toBeGreaterThan(0);
      expect(point.value.max).toBeLessThan(2.5); // seconds: every read ended within requestTimeout
    }
    expect(collected.get('consul_leader.request.duration')?.descriptor.unit).toBe('s');

    // consul_leader.changes: each state watch() emitted, once for three subscribers.
    const emitted: Record<string, number> = {};
    for (const { state } of states.values) count(emitted, `status=${state.status}`);
    expect(byAttributes(numbers(collected, 'consul_leader.changes'), (p) => p.value)).toEqual(emitted);
    expect(emitted).toMatchObject({ 'status=leader': 7, 'status=vacant': 1 });
    expect(emitted['status=unreachable']).toBeGreaterThanOrEqual(8);
    expect(again.values).toEqual(states.values.map(({ state }) => state));

    // consul_leader.vacant.duration: one vacancy, as long as the one the test made.
    const vacancies = histograms(collected, 'consul_leader.vacant.duration');
    expect(vacancies).toHaveLength(1);
    expect(vacancies[0]?.attributes).toEqual({});
    expect(vacancies[0]?.value.count).toBe(1);
    const seconds = (next.at - vacant.at) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(VACANCY_MS / 1000);
    expect(Math.abs((vacancies[0]?.value.sum ?? 0) - seconds)).toBeLessThan(0.02);
    expect(collected.get('consul_leader.vacant.duration')?.descriptor.unit).toBe('s');

    // Never a key attribute by default.
    for (const metric of collected.values()) {
      for (const point of metric.dataPoints) expect(point.attributes).not.toHaveProperty('key');
    }
  });

  it('reports the highest last contact among followed scopes, and forgets scopes no longer followed', async () => {
    const { provider, collect } = meterProvider();
    const fresh = uniqueKey();
    const stale = uniqueKey();
    const session = await createSession(env.consul);
    expect(await acquire(env.consul, fresh, session, JSON.stringify({ host: 'fresh' }))).toBe(true);
    expect(await acquire(env.consul, stale, session, JSON.stringify({ host: 'stale' }))).toBe(true);
    // The stale key's answers say the server last heard from the Raft leader 1,250 ms ago; a
    // key read once (current()) answers 404 with a 9 s last contact.
    const other = uniqueKey();
    env.proxy.rule = (req) => {
      if (req.path === kvPath(stale)) {
        return {
          action: 'forward',
          rewrite: (answer) => ({
            ...answer,
            headers: { ...answer.headers, 'x-consul-lastcontact': '1250' },
          }),
        };
      }
      if (req.path === kvPath(other)) {
        return {
          action: 'respond',
          status: 404,
          headers: { 'x-consul-index': '1', 'x-consul-lastcontact': '9000', 'x-consul-knownleader': 'true' },
        };
      }
      return undefined;
    };
    const discovery = discoveryWith({ meterProvider: provider });
    const lastContact = async (): Promise<number[]> =>
      numbers(await collect(), 'consul_leader.last_contact').map((p) => p.value);

    const freshStates = record(discovery.watch(fresh, { schema: Node }));
    await freshStates.next((s) => s.status === 'leader');
    expect(await lastContact()).toEqual([0]);

    const staleStates = record(discovery.watch(stale, { schema: Node, consistency: 'stale' }));
    await staleStates.next((s) => s.status === 'leader');
    expect(await lastContact()).toEqual([1.25]);
    // A one-off read of a key nobody follows is no followed scope.
    expect(await discovery.current(other)).toBeNull();
    expect(await lastContact()).toEqual([1.25]);

    staleStates.unsubscribe();
    expect(await lastContact()).toEqual([0]);
    freshStates.unsubscribe();
    expect(await lastContact()).toEqual([0]);
  });

  it('records a prefix: followed as a prefix, its outages, and the vacancy of one of its keys', async () => {
    const { provider, collect } = meterProvider();
    const prefix = uniquePrefix();
    const [first, second] = [`${prefix}a`, `${prefix}b`];
    const a = await createSession(env.consul, { name: 'a' });
    const c = await createSession(env.consul, { name: 'c' });
    expect(await acquire(env.consul, first, a, JSON.stringify({ host: 'a' }))).toBe(true);
    expect(await acquire(env.consul, second, c, JSON.stringify({ host: 'c' }))).toBe(true);
    const discovery = discoveryWith({ meterProvider: provider, metrics: { perKey: true } });
    const states = record(
      discovery
        .watchPrefix(prefix, { schema: Node })
        .pipe(map((state) => ({ state, at: performance.now() }))),
    );
    const leaderOf = (state: PrefixState<z.output<typeof Node>>, key: string): string | undefined => {
      const of = state.states.get(key);
      return of?.status === 'leader' ? of.leader.session.id : of?.status;
    };
    await states.next(({ state }) => leaderOf(state, first) === a && leaderOf(state, second) === c);
    await until(
      'a blocking read in flight',
      () =>
        env.proxy.inFlight(kvPath(prefix)) === 1 && kvRequests(prefix).at(-1)?.query.has('index') === true,
    );
    const unreachableGauge = async (): Promise<number[]> =>
      numbers(await collect(), 'consul_leader.unreachable').map((p) => p.value);
    expect(await unreachableGauge()).toEqual([0]);

    // An outage of the prefix's reads.
    let from = states.values.length;
    env.proxy.rule = (req) => (req.path === kvPath(prefix) ? { action: 'reset' } : undefined);
    expect(await acquire(env.consul, second, c, JSON.stringify({ host: 'c2' }))).toBe(true);
    await states.next(({ state }) => (state.unreachable?.attempt ?? 0) >= 3, { from });
    expect(await unreachableGauge()).toEqual([1]);
    env.proxy.rule = undefined;
    await states.next(({ state }) => state.unreachable === null, { from: states.values.length });
    expect(await unreachableGauge()).toEqual([0]);

    // A vacancy of one key.
    from = states.values.length;
    expect(await release(env.consul, first, a)).toBe(true);
    const vacant = await states.next(({ state }) => leaderOf(state, first) === 'vacant', { from });
    await delay(VACANCY_MS);
    const b = await createSession(env.consul, { name: 'b' });
    expect(await acquire(env.consul, first, b, JSON.stringify({ host: 'b' }))).toBe(true);
    const next = await states.next(({ state }) => leaderOf(state, first) === b, { from });

    let collected = await collect();
    expect(byAttributes(numbers(collected, 'consul_leader.followed'), (p) => p.value)).toEqual({
      'type=prefix': 1,
    });
    const vacancies = histograms(collected, 'consul_leader.vacant.duration');
    expect(vacancies.map((p) => [p.attributes, p.value.count])).toEqual([[{ key: first }, 1]]);
    const seconds = (next.at - vacant.at) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(VACANCY_MS / 1000);
    expect(Math.abs((vacancies[0]?.value.sum ?? 0) - seconds)).toBeLessThan(0.02);
    const changes = byAttributes(numbers(collected, 'consul_leader.changes'), (p) => p.value);
    const outages = states.values.filter(({ state }) => state.unreachable !== null).length;
    expect(outages).toBeGreaterThanOrEqual(3);
    // The prefix's failed reads, once each (as the prefix's), and its keys' own states.
    expect(changes).toMatchObject({
      [`key=${prefix},status=unreachable`]: outages,
      [`key=${first},status=vacant`]: 1,
    });
    expect(changes[`key=${first},status=leader`]).toBeGreaterThanOrEqual(2);
    expect(changes[`key=${second},status=leader`]).toBeGreaterThanOrEqual(2);

    states.unsubscribe();
    collected = await collect();
    expect(byAttributes(numbers(collected, 'consul_leader.followed'), (p) => p.value)).toEqual({});
    expect(numbers(collected, 'consul_leader.unreachable').map((p) => p.value)).toEqual([0]);
  });

  it('uses the global meter provider read when the discovery is created', async () => {
    const { provider, collect } = meterProvider();
    const before = uniqueKey();
    const after = uniqueKey();
    const a = await createSession(env.consul, { name: 'before' });
    const b = await createSession(env.consul, { name: 'after' });
    expect(await acquire(env.consul, before, a, JSON.stringify({ host: 'a' }))).toBe(true);
    expect(await acquire(env.consul, after, b, JSON.stringify({ host: 'b' }))).toBe(true);

    // Created while no provider is registered: no metrics, even once one is.
    const early = discoveryWith({});
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    const late = discoveryWith({});
    const earlyStates = record(early.watch(before, { schema: Node }));
    const lateStates = record(late.watch(after, { schema: Node }));
    await earlyStates.next((s) => s.status === 'leader');
    await lateStates.next((s) => s.status === 'leader');
    await blockedRead(before);
    await blockedRead(after);

    const collected = await collect();
    expect(byAttributes(numbers(collected, 'consul_leader.followed'), (p) => p.value)).toEqual({
      'type=key': 1,
    });
    // Only the late discovery's answered requests (its blocked read has not ended).
    const answered = env.proxy.requests.filter(
      (r) => (r.path === kvPath(after) || r.path === `/v1/session/info/${b}`) && r.status !== undefined,
    );
    const total = numbers(collected, 'consul_leader.requests').reduce((sum, p) => sum + p.value, 0);
    expect(total).toBe(answered.length);
    expect(byAttributes(numbers(collected, 'consul_leader.changes'), (p) => p.value)).toEqual({
      'status=leader': 1,
    });
  });

  it('adds the key attribute with metrics.perKey, to the per-key instruments only', async () => {
    const { provider, collect } = meterProvider();
    const key = uniqueKey();
    const a = await createSession(env.consul, { name: 'a' });
    expect(await acquire(env.consul, key, a, JSON.stringify({ host: 'a' }))).toBe(true);
    const discovery = discoveryWith({ meterProvider: provider, metrics: { perKey: true } });
    const states = record(discovery.watch(key, { schema: Node }));
    await states.next((s) => s.status === 'leader');
    await blockedRead(key);
    const from = states.values.length;
    expect(await release(env.consul, key, a)).toBe(true);
    await states.next((s) => s.status === 'vacant', { from });
    const b = await createSession(env.consul, { name: 'b' });
    expect(await acquire(env.consul, key, b, JSON.stringify({ host: 'b' }))).toBe(true);
    await states.next((s) => s.status === 'leader' && s.leader.session.id === b, { from });

    const collected = await collect();
    for (const name of [
      'consul_leader.requests',
      'consul_leader.request.duration',
      'consul_leader.changes',
      'consul_leader.vacant.duration',
    ]) {
      const points = collected.get(name)?.dataPoints ?? [];
      expect(points.length, name).toBeGreaterThan(0);
      for (const point of points) expect(point.attributes.key, name).toBe(key);
    }
    expect(byAttributes(numbers(collected, 'consul_leader.changes'), (p) => p.value)).toEqual({
      [`key=${key},status=leader`]: 2,
      [`key=${key},status=vacant`]: 1,
    });
    for (const name of [
      'consul_leader.followed',
      'consul_leader.unreachable',
      'consul_leader.last_contact',
    ]) {
      for (const point of collected.get(name)?.dataPoints ?? []) {
        expect(point.attributes, name).not.toHaveProperty('key');
      }
    }
  });

  it('loads and records on a given provider when @opentelemetry/api is not installed (require() from CommonJS)', async () => {
    const key = uniqueKey();
    const a = await createSession(env.consul, { name: 'a' });
    expect(await acquire(env.consul, key, a, JSON.stringify({ host: 'a' }))).toBe(true);
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', WITHOUT_API], {
      cwd: ROOT,
      env: { ...process.env, PROXY_HOST: env.proxy.host, PROXY_PORT: String(env.proxy.port), KEY: key },
    });
    const seen = JSON.parse(stdout) as {
      missing: boolean;
      leaders: (string | null)[];
      meters: [string, string][];
      calls: unknown[][];
    };
    expect(seen.missing).toBe(true);
    expect(seen.leaders).toEqual([a, a]);
    // Only the discovery given a provider: one meter, its instruments, its two reads.
    expect(seen.meters).toEqual([[METER, expect.stringMatching(/^\d+\.\d+\.\d+/)]]);
    expect(seen.calls).toEqual([
      ['consul_leader.unreachable', 'callback'],
      ['consul_leader.last_contact', 'callback'],
      ['consul_leader.requests', 1, { kind: 'kv', blocking: false, outcome: 'ok' }],
      ['consul_leader.request.duration', { kind: 'kv', outcome: 'ok' }],
      ['consul_leader.requests', 1, { kind: 'session_info', blocking: false, outcome: 'ok' }],
      ['consul_leader.request.duration', { kind: 'session_info', outcome: 'ok' }],
    ]);
  });
});
