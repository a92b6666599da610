/**
 * Case 6, routing to the leader over HTTP: what `leaderDispatcher` and `createLeaderProxy`
 * cost against their plain counterparts, and what a failover costs the requests.
 *
 * Processes (the machine has 2 cores): the main process only orchestrates and is idle while
 * a round runs; the load generator (bench/routing/load.ts), each backend
 * (bench/routing/backend.ts) and the proxies (bench/routing/proxies.ts) are child processes
 * of their own running plain JavaScript (bench/child.ts: no tsx loader), each measuring its
 * own CPU; the Consul agent is another.
 *
 * - (a) direct: a plain undici `Agent` to the leader's origin against `leaderDispatcher`,
 *   the same requests with the same number in flight, in interleaved rounds.
 * - (b) proxied: an undici `Pool` to a minimal `node:http` proxy against the same `Pool` to
 *   `createLeaderProxy`, in interleaved rounds.
 * - Planned step-downs: three backends on one key (lock-delay 0s), continuous load through a
 *   `leaderDispatcher` (`waitForLeader: '1s'`); the leader steps down N times.
 * - Crash: three other backends on another key (TTL 10s, lock-delay 1s), continuous load
 *   through a `leaderDispatcher` (`waitForLeader: '30s'`); the leader's process is killed.
 *   It runs first: while Consul lets the dead leader's session live (up to 2 × TTL) every
 *   request of its load waits, using no CPU, and the other parts run meanwhile; none starts
 *   unless it will end before the session can expire (the dev agent expires it 2 × TTL after
 *   the last renewal, case 5), and the crash's recovery and its load after it run alone.
 */
import { loadavg } from 'node:os';
import { ChildModule } from '../child.js';
import { now, sleep } from '../clock.js';
import { withAgent } from '../lifecycle.js';
import type { SdkSnapshot } from '../sdk-snapshot.js';
import { type Backend, BackendSet, type Leading, clockOffset } from './backends.js';
import type {
  Address,
  LoadRecords,
  LoadRequest,
  ProxiesRequest,
  ProxiesStarted,
  RoundResult,
  Target,
} from './protocol.js';

export const BACKENDS = 3;
export const TTL = '10s';
export const TTL_MS = 10_000;
export const STEP_LOCK_DELAY = '0s';
export const STEP_WAIT_FOR_LEADER = '1s';
export const CRASH_LOCK_DELAY = '1s';
export const CRASH_WAIT_FOR_LEADER = '30s';
/** No measurement starts unless it ends this long before the crash's session can expire. */
export const QUIET_MARGIN_MS = 1_500;
/** A stepped-down backend campaigns again after this. */
export const REJOIN_MS = 100;
/** Requests that start in the first part of a continuous load (new connections) are not steady state. */
export const LOAD_WARMUP_MS = 200;
const LEADER_TIMEOUT_MS = 20_000;

export interface RoutingSettings {
  /** Requests in flight of the comparison rows, and the requests of one round at each. */
  readonly rows: readonly { readonly concurrency: number; readonly requests: number }[];
  /** Measured rounds per side and row (after one warm-up round per side). */
  readonly rounds: number;
  readonly stepDowns: number;
  /** Steady load before the first step-down and after each. */
  readonly stepGapMs: number;
  /** Requests in flight of the continuous load (step-downs and crash). */
  readonly loadConcurrency: number;
  /** Steady load before the kill, and after the requests succeed again. */
  readonly crashSteadyMs: number;
}

export function routingSettings(quick: boolean): RoutingSettings {
  return quick
    ? {
        rows: [
          { concurrency: 1, requests: 500 },
          { concurrency: 16, requests: 2_000 },
        ],
        rounds: 3,
        stepDowns: 5,
        stepGapMs: 300,
        loadConcurrency: 16,
        crashSteadyMs: 500,
      }
    : {
        rows: [
          { concurrency: 1, requests: 1_500 },
          { concurrency: 16, requests: 5_000 },
        ],
        rounds: 16,
        stepDowns: 20,
        stepGapMs: 400,
        loadConcurrency: 16,
        crashSteadyMs: 1_500,
      };
}

/** One measured round of one side. */
export interface Round {
  readonly latencies: Float64Array;
  readonly durationMs: number;
  readonly failures: number;
  /** CPU of the load process, the backend, and the proxy process (NaN without one) over the round (µs). */
  readonly loadCpuUs: number;
  readonly backendCpuUs: number;
  readonly proxyCpuUs: number;
}

export interface Comparison {
  readonly concurrency: number;
  readonly requests: number;
  /** Each side's measured rounds, in the order they ran. */
  readonly plain: readonly Round[];
  readonly sdk: readonly Round[];
}

export interface StepSample {
  readonly oldSession: string;
  readonly session: string;
  /** The old leader answers 421 from here on. */
  readonly downAt: number;
  readonly releaseSentAt: number;
  /** The next leader's successful acquire (sent). */
  readonly acquiredAt: number;
}

/** The continuous load's requests, on this process's clock. */
export type Records = LoadRecords;

export interface StepDownResult {
  readonly steps: readonly StepSample[];
  readonly records: Records;
  readonly loadStartedAt: number;
  /** 421 answers the backends gave during the phase (each one a request the dispatcher sent again). */
  readonly misdirected: number;
  readonly durationMs: number;
}

export interface CrashResult {
  readonly killAt: number;
  /** The killed leader's last renewal of its session. */
  readonly lastRenewalAt: number;
  readonly oldSession: string;
  readonly next: { readonly session: string; readonly at: number };
  readonly records: Records;
  readonly loadStartedAt: number;
  /** When its load was stopped. */
  readonly endedAt: number;
}

export interface RoutingResult {
  readonly settings: RoutingSettings;
  readonly direct: readonly Comparison[];
  /** Null when the SDK build has no `createLeaderProxy`. */
  readonly proxied: readonly Comparison[] | null;
  readonly stepDowns: StepDownResult;
  readonly crash: CrashResult;
  /** Measurements (rounds, the step-down phase) that ran while the crash's recovery did: should be 0. */
  readonly overlapping: number;
  /** Measurements that ran while the crash waited for Consul. */
  readonly duringCrash: number;
  /** The children's clocks minus this process's (every child time is corrected by it): the largest |offset|, and the longest round trip of the pings that measured them (ms). */
  readonly clock: { readonly offsetMs: number; readonly rttMs: number };
  readonly durationMs: number;
  /** `os.loadavg()` (1, 5, 15 min) when the case started and when it ended: the machine is shared. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
}

type Load = ChildModule<LoadRequest>;

function onLocalClock(records: LoadRecords, offsetMs: number): Records {
  return {
    ...records,
    start: records.start.map((t) => t - offsetMs),
    end: records.end.map((t) => t - offsetMs),
    changes: records.changes.map((c) => ({ ...c, at: c.at - offsetMs })),
  };
}

// ---- the crash, started first and finished when the rest needs it (or at the end)

interface PendingCrash {
  /** Until then nothing of the crash runs but its waiting requests. */
  readonly quietUntil: number;
  readonly finished: boolean;
  /** Waits for the next leader, the load after it, and stops the load (once). */
  finish(): Promise<CrashResult>;
}

async function startCrash(
  load: Load,
  set: BackendSet,
  key: string,
  settings: RoutingSettings,
  loadOffsetMs: number,
  log: (line: string) => void,
): Promise<PendingCrash> {
  const leading = await set.nextLeader(undefined, LEADER_TIMEOUT_MS);
  const followed = await load.ask<string>({ type: 'follow', key });
  if (followed !== leading.session) throw new Error(`crash: the handle follows ${followed}, not the leader`);
  await load.ask({
    type: 'loadStart',
    id: 'crash',
    key,
    concurrency: settings.loadConcurrency,
    waitForLeader: CRASH_WAIT_FOR_LEADER,
  });
  const loadStartedAt = now();
  await sleep(settings.crashSteadyMs);
  const { lastRenewalAt } = await leading.backend.status();
  const killAt = now();
  leading.backend.kill();
  log(
    `routing: crash: killed the leader ${((killAt - lastRenewalAt) / 1000).toFixed(1)} s after its last renewal; Consul expires its session up to 2 × ${TTL} after that, then the lock-delay (${CRASH_LOCK_DELAY})`,
  );
  const next = set.nextLeader(leading.backend, 2 * TTL_MS + LEADER_TIMEOUT_MS);
  next.catch(() => undefined); // awaited by finish()
  let result: Promise<CrashResult> | undefined;
  let finished = false;
  return {
    quietUntil: lastRenewalAt + 2 * TTL_MS - QUIET_MARGIN_MS,
    get finished() {
      return finished;
    },
    finish() {
      result ??= (async () => {
        const leader = await next;
        await sleep(settings.crashSteadyMs);
        const records = onLocalClock(
          await load.ask<LoadRecords>({ type: 'loadStop', id: 'crash' }),
          loadOffsetMs,
        );
        finished = true;
        log(
          `routing: crash: requests flowed again, ${((leader.at - killAt) / 1000).toFixed(1)} s after the kill`,
        );
        return {
          killAt,
          lastRenewalAt,
          oldSession: leading.session,
          next: { session: leader.session, at: leader.at },
          records,
          loadStartedAt,
          endedAt: now(),
        };
      })();
      return result;
    },
  };
}

/** Runs measurements while the crash waits: one starts only if it will end before the crash may wake up. */
class Schedule {
  readonly spans: { readonly from: number; readonly to: number; readonly duringCrash: boolean }[] = [];

  constructor(
    private readonly crash: PendingCrash,
    private readonly log: (line: string) => void,
  ) {}

  async run<T>(estimateMs: number, work: () => Promise<T>): Promise<T> {
    if (!this.crash.finished && now() + estimateMs > this.crash.quietUntil) {
      this.log('routing: waiting for the crash to end before the next measurement');
      await this.crash.finish();
    }
    const duringCrash = !this.crash.finished;
    const from = now();
    try {
      return await work();
    } finally {
      this.spans.push({ from, to: now(), duringCrash });
    }
  }
}

// ---- (a) and (b)

interface Side {
  readonly target: Target;
  readonly proxyCpu?: () => Promise<number>;
}

async function measuredRound(
  load: Load,
  backend: Backend,
  side: Side,
  concurrency: number,
  requests: number,
): Promise<Round> {
  const [backend0, proxy0] = await Promise.all([backend.cpuUs(), side.proxyCpu?.() ?? Number.NaN]);
  const round = await load.ask<RoundResult>({ type: 'round', target: side.target, concurrency, requests });
  const [backend1, proxy1] = await Promise.all([backend.cpuUs(), side.proxyCpu?.() ?? Number.NaN]);
  return {
    latencies: round.latencies,
    durationMs: round.durationMs,
    failures: round.failures,
    loadCpuUs: round.cpuUs,
    backendCpuUs: backend1 - backend0,
    proxyCpuUs: proxy1 - proxy0,
  };
}

/** A round's time, from the last one of the same side and row; a first round is given 3 s. */
const estimate = (last: Round | undefined): number => (last ? 1.5 * last.durationMs + 300 : 3_000);

/** For each row: a warm-up round per side, then `rounds` pairs, the order swapped every pair (A B, B A, ...). */
async function compare(
  schedule: Schedule,
  load: Load,
  backend: Backend,
  plain: Side,
  sdk: Side,
  settings: RoutingSettings,
  log: (line: string) => void,
  label: string,
): Promise<Comparison[]> {
  const comparisons: Comparison[] = [];
  for (const { concurrency, requests } of settings.rows) {
    const rounds: [Round[], Round[]] = [[], []];
    const sides = [plain, sdk] as const;
    const last: (Round | undefined)[] = [undefined, undefined];
    const round = async (i: 0 | 1): Promise<Round> => {
      const done = await schedule.run(estimate(last[i]), () =>
        measuredRound(load, backend, sides[i], concurrency, requests),
      );
      last[i] = done;
      return done;
    };
    await round(0);
    await round(1);
    for (let pair = 0; pair < settings.rounds; pair += 1) {
      for (const i of pair % 2 === 0 ? ([0, 1] as const) : ([1, 0] as const)) rounds[i].push(await round(i));
    }
    comparisons.push({ concurrency, requests, plain: rounds[0], sdk: rounds[1] });
    log(`routing: ${label}, ${concurrency} in flight: ${settings.rounds} rounds per side done`);
  }
  return comparisons;
}

// ---- planned step-downs

async function runStepDowns(
  load: Load,
  set: BackendSet,
  first: Leading,
  key: string,
  settings: RoutingSettings,
  loadOffsetMs: number,
): Promise<StepDownResult> {
  const started = now();
  const misdirectedBefore = await set.misdirected();
  await load.ask({
    type: 'loadStart',
    id: 'step-downs',
    key,
    concurrency: settings.loadConcurrency,
    waitForLeader: STEP_WAIT_FOR_LEADER,
  });
  const loadStartedAt = now();
  const steps: StepSample[] = [];
  let leader = first;
  await sleep(settings.stepGapMs);
  for (let i = 0; i < settings.stepDowns; i += 1) {
    const down = await leader.backend.stepDown(REJOIN_MS);
    const next = await set.nextLeader(leader.backend, LEADER_TIMEOUT_MS);
    steps.push({
      oldSession: down.session,
      session: next.session,
      downAt: down.downAt,
      releaseSentAt: down.releaseSentAt,
      acquiredAt: next.at,
    });
    leader = next;
    await sleep(settings.stepGapMs);
  }
  const records = onLocalClock(
    await load.ask<LoadRecords>({ type: 'loadStop', id: 'step-downs' }),
    loadOffsetMs,
  );
  const misdirected = (await set.misdirected()) - misdirectedBefore;
  return { steps, records, loadStartedAt, misdirected, durationMs: now() - started };
}

export async function runRoutingCase(
  quick: boolean,
  log: (line: string) => void,
  sdk: SdkSnapshot,
): Promise<RoutingResult> {
  const settings = routingSettings(quick);
  const started = now();
  const loadAtStart = loadavg();
  return withAgent({}, log, async (agent) => {
    const consul: Address = { host: agent.host, port: agent.port };
    const base = `bench/routing-${Date.now()}`;
    const stepKey = `${base}/step-down/leader`;
    const crashKey = `${base}/crash/leader`;
    const load: Load = new ChildModule<LoadRequest>(
      'routing load',
      new URL('./load.ts', import.meta.url),
      sdk,
    );
    let proxies: ChildModule<ProxiesRequest> | undefined;
    const sets: BackendSet[] = [];
    try {
      const [stepSet, crashSet] = await Promise.all([
        BackendSet.start(BACKENDS, sdk, consul, stepKey, { ttl: TTL, lockDelay: STEP_LOCK_DELAY }),
        BackendSet.start(BACKENDS, sdk, consul, crashKey, { ttl: TTL, lockDelay: CRASH_LOCK_DELAY }),
      ]);
      sets.push(stepSet, crashSet);
      await load.ask({ type: 'setup', sdk: sdk.url, consul });
      const loadClock = await clockOffset(() => load.ask<number>({ type: 'now' }));

      const crash = await startCrash(load, crashSet, crashKey, settings, loadClock.offsetMs, log);
      const schedule = new Schedule(crash, log);

      const leading = await stepSet.nextLeader(undefined, LEADER_TIMEOUT_MS);
      const followed = await load.ask<string>({ type: 'follow', key: stepKey });
      if (followed !== leading.session) throw new Error(`the handle follows ${followed}, not the leader`);
      const direct = await compare(
        schedule,
        load,
        leading.backend,
        { target: { kind: 'agent', url: `${leading.backend.origin}/` } },
        { target: { kind: 'dispatcher', key: stepKey } },
        settings,
        log,
        '(a) Agent vs leaderDispatcher',
      );

      const proxyChild = new ChildModule<ProxiesRequest>(
        'routing proxies',
        new URL('./proxies.ts', import.meta.url),
        sdk,
      );
      proxies = proxyChild;
      const origins = await proxyChild.ask<ProxiesStarted>({
        type: 'start',
        sdk: sdk.url,
        consul,
        key: stepKey,
        upstream: { host: '127.0.0.1', port: leading.backend.port },
      });
      const proxyCpu = (): Promise<number> => proxyChild.ask<number>({ type: 'cpu' });
      let proxied: Comparison[] | null = null;
      if (origins.sdkOrigin === null) {
        log('routing: this SDK build has no createLeaderProxy: (b) is left out');
      } else {
        proxied = await compare(
          schedule,
          load,
          leading.backend,
          { target: { kind: 'pool', origin: origins.plainOrigin }, proxyCpu },
          { target: { kind: 'pool', origin: origins.sdkOrigin }, proxyCpu },
          settings,
          log,
          '(b) minimal proxy vs createLeaderProxy',
        );
      }
      await proxyChild.stop();
      proxies = undefined;

      const stepsMs = settings.stepDowns * (settings.stepGapMs + 200) + settings.stepGapMs + 1_000;
      const stepDowns = await schedule.run(stepsMs, () =>
        runStepDowns(load, stepSet, leading, stepKey, settings, loadClock.offsetMs),
      );
      log(`routing: ${settings.stepDowns} step-downs (${(stepDowns.durationMs / 1000).toFixed(1)} s)`);

      const crashed = await crash.finish();
      // From the first sign of the crash's recovery (the key released, else the next leader) to its load's end.
      const woke =
        crashed.records.changes.find((c) => c.at >= crashed.killAt && c.session === null)?.at ??
        crashed.next.at;
      const overlapping = schedule.spans.filter((s) => s.from < crashed.endedAt && s.to > woke).length;
      const clocks = [loadClock, ...sets.flatMap((set) => set.backends.map((b) => b.clock))];
      return {
        settings,
        direct,
        proxied,
        stepDowns,
        crash: crashed,
        overlapping,
        duringCrash: schedule.spans.filter((s) => s.duringCrash).length,
        clock: {
          offsetMs: Math.max(...clocks.map((c) => Math.abs(c.offsetMs))),
          rttMs: Math.max(...clocks.map((c) => c.rttMs)),
        },
        durationMs: now() - started,
        loadAverage: { start: loadAtStart, end: loadavg() },
      };
    } finally {
      await Promise.all([load.stop(), proxies?.stop(), ...sets.map((set) => set.stop())]);
    }
  });
}
