/**
 * Case 3, many keys: 100, 1,000 and 10,000 leader keys under one prefix,
 * followed through `leaders(prefix)` and through one `leader(key)` per key
 * (coalesced into the prefix's query), side by side with a floor: a bare
 * `http` loop on the same recursive blocking query (floor.ts). The floor and
 * the SDK each run on their own worker thread and read through their own
 * instance of the counting proxy (test/support/proxy.ts, on the main thread
 * with the writer), so both pay the same hop. Per change to one key: latency
 * from the write to each one's report of that key, the thread CPU of each,
 * Consul's CPU, and the requests and connections Consul sees from the SDK.
 * One key through `leader(key)` is the baseline measured the same way.
 * (Memory per key is case 4's.)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { now, sleep } from '../clock.js';
import { GAP_MS } from '../latency/case.js';
import { httpRequest } from '../latency/http.js';
import type { ClockCheck } from '../latency/watcher-thread.js';
import { stopOnInterrupt } from '../lifecycle.js';
import { type ConsulProxy, startProxy } from '../../test/support/proxy.js';
import { startConsulAgent } from '../../scripts/consul-agent.js';
import { keyOf } from './protocol.js';
import { ManyKeysThread, type ThreadTimes } from './threads.js';

export type ManyKeysMode = 'leaders(prefix)' | 'leader(key) per key';

/** Changes made before the measured ones at each size and mode, not counted. */
export const WARMUP_CHANGES = 3;
/** How long a change may take to reach a watcher before it counts as missed. */
export const CHANGE_TIMEOUT_MS = 5_000;
const READY_TIMEOUT_MS = 60_000;
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

export interface ManyKeysRow {
  readonly keys: number;
  readonly mode: ManyKeysMode;
  /** Measured changes. */
  readonly changes: number;
  readonly floor: WatcherStats;
  readonly sdk: WatcherStats;
  /** Requests the SDK sent per change (through its proxy). */
  readonly kvRequestsPerChange: number;
  readonly sessionRequestsPerChange: number;
  /** Requests the floor sent per change (through its proxy). */
  readonly floorRequestsPerChange: number;
  /** The SDK's KV reads waiting at Consul and its connections, after the changes, everything still followed. */
  readonly kvInFlight: number;
  readonly connections: number;
  /** CPU of the Consul agent per change: the write and both watchers' answers. NaN off Linux. */
  readonly consulCpuMsPerChange: number;
}

export interface ManyKeysOptions {
  /** Where the SDK threads import `@consul-leader/discovery` from (bench/sdk-snapshot.ts); the package if absent. */
  readonly sdk?: string;
  readonly log?: (line: string) => void;
}

const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU of a process in ms, from /proc/<pid>/stat (10 ms resolution); NaN where unreadable. */
function processCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** Writes to Consul directly (not through a proxy) on bare `http`, keep-alive. */
class Writer {
  readonly #agent = new http.Agent({ keepAlive: true });

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  /** Sends `body` with PUT; resolves with `now()` taken right before it went to the socket. */
  async put(path: string, body: unknown): Promise<{ sentAt: number; text: string }> {
    let sentAt = 0;
    const answer = await httpRequest({
      agent: this.#agent,
      host: this.host,
      port: this.port,
      method: 'PUT',
      path,
      body: JSON.stringify(body),
      beforeSend: () => {
        sentAt = now();
      },
    });
    const text = answer.body.toString();
    if (answer.status !== 200) throw new Error(`PUT ${path}: HTTP ${answer.status}: ${text}`);
    return { sentAt, text };
  }

  async session(name: string): Promise<string> {
    const { text } = await this.put('/v1/session/create', { Name: name, LockDelay: '0s' });
    return (JSON.parse(text) as { ID: string }).ID;
  }

  close(): void {
    this.#agent.destroy();
  }
}

const value = (i: number, tag: string): string =>
  Buffer.from(JSON.stringify({ host: `10.0.${i >> 8}.${i & 255}`, port: 5432, tag })).toString('base64');

export async function runManyKeys(
  sizes: readonly number[],
  changes: number,
  options: ManyKeysOptions = {},
): Promise<ManyKeysRow[]> {
  const log = options.log ?? (() => undefined);
  // One thread each for the whole run, loading while Consul starts: a thread follows one prefix after another.
  const floor = new ManyKeysThread({ role: 'floor' });
  const sdk = new ManyKeysThread({ role: 'sdk', ...(options.sdk ? { sdk: options.sdk } : {}) });
  const rows: ManyKeysRow[] = [];
  try {
    const agent = await startConsulAgent({ hcl: 'limits { http_max_conns_per_client = 5000 }' });
    const forget = stopOnInterrupt(() => agent.destroy());
    const writer = new Writer(agent.host, agent.port);
    const proxies: ConsulProxy[] = [];
    try {
      // One proxy per watcher: the same hop for both, and the SDK's requests and connections counted alone.
      const floorProxy = await startProxy(agent);
      proxies.push(floorProxy);
      const sdkProxy = await startProxy(agent);
      proxies.push(sdkProxy);
      await Promise.all([floor.loaded(READY_TIMEOUT_MS), sdk.loaded(READY_TIMEOUT_MS)]);
      log('many-keys: watcher threads loaded');
      let serial = 0;
      for (const size of sizes) {
        const prefix = `fleet${size}/`;
        const holder = await writer.session('holder');
        // What each key shows now: the tag of its value, or null with no leader.
        const state = new Map<string, string | null>();
        for (let start = 0; start < size; start += 64) {
          const ops = [];
          for (let i = start; i < Math.min(size, start + 64); i += 1) {
            const key = keyOf(prefix, i);
            ops.push({ KV: { Verb: 'lock', Key: key, Value: value(i, 'a'), Session: holder } });
            state.set(key, 'a');
          }
          await writer.put('/v1/txn', ops);
        }
        log(`many-keys: ${size} keys written`);
        // One key through leader(key) is the baseline: the same writer, proxies and threads.
        const modes: readonly ManyKeysMode[] =
          size === 1 ? ['leader(key) per key'] : ['leaders(prefix)', 'leader(key) per key'];
        for (const mode of modes) {
          const row = await measure({
            writer,
            floorProxy,
            sdkProxy,
            floor,
            sdk,
            prefix,
            size,
            holder,
            mode,
            changes,
            state,
            nextTag: () => `t${(serial += 1)}`,
            consulPid: agent.process().pid,
            log,
          });
          log(`many-keys: ${size} keys, ${mode}: done`);
          rows.push(row);
        }
      }
    } finally {
      writer.close();
      await Promise.all(proxies.map((proxy) => proxy.close()));
      forget();
      await agent.destroy();
    }
  } finally {
    await Promise.all([floor.stop(), sdk.stop()]);
  }
  return rows;
}

interface MeasureOptions {
  readonly writer: Writer;
  readonly floorProxy: ConsulProxy;
  readonly sdkProxy: ConsulProxy;
  readonly floor: ManyKeysThread;
  readonly sdk: ManyKeysThread;
  readonly prefix: string;
  readonly size: number;
  readonly holder: string;
  readonly mode: ManyKeysMode;
  readonly changes: number;
  readonly state: Map<string, string | null>;
  readonly nextTag: () => string;
  readonly consulPid: number | undefined;
  readonly log: (line: string) => void;
}

async function measure(o: MeasureOptions): Promise<ManyKeysRow> {
  const following: ManyKeysThread[] = [];
  const outcome = await follow(o, following).then(
    (row) => ({ row }),
    (error: unknown) => ({ error }),
  );
  // Stopping must not hide the error that ended the measurement.
  const stopped = await Promise.allSettled(following.map((thread) => thread.unfollow()));
  if ('error' in outcome) throw outcome.error;
  for (const [w, result] of stopped.entries()) {
    if (result.status === 'rejected') throw result.reason;
    if (result.value > 1_000) {
      const seconds = (result.value / 1000).toFixed(1);
      o.log(
        `many-keys: ${o.size} keys, ${o.mode}: ${following[w]?.role} took ${seconds} s to stop following`,
      );
    }
  }
  return outcome.row;
}

/** Follows with both threads (added to `following` as they start), makes the changes, measures. */
async function follow(o: MeasureOptions, following: ManyKeysThread[]): Promise<ManyKeysRow> {
  const { writer, floorProxy, sdkProxy, floor, sdk, prefix, size, holder, state, changes } = o;
  // One after the other, so that neither first load competes with the other's.
  following.push(floor);
  const floorFirstLoad = await floor.follow(
    { kind: 'floor', host: floorProxy.host, port: floorProxy.port, prefix, size },
    READY_TIMEOUT_MS,
  );
  following.push(sdk);
  const sdkFirstLoad = await sdk.follow(
    { kind: o.mode, host: sdkProxy.host, port: sdkProxy.port, prefix, size },
    READY_TIMEOUT_MS,
  );
  const clocks = [await floor.checkClock(), await sdk.checkClock()];
  await sleep(SETTLE_MS);

  const latencies = [new Map<number, number>(), new Map<number, number>()];
  let before:
    { times: ThreadTimes[]; consul: number; floorRequests: number; sdkRequests: number } | undefined;
  for (let c = 0; c < WARMUP_CHANGES + changes; c += 1) {
    if (c === WARMUP_CHANGES) {
      before = {
        times: [await floor.times(), await sdk.times()],
        consul: processCpuMs(o.consulPid),
        floorRequests: floorProxy.requests.length,
        sdkRequests: sdkProxy.requests.length,
      };
    }
    const i = (c * 7919) % size;
    const key = keyOf(prefix, i);
    const release = state.get(key) !== null;
    const tag = release ? null : o.nextTag();
    const marks = [floor.mark(key), sdk.mark(key)];
    const { sentAt, text } = await writer.put('/v1/txn', [
      release
        ? { KV: { Verb: 'unlock', Key: key, Value: '', Session: holder } }
        : { KV: { Verb: 'lock', Key: key, Value: value(i, tag ?? ''), Session: holder } },
    ]);
    if (!text.includes('"Results"')) throw new Error(`txn: unexpected answer ${text}`);
    state.set(key, tag);
    const seen = await Promise.all(
      [floor, sdk].map((thread, w) => thread.waitFor(key, marks[w] ?? 0, tag, CHANGE_TIMEOUT_MS)),
    );
    if (c >= WARMUP_CHANGES) {
      seen.forEach((observation, w) => {
        if (observation) latencies[w]?.set(c - WARMUP_CHANGES, observation.at - sentAt);
      });
    }
    // Like case 1: a short random gap, so that both are blocking again.
    await sleep(GAP_MS * (1 + Math.random()));
  }
  const after = { times: [await floor.times(), await sdk.times()], consul: processCpuMs(o.consulPid) };
  await sleep(200); // let the last re-reads go out before counting requests
  if (!before) throw new Error('no measured changes');
  const start = before;
  const perChange = (w: number): ThreadTimes => ({
    cpuMs: ((after.times[w]?.cpuMs ?? Number.NaN) - (start.times[w]?.cpuMs ?? Number.NaN)) / changes,
    runQueueMs:
      ((after.times[w]?.runQueueMs ?? Number.NaN) - (start.times[w]?.runQueueMs ?? Number.NaN)) / changes,
  });
  const stats = (w: number, firstLoadMs: number): WatcherStats => ({
    latencies: latencies[w] ?? new Map<number, number>(),
    missed: changes - (latencies[w]?.size ?? 0),
    firstLoadMs,
    perChange: perChange(w),
    clock: clocks[w] ?? { offsetMs: Number.NaN, rttMs: Number.NaN },
  });
  const during = sdkProxy.requests.slice(start.sdkRequests);
  return {
    keys: size,
    mode: o.mode,
    changes,
    floor: stats(0, floorFirstLoad),
    sdk: stats(1, sdkFirstLoad),
    kvRequestsPerChange: during.filter((r) => r.path.startsWith('/v1/kv/')).length / changes,
    sessionRequestsPerChange: during.filter((r) => r.path.startsWith('/v1/session/')).length / changes,
    floorRequestsPerChange: (floorProxy.requests.length - start.floorRequests) / changes,
    kvInFlight: sdkProxy.inFlight(`/v1/kv/${prefix}`),
    connections: sdkProxy.openConnections(),
    consulCpuMsPerChange: (after.consul - start.consul) / changes,
  };
}
