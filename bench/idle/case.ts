/**
 * Case 4, idle cost: many keys followed while nothing changes. Requests per
 * minute per key (counted by the proxy in front of the agent), and the CPU
 * time and memory of the follower process (a child started with
 * --expose-gc), with one `leader(key)` per key or one `leaders(prefix)`.
 *
 * Each row gets its own agent (so the agent's CPU time is the row's), its own
 * proxy and its own child. The rows run one after the other: side by side,
 * the kernel's loopback work for one process's sockets is partly charged to
 * whichever process is on the CPU, so their system times mix. Quick mode runs
 * them at the same time anyway, to stay short. The TLS rows (HTTP/1.1 and
 * HTTP/2 over HTTPS) count connections through a TCP pass-through instead.
 */
import { now, sleep } from '../clock.js';
import { ChildModule } from '../child.js';
import { ConsulHttp, eachLimited } from '../consul-http.js';
import { withAgent } from '../lifecycle.js';
import type { SdkSnapshot } from '../sdk-snapshot.js';
import { processCpuMs } from '../support/proc-cpu.js';
import { startProxy } from '../../test/support/proxy.js';
import { startTcpProxy } from '../../test/support/tcp-proxy.js';
import { createTlsMaterial, startTlsAgent } from '../../test/support/tls.js';
import { type IdleMemory, type IdleMode, type IdleRequest, type IdleWindow, TLS_MODES } from './protocol.js';

/** One blocking query per key holds one connection: 1,000 keys need more than Consul's default 200 per client. */
export const AGENT_HCL = 'limits { http_max_conns_per_client = 5000 }';
export const WAIT = '10s';
export const WAIT_SECONDS = 10;
/** After every key has its leader, before the window starts: the first reads settle into blocking ones. */
const SETTLE_MS = 3_000;

export interface IdleRow {
  readonly keys: number;
  readonly mode: IdleMode;
}

export interface IdleSettings {
  readonly rows: readonly IdleRow[];
  readonly windowMs: number;
  /** Rows at the same time (quick) or one after the other. */
  readonly parallel: boolean;
}

export function idleSettings(quick: boolean): IdleSettings {
  return quick
    ? {
        rows: [
          { keys: 0, mode: 'per-key' },
          { keys: 100, mode: 'floor' },
          { keys: 100, mode: 'per-key' },
          { keys: 100, mode: 'coalesced' },
          { keys: 100, mode: 'prefix' },
          { keys: 100, mode: 'per-key-h2' },
        ],
        windowMs: 15_000,
        parallel: true,
      }
    : {
        rows: [
          { keys: 0, mode: 'per-key' },
          { keys: 100, mode: 'per-key' },
          { keys: 1_000, mode: 'floor' },
          { keys: 1_000, mode: 'per-key' },
          { keys: 1_000, mode: 'coalesced' },
          { keys: 1_000, mode: 'prefix' },
          { keys: 1_000, mode: 'per-key-tls' },
          { keys: 1_000, mode: 'per-key-h2' },
        ],
        windowMs: 60_000,
        parallel: false,
      };
}

export interface IdleRowResult {
  readonly row: IdleRow;
  readonly window: IdleWindow;
  /** The process before it followed anything (discovery created), after full collections. */
  readonly baseline: IdleMemory;
  readonly followMs: number;
  /** Requests the proxy received over the window, by kind. */
  readonly requests: { readonly kv: number; readonly other: number };
  /** KV reads over the window of each followed path (each key, or the prefix). */
  readonly readsPerPath: readonly number[];
  /** Between consecutive blocking reads of one path (ms), from the first blocking read to the window's end. */
  readonly intervals: readonly number[];
  /** Client connections open at the proxy at the end of the window. */
  readonly connections: number;
  /** CPU time of the Consul agent over the window (ms), from /proc; NaN elsewhere. */
  readonly agentCpuMs: number;
}

export interface IdleCaseResult {
  readonly settings: IdleSettings;
  readonly rows: readonly IdleRowResult[];
  readonly durationMs: number;
}

/** Gives every key a leader: one session each (no TTL), holding the key with `{"seq":i}`. */
async function seedLeaders(agent: { host: string; port: number }, keys: readonly string[]): Promise<void> {
  const http = new ConsulHttp(agent.host, agent.port);
  try {
    await eachLimited(keys, 16, async (key, i) => {
      const session = await http.createSession({ name: `idle-${i}`, lockDelay: '0s' });
      const { value } = await http.acquire(key, session, JSON.stringify({ seq: i }));
      if (!value) throw new Error(`could not acquire ${key}`);
    });
  } finally {
    http.close();
  }
}

interface Measured {
  readonly baseline: IdleMemory;
  readonly followMs: number;
  readonly window: IdleWindow;
  readonly agentCpuMs: number;
}

/** Starts the follower, lets it follow every key, then measures it (and the agent) over the window. */
async function measure(
  label: string,
  child: ChildModule<IdleRequest>,
  init: Extract<IdleRequest, { type: 'init' }>,
  windowMs: number,
  agentPid: number | undefined,
  log: (line: string) => void,
  onWindowStart: () => void,
): Promise<Measured> {
  const baseline = await child.ask<IdleMemory>(init);
  const { ms: followMs } = await child.ask<{ ms: number }>({ type: 'follow' });
  await sleep(SETTLE_MS);
  onWindowStart();
  const agentCpuBefore = processCpuMs(agentPid);
  await child.ask({ type: 'begin' });
  const started = now();
  log(`${label}: following for ${windowMs / 1000} s`);
  await sleep(windowMs);
  const window = await child.ask<IdleWindow>({ type: 'end' });
  const agentCpuMs = processCpuMs(agentPid) - agentCpuBefore;
  log(`${label}: done (${((now() - started) / 1000).toFixed(1)} s)`);
  return { baseline, followMs, window, agentCpuMs };
}

/** What the follower is told to follow, and through which address (and CA, over HTTPS). */
const initOf = (
  row: IdleRow,
  prefix: string,
  keys: readonly string[],
  proxy: { readonly host: string; readonly port: number },
  ca?: string,
): Extract<IdleRequest, { type: 'init' }> => ({
  type: 'init',
  proxy,
  wait: WAIT,
  mode: row.mode,
  prefix,
  keys,
  ...(ca === undefined ? {} : { ca }),
});

const keysOf = (row: IdleRow, prefix: string): string[] =>
  Array.from({ length: row.keys }, (_, i) => `${prefix}${String(i).padStart(4, '0')}/leader`);

async function runRow(
  row: IdleRow,
  windowMs: number,
  log: (line: string) => void,
  sdk: SdkSnapshot | undefined,
): Promise<IdleRowResult> {
  if (TLS_MODES.has(row.mode)) return runTlsRow(row, windowMs, log, sdk);
  const label = `idle, ${row.keys} keys ${row.mode}`;
  return withAgent({ hcl: AGENT_HCL }, log, async (agent) => {
    const prefix = `bench/idle-${Date.now()}-${row.mode}/`;
    const keys = keysOf(row, prefix);
    await seedLeaders(agent, keys);
    const proxy = await startProxy(agent);
    // Arrival time of every blocking KV read, by path.
    const arrivals = new Map<string, number[]>();
    proxy.rule = (request) => {
      if (request.method === 'GET' && request.path.startsWith('/v1/kv/') && request.query.has('index')) {
        const list = arrivals.get(request.path) ?? [];
        list.push(now());
        arrivals.set(request.path, list);
      }
      return undefined;
    };
    const child = new ChildModule<IdleRequest>(label, new URL('./child.ts', import.meta.url), sdk);
    try {
      let from = 0;
      const init = initOf(row, prefix, keys, { host: proxy.host, port: proxy.port });
      const measured = await measure(label, child, init, windowMs, agent.process().pid, log, () => {
        from = proxy.requests.length;
      });
      const kvReads = proxy.requests
        .slice(from)
        .filter((r) => r.method === 'GET' && r.path.startsWith('/v1/kv/'));
      const kv = kvReads.length;
      const perPath = new Map<string, number>(
        (row.mode === 'per-key' || row.mode === 'floor' ? keys.map((k) => `/v1/kv/${k}`) : []).map((p) => [
          p,
          0,
        ]),
      );
      for (const read of kvReads) perPath.set(read.path, (perPath.get(read.path) ?? 0) + 1);
      const intervals = [...arrivals.values()].flatMap((times) =>
        times.slice(1).map((t, i) => t - (times[i] ?? t)),
      );
      return {
        row,
        ...measured,
        requests: { kv, other: proxy.requests.length - from - kv },
        readsPerPath: [...perPath.values()],
        intervals,
        connections: proxy.openConnections(),
      };
    } finally {
      await child.stop();
      await proxy.close();
    }
  });
}

/**
 * A row against an HTTPS-only agent, through a TCP pass-through that counts
 * connections: requests inside TLS are not counted.
 */
async function runTlsRow(
  row: IdleRow,
  windowMs: number,
  log: (line: string) => void,
  sdk: SdkSnapshot | undefined,
): Promise<IdleRowResult> {
  const label = `idle, ${row.keys} keys ${row.mode}`;
  const material = createTlsMaterial();
  const agent = await startTlsAgent(material, { hcl: AGENT_HCL });
  log(`Consul agent (HTTPS) at ${agent.host}:${agent.port} (pid ${agent.agent.process().pid ?? '?'})`);
  try {
    const prefix = `bench/idle-${Date.now()}-${row.mode}/`;
    const keys = keysOf(row, prefix);
    await eachLimited(keys, 16, async (key, i) => {
      await agent.campaign(key, { seq: i }, `idle-${i}`);
    });
    const proxy = await startTcpProxy(agent.host, agent.port);
    const child = new ChildModule<IdleRequest>(label, new URL('./child.ts', import.meta.url), sdk);
    try {
      const init = initOf(row, prefix, keys, { host: agent.host, port: proxy.port }, material.caPem);
      const measured = await measure(label, child, init, windowMs, agent.agent.process().pid, log, () => {});
      return {
        row,
        ...measured,
        requests: { kv: Number.NaN, other: Number.NaN },
        readsPerPath: [],
        intervals: [],
        connections: proxy.open(),
      };
    } finally {
      await child.stop();
      await proxy.close();
    }
  } finally {
    await agent.destroy();
    material.remove();
  }
}

export async function runIdleCase(
  quick: boolean,
  log: (line: string) => void,
  sdk?: SdkSnapshot,
): Promise<IdleCaseResult> {
  const settings = idleSettings(quick);
  const started = Date.now();
  const rows: IdleRowResult[] = [];
  if (settings.parallel) {
    const settled = await Promise.allSettled(
      settings.rows.map((row) => runRow(row, settings.windowMs, log, sdk)),
    );
    for (const outcome of settled) {
      if (outcome.status === 'rejected') throw outcome.reason;
      rows.push(outcome.value);
    }
  } else {
    for (const row of settings.rows) rows.push(await runRow(row, settings.windowMs, log, sdk));
  }
  return { settings, rows, durationMs: Date.now() - started };
}
