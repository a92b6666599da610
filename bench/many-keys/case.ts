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
 *
 * Then the HTTP/2 rows: the same keys on an HTTPS-only agent, followed by the
 * SDK alone with `http2: true`, once with `splitPrefixes: false` (one
 * recursive query) and once with the default `splitPrefixes` (the prefix as
 * many sub-prefix queries on one connection), one after the other, each
 * through its own TCP pass-through (test/support/tcp-proxy.ts) that counts its
 * connections; its requests are counted in its thread (h2-streams.ts).
 *
 * And the plain-HTTP split rows: on the plain-HTTP agent, the SDK alone, once
 * with the default `splitPrefixes` (over plain HTTP: the prefix's one recursive
 * query) and once with `splitPrefixes: { http1: true }` (sub-prefix queries on
 * a connection each), one after the other, each through its own counting proxy
 * (its requests, connections, and the recursive queries open at the end).
 * (Memory per key is case 4's.)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { now, sleep } from '../clock.js';
import { GAP_MS } from '../latency/case.js';
import { httpRequest } from '../latency/http.js';
import type { ClockCheck } from '../latency/watcher-thread.js';
import { stopOnInterrupt } from '../lifecycle.js';
import { type ConsulProxy, type ProxiedRequest, startProxy } from '../../test/support/proxy.js';
import { createTlsMaterial, retry, startTlsAgent } from '../../test/support/tls.js';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { startTcpProxy } from '../../test/support/tcp-proxy.js';
import { type FollowOrder, type ManyKeysUsage, keyOf } from './protocol.js';
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

/** One size and way of following, measured with the prefix's one query and split. */
export interface ManyKeysSplitRow {
  readonly keys: number;
  readonly mode: ManyKeysMode;
  readonly changes: number;
  /** The prefix's one recursive query: `splitPrefixes: false` (HTTP/2), the default (plain HTTP). */
  readonly whole: SplitMeasure;
  /** Sub-prefix queries and a `?keys` query: the default (HTTP/2), `{ http1: true }` (plain HTTP). */
  readonly split: SplitMeasure;
}

export interface ManyKeysResult {
  /** Plain HTTP: the floor and the SDK side by side. */
  readonly rows: readonly ManyKeysRow[];
  /** HTTPS with `http2: true`: the SDK alone, one query per prefix and split. */
  readonly http2Rows: readonly ManyKeysSplitRow[];
  /** Plain HTTP: the SDK alone, one query per prefix (the default) and `splitPrefixes: { http1: true }`. */
  readonly http1SplitRows: readonly ManyKeysSplitRow[];
}

export interface ManyKeysOptions {
  /** Where the SDK threads import `@consul-leader/discovery` from (bench/sdk-snapshot.ts); the package if absent. */
  readonly sdk?: string;
  readonly log?: (line: string) => void;
  /** Sizes of the HTTP/2 rows (none if absent). */
  readonly http2Sizes?: readonly number[];
  /** Sizes of the plain-HTTP split rows (none if absent). */
  readonly http1SplitSizes?: readonly number[];
}

export interface ManyKeysSettings {
  /** Sizes of the plain-HTTP rows (floor and SDK side by side). */
  readonly sizes: readonly number[];
  /** Sizes of the HTTP/2 rows. */
  readonly http2Sizes: readonly number[];
  /** Sizes of the plain-HTTP split rows (`splitPrefixes: { http1: true }` against the default). */
  readonly http1SplitSizes: readonly number[];
  /** Measured changes per row. */
  readonly changes: number;
}

export function manyKeysSettings(quick: boolean): ManyKeysSettings {
  return quick
    ? { sizes: [1, 100, 1000], http2Sizes: [1000], http1SplitSizes: [1000], changes: 20 }
    : {
        sizes: [1, 100, 1000, 10000],
        http2Sizes: [1000, 10000],
        http1SplitSizes: [1000, 10000],
        changes: 50,
      };
}

/** Both agents: Consul's limit of connections per client (default 200) raised, as this case always had it. */
const AGENT_HCL = 'limits { http_max_conns_per_client = 5000 }';

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

/** Writes to Consul directly (not through a proxy) on bare `http`, keep-alive; on `https` with `ca`. */
class Writer {
  readonly #agent: http.Agent;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly ca?: string,
  ) {
    this.#agent =
      ca === undefined ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true, ca });
  }

  /** Sends `body` with PUT; resolves with `now()` taken right before it went to the socket. */
  async put(path: string, body: unknown): Promise<{ sentAt: number; text: string }> {
    let sentAt = 0;
    const call = {
      agent: this.#agent,
      host: this.host,
      port: this.port,
      method: 'PUT',
      path,
      body: JSON.stringify(body),
      beforeSend: () => {
        sentAt = now();
      },
      ...(this.ca === undefined ? {} : { ca: this.ca }),
    } as const;
    const answer = await httpRequest(call);
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

/** Gives each of `size` keys under `prefix` a leader, `holder`, with the tag `a`; records it in `state`. */
async function seed(
  writer: Writer,
  prefix: string,
  size: number,
  holder: string,
  state: Map<string, string | null>,
): Promise<void> {
  for (let start = 0; start < size; start += 64) {
    const ops = [];
    for (let i = start; i < Math.min(size, start + 64); i += 1) {
      const key = keyOf(prefix, i);
      ops.push({ KV: { Verb: 'lock', Key: key, Value: value(i, 'a'), Session: holder } });
      state.set(key, 'a');
    }
    await writer.put('/v1/txn', ops);
  }
}

/** A prefix of `size` keys written by `seedPrefix`: every key held by `holder`; `state` is what each shows now. */
interface SeededPrefix {
  readonly prefix: string;
  readonly holder: string;
  /** What each key shows now: the tag of its value, or null with no leader. */
  readonly state: Map<string, string | null>;
}

/** Writes `fleet<size>/` with a new holder session. */
async function seedPrefix(writer: Writer, size: number): Promise<SeededPrefix> {
  const prefix = `fleet${size}/`;
  const holder = await writer.session('holder');
  const state = new Map<string, string | null>();
  await seed(writer, prefix, size, holder, state);
  return { prefix, holder, state };
}

export async function runManyKeys(
  sizes: readonly number[],
  changes: number,
  options: ManyKeysOptions = {},
): Promise<ManyKeysResult> {
  const log = options.log ?? (() => undefined);
  // One thread each for the whole run, loading while Consul starts: a thread follows one prefix after another.
  const floor = new ManyKeysThread({ role: 'floor' });
  const sdk = new ManyKeysThread({ role: 'sdk', ...(options.sdk ? { sdk: options.sdk } : {}) });
  const rows: ManyKeysRow[] = [];
  let http1SplitRows: ManyKeysSplitRow[] = [];
  let serial = 0;
  const nextTag = (): string => `t${(serial += 1)}`;
  try {
    const agent = await startConsulAgent({ hcl: AGENT_HCL });
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
      // The prefixes written so far, by size: the plain-HTTP split rows follow them again.
      const seeded = new Map<number, SeededPrefix>();
      for (const size of sizes) {
        const seededPrefix = await seedPrefix(writer, size);
        seeded.set(size, seededPrefix);
        const { prefix, holder, state } = seededPrefix;
        log(`many-keys: ${size} keys written`);
        // One key through leader(key) is the baseline: the same writer, proxies and threads.
        const modes: readonly ManyKeysMode[] =
          size === 1 ? ['leader(key) per key'] : ['leaders(prefix)', 'leader(key) per key'];
        for (const mode of modes) {
          const watchers: Watcher[] = [
            {
              thread: floor,
              order: { kind: 'floor', host: floorProxy.host, port: floorProxy.port, prefix, size },
              requests: proxyCounts(floorProxy, prefix),
              connections: proxyConnections(floorProxy),
            },
            {
              thread: sdk,
              order: { kind: mode, host: sdkProxy.host, port: sdkProxy.port, prefix, size },
              requests: proxyCounts(sdkProxy, prefix),
              connections: proxyConnections(sdkProxy),
            },
          ];
          const measured = await measure(
            {
              writer,
              prefix,
              holder,
              changes,
              state,
              nextTag,
              keyAt: (c) => (c * 7919) % size,
              consulPid: agent.process().pid,
              label: `${size} keys, ${mode}`,
              log,
            },
            watchers,
          );
          const [floorSide, sdkSide] = measured.watchers;
          if (!floorSide || !sdkSide) throw new Error('many-keys: a watcher is missing');
          rows.push({
            keys: size,
            mode,
            changes,
            floor: floorSide.stats,
            sdk: sdkSide.stats,
            kvRequestsPerChange: sdkSide.requestsPerChange.kv,
            sessionRequestsPerChange: sdkSide.requestsPerChange.session,
            floorRequestsPerChange: floorSide.requestsPerChange.all,
            kvInFlight: sdkSide.kvInFlight,
            connections: sdkSide.connections.open,
            consulCpuMsPerChange: measured.consulCpuMsPerChange,
          });
          log(`many-keys: ${size} keys, ${mode}: done`);
        }
      }
      if (options.http1SplitSizes?.length) {
        http1SplitRows = await runHttp1Split(options.http1SplitSizes, changes, {
          sdk,
          writer,
          agent,
          seeded,
          nextTag,
          log,
        });
      }
    } finally {
      writer.close();
      await Promise.all(proxies.map((proxy) => proxy.close()));
      forget();
      await agent.destroy();
    }
    const http2Rows = options.http2Sizes?.length
      ? await runHttp2(options.http2Sizes, changes, sdk, nextTag, log)
      : [];
    return { rows, http2Rows, http1SplitRows };
  } finally {
    await Promise.all([floor.stop(), sdk.stop()]);
  }
}

/**
 * The HTTP/2 rows: an HTTPS-only agent (certificates from `consul tls`), the
 * SDK thread alone, each configuration through its own TCP pass-through.
 */
async function runHttp2(
  sizes: readonly number[],
  changes: number,
  sdk: ManyKeysThread,
  nextTag: () => string,
  log: (line: string) => void,
): Promise<ManyKeysSplitRow[]> {
  const rows: ManyKeysSplitRow[] = [];
  const material = createTlsMaterial();
  try {
    const agent = await startTlsAgent(material, { hcl: AGENT_HCL });
    const forget = stopOnInterrupt(() => agent.destroy());
    log(
      `many-keys: Consul agent (HTTPS) at ${agent.host}:${agent.port} (pid ${agent.agent.process().pid ?? '?'})`,
    );
    const writer = new Writer(agent.host, agent.port, material.caPem);
    try {
      // A session needs the agent's node in the catalog, which may lag its first leader a little.
      const holder = await retry('a session over HTTPS', () => writer.session('holder'));
      for (const size of sizes) {
        const prefix = `fleet${size}/`;
        const state = new Map<string, string | null>();
        await seed(writer, prefix, size, holder, state);
        const keys = [...state.keys()];
        log(`many-keys: ${size} keys written over HTTPS`);
        for (const mode of ['leaders(prefix)', 'leader(key) per key'] as const) {
          const alone = async (split: boolean): Promise<SplitMeasure> => {
            const tcp = await startTcpProxy(agent.host, agent.port);
            try {
              const order: FollowOrder = {
                kind: mode,
                host: agent.host,
                port: tcp.port,
                prefix,
                size,
                http2: { ca: material.caPem, split },
              };
              return await measureAlone(
                {
                  writer,
                  prefix,
                  holder,
                  changes,
                  state,
                  nextTag,
                  keyAt: inPairs(size),
                  consulPid: agent.agent.process().pid,
                  label: `${size} keys over HTTPS, ${mode}, ${split ? 'split' : 'splitPrefixes: false'}`,
                  log,
                },
                {
                  thread: sdk,
                  order,
                  requests: streamCounts,
                  connections: () => ({ accepted: tcp.accepted(), open: tcp.open() }),
                },
                keys,
              );
            } finally {
              await tcp.close();
            }
          };
          const whole = await alone(false);
          const split = await alone(true);
          rows.push({ keys: size, mode, changes, whole, split });
        }
      }
    } finally {
      writer.close();
      forget();
      await agent.destroy();
    }
  } finally {
    material.remove();
  }
  return rows;
}

/** What runHttp1Split needs of runManyKeys's plain-HTTP run. */
interface Http1SplitContext {
  readonly sdk: ManyKeysThread;
  readonly writer: Writer;
  readonly agent: ConsulAgent;
  /** Prefixes already written, by size (written here otherwise). */
  readonly seeded: Map<number, SeededPrefix>;
  readonly nextTag: () => string;
  readonly log: (line: string) => void;
}

/**
 * The plain-HTTP split rows: on the plain-HTTP agent, the SDK thread alone,
 * once with the default `splitPrefixes` (over plain HTTP, the prefix's one
 * recursive query) and once with `splitPrefixes: { http1: true }`, each
 * through its own counting proxy.
 */
async function runHttp1Split(
  sizes: readonly number[],
  changes: number,
  context: Http1SplitContext,
): Promise<ManyKeysSplitRow[]> {
  const { sdk, writer, agent, seeded, nextTag, log } = context;
  const rows: ManyKeysSplitRow[] = [];
  for (const size of sizes) {
    let written = seeded.get(size);
    if (!written) {
      written = await seedPrefix(writer, size);
      seeded.set(size, written);
      log(`many-keys: ${size} keys written`);
    }
    const { prefix, holder, state } = written;
    const keys = [...state.keys()];
    for (const mode of ['leaders(prefix)', 'leader(key) per key'] as const) {
      const alone = async (split: boolean): Promise<SplitMeasure> => {
        const proxy = await startProxy(agent);
        try {
          const counts = proxyCounts(proxy, prefix);
          const measured = await measureAlone(
            {
              writer,
              prefix,
              holder,
              changes,
              state,
              nextTag,
              keyAt: inPairs(size),
              consulPid: agent.process().pid,
              label: `${size} keys over plain HTTP, ${mode}, ${split ? 'splitPrefixes: { http1: true }' : 'one query'}`,
              log,
            },
            {
              thread: sdk,
              order: { kind: mode, host: proxy.host, port: proxy.port, prefix, size, http1Split: split },
              requests: () => ({ ...counts(), recursivePrefixes: openRecursivePrefixes(proxy, prefix) }),
              connections: proxyConnections(proxy),
            },
            keys,
          );
          log(
            `many-keys: ${size} keys over plain HTTP, ${mode}, ${split ? 'split' : 'one query'}: ` +
              `${measured.queryKeys.length} recursive queries open, ${measured.kvInFlight} KV reads in flight, ` +
              `${measured.connectionsOpen} connections open, ${measured.connectionsAccepted} accepted`,
          );
          return measured;
        } finally {
          await proxy.close();
        }
      };
      const whole = await alone(false);
      const split = await alone(true);
      rows.push({ keys: size, mode, changes, whole, split });
    }
  }
  return rows;
}

/** Pairs of changes on one key: a release, then a re-acquire (as many of each in every measurement). */
const inPairs =
  (size: number) =>
  (c: number): number =>
    (Math.floor(c / 2) * 7919) % size;

/** One SDK configuration followed alone on its thread: `measure` with one watcher, as a SplitMeasure. */
async function measureAlone(
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
interface RequestCounts {
  readonly kv: number;
  readonly session: number;
  readonly all: number;
  readonly kvInFlight: number;
  /** The prefixes of its recursive KV reads waiting now, where known (HTTP/2 streams; the split rows' proxies). */
  readonly recursivePrefixes?: readonly string[];
}

/** One watcher of a measurement: its thread, what it follows, how its requests and connections are counted. */
interface Watcher {
  readonly thread: ManyKeysThread;
  readonly order: FollowOrder;
  /** Its requests so far; `usage` is its thread's, just taken. */
  readonly requests: (usage: ManyKeysUsage) => RequestCounts;
  /** Its connections: accepted so far, open now. */
  readonly connections: () => { readonly accepted: number; readonly open: number };
}

/** What a counting proxy (test/support/proxy.ts) received: every request goes through it. */
const proxyCounts = (proxy: ConsulProxy, prefix: string) => (): RequestCounts => ({
  kv: proxy.requests.filter((r) => r.path.startsWith('/v1/kv/')).length,
  session: proxy.requests.filter((r) => r.path.startsWith('/v1/session/')).length,
  all: proxy.requests.length,
  kvInFlight: proxy.inFlight(`/v1/kv/${prefix}`),
});

const proxyConnections = (proxy: ConsulProxy) => (): { accepted: number; open: number } => ({
  accepted: proxy.connectionsAccepted(),
  open: proxy.openConnections(),
});

/**
 * The prefixes of the recursive reads under `prefix` that a counting proxy is
 * holding now: of each path, the last request, if it has no answer yet (the
 * proxy notes a status once the answer is sent; an aborted read is followed by
 * a later one of the same path).
 */
function openRecursivePrefixes(proxy: ConsulProxy, prefix: string): string[] {
  const last = new Map<string, ProxiedRequest>();
  for (const request of proxy.requests) {
    if (request.path.startsWith(`/v1/kv/${prefix}`) && request.query.has('recurse')) {
      last.set(request.path, request);
    }
  }
  return [...last].flatMap(([path, request]) =>
    request.status === undefined ? [path.slice('/v1/kv/'.length)] : [],
  );
}

/** The HTTP/2 streams the thread's SDK opened (over TLS, no proxy sees them). */
const streamCounts = ({ streams }: ManyKeysUsage): RequestCounts => ({
  kv: streams.kv,
  session: streams.session,
  all: streams.all,
  kvInFlight: streams.kvOpen,
  recursivePrefixes: streams.kvOpenPaths.flatMap((path) => {
    const url = new URL(path, 'https://consul');
    return url.searchParams.has('recurse') ? [decodeURIComponent(url.pathname.slice('/v1/kv/'.length))] : [];
  }),
});

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

interface MeasureOptions {
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
async function measure(o: MeasureOptions, watchers: readonly Watcher[]): Promise<Measured> {
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
        : { KV: { Verb: 'lock', Key: key, Value: value(i, tag ?? ''), Session: holder } },
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
