/**
 * Case 1, change-to-emission latency: from the moment a leadership change is
 * sent (right before its PUT is written) to the moment each watcher sees it.
 *
 * Main phase: the floor, the `consul` package's watch and the SDK (without a
 * meter provider, with `watchSessions`, and with OpenTelemetry metrics on) side
 * by side, each on its own worker thread; change k+1 is sent once every watcher
 * saw change k (or `timeoutMs` passed), plus a short random gap.
 * Poll phase: the once-a-second poller alone, with changes spaced 1.2-1.8 s
 * apart so that it sees each one; it never sets the pace of the main phase.
 */
import { now, sleep } from '../clock.js';
import type { Target, WatcherKind } from './protocol.js';
import { type ClockCheck, type Usage, WatcherThread } from './watcher-thread.js';
import { type Change, Election, shows } from './writer.js';

export const MAIN_WATCHERS: readonly WatcherKind[] = [
  'floor',
  'consul-watch',
  'sdk',
  'sdk-sessions',
  'sdk-metrics',
];
/** After every watcher saw a change: wait GAP_MS to 2 * GAP_MS, so each is blocking again. */
export const GAP_MS = 10;
/** Poll phase: changes are this far apart, plus up to POLL_SPACING_JITTER_MS. */
export const POLL_SPACING_MS = 1_200;
export const POLL_SPACING_JITTER_MS = 600;
/** The measured changes are split into this many blocks, each thread's usage read at their bounds. */
export const USAGE_BLOCKS = 10;
const START_TIMEOUT_MS = 20_000;
const SETTLE_MS = 250;

export interface WatcherResult {
  readonly kind: WatcherKind;
  /** Latency in ms per measured change, by the change's seq. */
  readonly latencies: ReadonlyMap<number, number>;
  /** Observations that showed no pending change. */
  readonly unexpected: number;
  readonly clock: ClockCheck;
  /** Over the measured changes, per change: the thread's CPU time and run-queue wait (ms), HTTP requests, metric exports. */
  readonly perChange: Usage;
  /** The same per block of consecutive measured changes (USAGE_BLOCKS of them), in order. */
  readonly blocks: readonly Usage[];
}

export interface PhaseResult {
  /** The measured changes (warm-up excluded). */
  readonly changes: readonly Change[];
  readonly warmup: number;
  readonly watchers: readonly WatcherResult[];
  readonly durationMs: number;
}

export interface LatencyResult {
  readonly key: string;
  readonly main: PhaseResult;
  readonly poll: PhaseResult;
}

export interface LatencyCaseOptions {
  readonly changes: number;
  readonly warmup: number;
  readonly pollChanges: number;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
}

interface PhaseOptions {
  readonly name: string;
  readonly kinds: readonly WatcherKind[];
  readonly target: Target;
  readonly election: Election;
  readonly count: number;
  readonly warmup: number;
  readonly timeoutMs: number;
  /** Waits before the next change. */
  readonly pause: (change: Change) => Promise<void>;
  readonly log: (line: string) => void;
}

async function runPhase(options: PhaseOptions): Promise<PhaseResult> {
  const { name, target, election, count, warmup, timeoutMs, log } = options;
  const threads = options.kinds.map((kind) => new WatcherThread(kind, target));
  try {
    await Promise.all(
      threads.map(async (thread) => {
        const first = await thread.next(() => true, START_TIMEOUT_MS);
        if (!first) throw new Error(`watcher ${thread.kind}: no first reading within ${START_TIMEOUT_MS} ms`);
      }),
    );
    const clocks: ClockCheck[] = [];
    for (const thread of threads) clocks.push(await thread.checkClock());
    await sleep(SETTLE_MS);

    const latencies = threads.map(() => new Map<number, number>());
    const changes: Change[] = [];
    const total = warmup + count;
    const started = now();
    const blockSize = Math.max(1, Math.ceil(count / USAGE_BLOCKS));
    /** Each thread's usage at the bounds of the blocks, and the measured changes done by then. */
    const marks: { readonly done: number; readonly usage: Usage[] }[] = [];
    const mark = async (done: number): Promise<void> => {
      marks.push({ done, usage: await Promise.all(threads.map((thread) => thread.usage())) });
    };
    for (let i = 1; i <= total; i += 1) {
      const done = i - warmup - 1;
      if (done >= 0 && done % blockSize === 0) await mark(done);
      const change = await election.next();
      const seen = await Promise.all(threads.map((thread) => thread.next(shows(change), timeoutMs)));
      if (i > warmup) {
        changes.push(change);
        // A change a watcher did not show within the timeout has no latency: it counts as missed.
        seen.forEach((observation, w) => {
          if (observation) latencies[w]?.set(change.seq, observation.at - change.sentAt);
        });
      }
      if (i % 100 === 0 || i === total) log(`${name}: ${i}/${total} changes (${warmup} warm-up)`);
      await options.pause(change);
    }
    const durationMs = now() - started;
    await mark(count);
    /** Thread `w`'s usage per change between marks `from` and `to`. */
    const perChangeBetween = (w: number, from: number, to: number): Usage => {
      const [a, b] = [marks[from], marks[to]];
      const changesBetween = (b?.done ?? Number.NaN) - (a?.done ?? Number.NaN);
      const delta = (field: keyof Usage): number =>
        ((b?.usage[w]?.[field] ?? Number.NaN) - (a?.usage[w]?.[field] ?? Number.NaN)) / changesBetween;
      return {
        cpuMs: delta('cpuMs'),
        runQueueMs: delta('runQueueMs'),
        requests: delta('requests'),
        metricExports: delta('metricExports'),
      };
    };
    const perChange = (w: number): Usage => perChangeBetween(w, 0, marks.length - 1);
    const blocks = (w: number): Usage[] => marks.slice(1).map((_, m) => perChangeBetween(w, m, m + 1));
    return {
      changes,
      warmup,
      durationMs,
      watchers: threads.map((thread, w) => ({
        kind: thread.kind,
        latencies: latencies[w] ?? new Map<number, number>(),
        unexpected: thread.unexpected,
        clock: clocks[w] ?? { offsetMs: Number.NaN, rttMs: Number.NaN },
        perChange: perChange(w),
        blocks: blocks(w),
      })),
    };
  } finally {
    await Promise.all(threads.map((thread) => thread.stop()));
  }
}

export async function runLatencyCase(
  consul: { readonly host: string; readonly port: number },
  options: LatencyCaseOptions,
): Promise<LatencyResult> {
  const key = `bench/latency-${Date.now()}/leader`;
  const target: Target = { host: consul.host, port: consul.port, key };
  const election = new Election(consul.host, consul.port, key);
  const common = { target, election, timeoutMs: options.timeoutMs, log: options.log };
  try {
    const main = await runPhase({
      ...common,
      name: 'main phase',
      kinds: MAIN_WATCHERS,
      count: options.changes,
      warmup: options.warmup,
      pause: () => sleep(GAP_MS * (1 + Math.random())),
    });
    const poll = await runPhase({
      ...common,
      name: 'poll phase',
      kinds: ['poll'],
      count: options.pollChanges,
      warmup: 0,
      pause: (change) =>
        sleep(change.sentAt + POLL_SPACING_MS + Math.random() * POLL_SPACING_JITTER_MS - now()),
    });
    return { key, main, poll };
  } finally {
    election.close();
  }
}
