/**
 * One measurement of case 3: one or more watchers (each on its thread, reading
 * through its own hop) follow a prefix of keys while the main thread changes
 * one key after another; per change, the latency from the write to each
 * watcher's report of the key, the thread CPU of each, Consul's CPU, and the
 * requests and connections each one's hop saw.
 */
import { sleep } from '../clock.js';
import { GAP_MS } from '../latency/case.js';
import type { ClockCheck } from '../latency/watcher-thread.js';
import { processCpuMs } from '../support/proc-cpu.js';
import { type FollowOrder, type ManyKeysUsage, keyOf } from './protocol.js';
import type { ManyKeysThread, ThreadTimes } from './threads.js';
import { type Writer, leaderValue } from './writer.js';

/** Changes made before the measured ones at each size and mode, not counted. */
export const WARMUP_CHANGES = 3;
/** How long a change may take to reach a watcher before it counts as missed. */
export const CHANGE_TIMEOUT_MS = 5_000;
/** How long a thread may take to load, and a watcher to report every key. */
export const READY_TIMEOUT_MS = 60_000;

/** After both watchers reported every key, before the first change. */
const SETTLE_MS = 250;

export interface WatcherStats {
  /** Latency in ms from the write to the watcher's report of the key, by measured change number. */
  readonly latencies: ReadonlyMap<number, number>;
  /** Measured changes not reported within CHANGE_TIMEOUT_MS. */
  readonly missed: number;
  /** From the start of its first read (the SDK: its subscriptions) to every key reported, in its thread. */
  readonly firstLoadMs: number;
  /** The thread's CPU time and run-queue wait per measured change (bench/latency/thread-times.ts). */
  readonly perChange: ThreadTimes;
  /** Its thread's clock minus the main thread's. */
  readonly clock: ClockCheck;
}

/**
 * One SDK configuration measured alone: over HTTPS with `http2: true` (its
 * requests are the HTTP/2 streams it opened, counted in its thread; its
 * connections, those of its TCP pass-through), or over plain HTTP (requests
 * and connections, those of its counting proxy).
 */
export interface SplitMeasure {
  readonly sdk: WatcherStats;
  /** KV and session requests the SDK sent per change. */
  readonly kvRequestsPerChange: number;
  readonly sessionRequestsPerChange: number;
  /** Its KV reads waiting at Consul after the changes, everything still followed. */
  readonly kvInFlight: number;
  /** Connections accepted from its first read to the end; and open at the end. */
  readonly connectionsAccepted: number;
  readonly connectionsOpen: number;
  /** CPU of the Consul agent per change: the write and this SDK's answers. NaN off Linux. */
  readonly consulCpuMsPerChange: number;
  /** Keys under each recursive KV read open after the changes (split: each sub-prefix query), ascending. */
  readonly queryKeys: readonly number[];
  /** By measured change: keys under the open recursive read whose prefix the changed key has (the query it woke). */
  readonly wokenQueryKeys: ReadonlyMap<number, number>;
}

/** One SDK configuration followed alone on its thread: `measure` with one watcher, as a SplitMeasure. */
export async function measureAlone(
  o: MeasureOptions,
  watcher: Watcher,
  keys: readonly string[],
): Promise<SplitMeasure> {
  const measured = await measure(o, [watcher]);
  const [side] = measured.watchers;
  if (!side) throw new Error('many-keys: the watcher is missing');
  o.log(`many-keys: ${o.label}: done`);
  return {
    sdk: side.stats,
    kvRequestsPerChange: side.requestsPerChange.kv,
    sessionRequestsPerChange: side.requestsPerChange.session,
    kvInFlight: side.kvInFlight,
    connectionsAccepted: side.connections.accepted,
    connectionsOpen: side.connections.open,
    consulCpuMsPerChange: measured.consulCpuMsPerChange,
    ...queriesOf(side.recursivePrefixes, keys, measured.keyOfChange),
  };
}

/** Requests a watcher sent so far, and its KV reads waiting at Consul now. */
export interface RequestCounts {
  readonly kv: number;
  readonly session: number;
  readonly all: number;
  readonly kvInFlight: number;
  /** The prefixes of its recursive KV reads waiting now, where known (HTTP/2 streams; the split rows' proxies). */
  readonly recursivePrefixes?: readonly string[];
}

/** One watcher of a measurement: its thread, what it follows, how its requests and connections are counted. */
export interface Watcher {
  readonly thread: ManyKeysThread;
  readonly order: FollowOrder;
  /** Its requests so far; `usage` is its thread's, just taken. */
  readonly requests: (usage: ManyKeysUsage) => RequestCounts;
  /** Its connections: accepted so far, open now. */
  readonly connections: () => { readonly accepted: number; readonly open: number };
}

/** Keys under each of `prefixes` (ascending), and by change the keys under the one its key has. */
function queriesOf(
  prefixes: readonly string[],
  keys: readonly string[],
  keyOfChange: ReadonlyMap<number, string>,
): { queryKeys: number[]; wokenQueryKeys: Map<number, number> } {
  const keysUnder = new Map(prefixes.map((p) => [p, keys.filter((key) => key.startsWith(p)).length]));
  const wokenQueryKeys = new Map<number, number>();
  for (const [change, key] of keyOfChange) {
    const under = prefixes.find((p) => key.startsWith(p));
    if (under !== undefined) wokenQueryKeys.set(change, keysUnder.get(under) ?? Number.NaN);
  }
  return { queryKeys: [...keysUnder.values()].sort((a, b) => a - b), wokenQueryKeys };
}

export interface MeasureOptions {
  readonly writer: Writer;
  readonly prefix: string;
  readonly holder: string;
  readonly changes: number;
  readonly state: Map<string, string | null>;
  readonly nextTag: () => string;
  /** The index of the key change `c` (warm-up ones included) writes: released if it has a leader, else re-acquired. */
  readonly keyAt: (c: number) => number;
  readonly consulPid: number | undefined;
  /** `<size> keys, <mode>`, for the log. */
  readonly label: string;
  readonly log: (line: string) => void;
}

/** What one watcher of a measurement did. */
interface Observed {
  readonly stats: WatcherStats;
  readonly requestsPerChange: { readonly kv: number; readonly session: number; readonly all: number };
  /** After the changes, everything still followed. */
  readonly kvInFlight: number;
  readonly recursivePrefixes: readonly string[];
  readonly connections: { readonly accepted: number; readonly open: number };
}

interface Measured {
  /** In the order of the watchers. */
  readonly watchers: readonly Observed[];
  /** CPU of the Consul agent per change: the write and every watcher's answers. NaN off Linux. */
  readonly consulCpuMsPerChange: number;
  /** The key each measured change wrote. */
  readonly keyOfChange: ReadonlyMap<number, string>;
}

/** Follows with every watcher, makes the changes, measures; then every watcher stops following. */
export async function measure(o: MeasureOptions, watchers: readonly Watcher[]): Promise<Measured> {
  const following: Watcher[] = [];
  const outcome = await follow(o, watchers, following).then(
    (measured) => ({ measured }),
    (error: unknown) => ({ error }),
  );
  // Stopping must not hide the error that ended the measurement.
  const stopped = await Promise.allSettled(following.map((w) => w.thread.unfollow()));
  if ('error' in outcome) throw outcome.error;
  for (const [w, result] of stopped.entries()) {
    if (result.status === 'rejected') throw result.reason;
    if (result.value > 1_000) {
      const seconds = (result.value / 1000).toFixed(1);
      o.log(`many-keys: ${o.label}: ${following[w]?.thread.role} took ${seconds} s to stop following`);
    }
  }
  return outcome.measured;
}

/** Follows with every watcher (added to `following` as they start), makes the changes, measures. */
async function follow(
  o: MeasureOptions,
  watchers: readonly Watcher[],
  following: Watcher[],
): Promise<Measured> {
  const { writer, prefix, holder, state, changes } = o;
  // One after the other, so that no first load competes with another's.
  const firstLoads: number[] = [];
  for (const watcher of watchers) {
    following.push(watcher);
    firstLoads.push(await watcher.thread.follow(watcher.order, READY_TIMEOUT_MS));
  }
  const clocks: ClockCheck[] = [];
  for (const watcher of watchers) clocks.push(await watcher.thread.checkClock());
  await sleep(SETTLE_MS);

  const usages = async (): Promise<ManyKeysUsage[]> => {
    const taken: ManyKeysUsage[] = [];
    for (const watcher of watchers) taken.push(await watcher.thread.usage());
    return taken;
  };
  const latencies = watchers.map(() => new Map<number, number>());
  const keyOfChange = new Map<number, string>();
  let before: { usage: ManyKeysUsage[]; requests: RequestCounts[]; consul: number } | undefined;
  for (let c = 0; c < WARMUP_CHANGES + changes; c += 1) {
    if (c === WARMUP_CHANGES) {
      const usage = await usages();
      before = {
        usage,
        requests: watchers.map((w, i) => w.requests(usage[i] as ManyKeysUsage)),
        consul: processCpuMs(o.consulPid),
      };
    }
    const i = o.keyAt(c);
    const key = keyOf(prefix, i);
    const release = state.get(key) !== null;
    const tag = release ? null : o.nextTag();
    const marks = watchers.map((w) => w.thread.mark(key));
    const { sentAt, text } = await writer.put('/v1/txn', [
      release
        ? { KV: { Verb: 'unlock', Key: key, Value: '', Session: holder } }
        : { KV: { Verb: 'lock', Key: key, Value: leaderValue(i, tag ?? ''), Session: holder } },
    ]);
    if (!text.includes('"Results"')) throw new Error(`txn: unexpected answer ${text}`);
    state.set(key, tag);
    const seen = await Promise.all(
      watchers.map((w, n) => w.thread.waitFor(key, marks[n] ?? 0, tag, CHANGE_TIMEOUT_MS)),
    );
    if (c >= WARMUP_CHANGES) {
      keyOfChange.set(c - WARMUP_CHANGES, key);
      seen.forEach((observation, n) => {
        if (observation) latencies[n]?.set(c - WARMUP_CHANGES, observation.at - sentAt);
      });
    }
    // Like case 1: a short random gap, so that every watcher is blocking again.
    await sleep(GAP_MS * (1 + Math.random()));
  }
  const after = { usage: await usages(), consul: processCpuMs(o.consulPid) };
  await sleep(200); // let the last re-reads go out before counting requests
  const last = await usages();
  if (!before) throw new Error('no measured changes');
  const start = before;
  return {
    watchers: watchers.map((watcher, n): Observed => {
      const from = start.usage[n];
      const to = after.usage[n];
      const perChange: ThreadTimes = {
        cpuMs: ((to?.cpuMs ?? Number.NaN) - (from?.cpuMs ?? Number.NaN)) / changes,
        runQueueMs: ((to?.runQueueMs ?? Number.NaN) - (from?.runQueueMs ?? Number.NaN)) / changes,
      };
      const requestsFrom = start.requests[n] as RequestCounts;
      const requestsTo = watcher.requests(last[n] as ManyKeysUsage);
      return {
        stats: {
          latencies: latencies[n] ?? new Map<number, number>(),
          missed: changes - (latencies[n]?.size ?? 0),
          firstLoadMs: firstLoads[n] ?? Number.NaN,
          perChange,
          clock: clocks[n] ?? { offsetMs: Number.NaN, rttMs: Number.NaN },
        },
        requestsPerChange: {
          kv: (requestsTo.kv - requestsFrom.kv) / changes,
          session: (requestsTo.session - requestsFrom.session) / changes,
          all: (requestsTo.all - requestsFrom.all) / changes,
        },
        kvInFlight: requestsTo.kvInFlight,
        recursivePrefixes: requestsTo.recursivePrefixes ?? [],
        connections: watcher.connections(),
      };
    }),
    consulCpuMsPerChange: (after.consul - start.consul) / changes,
    keyOfChange,
  };
}
