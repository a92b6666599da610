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
 *
 * This file composes the run; rows.ts is the shape of every table (and the
 * side-by-side and split tables), measure.ts one measurement, hops.ts each
 * watcher's way to Consul and how it is counted, writer.ts the writes.
 */
import { stopOnInterrupt } from '../lifecycle.js';
import { type ConsulProxy, startProxy } from '../../test/support/proxy.js';
import { createTlsMaterial, retry, startTlsAgent } from '../../test/support/tls.js';
import { startConsulAgent } from '../../scripts/consul-agent.js';
import { overHttps, throughProxy } from './hops.js';
import { READY_TIMEOUT_MS, type SplitMeasure, type WatcherStats } from './measure.js';
import { type Run, eachRow, sideBySide, splitRows } from './rows.js';
import { ManyKeysThread } from './threads.js';
import { type SeededPrefix, Writer, seedPrefix, writtenOnce } from './writer.js';

export { CHANGE_TIMEOUT_MS, WARMUP_CHANGES } from './measure.js';
export type { SplitMeasure, WatcherStats } from './measure.js';

export type ManyKeysMode = 'leaders(prefix)' | 'leader(key) per key';

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

export async function runManyKeys(
  sizes: readonly number[],
  changes: number,
  options: ManyKeysOptions = {},
): Promise<ManyKeysResult> {
  const log = options.log ?? (() => undefined);
  // One thread each for the whole run, loading while Consul starts: a thread follows one prefix after another.
  const floor = new ManyKeysThread({ role: 'floor' });
  const sdk = new ManyKeysThread({ role: 'sdk', ...(options.sdk ? { sdk: options.sdk } : {}) });
  let rows: ManyKeysRow[] = [];
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
      // The plain-HTTP split rows follow the prefixes written for the rows before them again.
      const run: Run = { consul: agent, writer, prefixOf: writtenOnce(writer, log), changes, nextTag, log };
      rows = await eachRow(
        run,
        sideBySide(sizes, { thread: floor, proxy: floorProxy }, { thread: sdk, proxy: sdkProxy }),
      );
      http1SplitRows = await eachRow(
        run,
        splitRows(options.http1SplitSizes ?? [], sdk, throughProxy(agent, log)),
      );
    } finally {
      writer.close();
      await Promise.all(proxies.map((proxy) => proxy.close()));
      forget();
      await agent.destroy();
    }
    const http2Rows = options.http2Sizes?.length
      ? await runHttp2(options.http2Sizes, sdk, { changes, nextTag, log })
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
  sdk: ManyKeysThread,
  run: Pick<Run, 'changes' | 'nextTag' | 'log'>,
): Promise<ManyKeysSplitRow[]> {
  const { log } = run;
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
      // Every prefix held by that one session.
      const prefixOf = async (size: number): Promise<SeededPrefix> => {
        const seeded = await seedPrefix(writer, size, holder);
        log(`many-keys: ${size} keys written over HTTPS`);
        return seeded;
      };
      return await eachRow(
        { ...run, consul: agent.agent, writer, prefixOf },
        splitRows(sizes, sdk, overHttps(agent, material.caPem)),
      );
    } finally {
      writer.close();
      forget();
      await agent.destroy();
    }
  } finally {
    material.remove();
  }
}
