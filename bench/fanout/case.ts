/**
 * Case 2, fan-out: 1, 100 and 10,000 subscribers of one `leader(key)` of one
 * `createLeaderDiscovery`, and 100 subscribers that each call `leader(key)`.
 * Per leadership change: the requests Consul receives (counted by the proxy
 * in front of the agent), the latency from the write to the last
 * subscriber's emission, and the heap per subscriber.
 *
 * Each configuration runs in its own child process (--expose-gc), in rounds
 * (the first one unreported, to warm the process up): heap with 0
 * subscribers, subscribe N, warm-up changes, heap with N, measured changes,
 * unsubscribe all. The proxy runs in this process, so its
 * work is neither in the child's event loop nor in its heap.
 */
import { sleep } from '../clock.js';
import { ChildModule } from '../child.js';
import { withAgent } from '../lifecycle.js';
import type { SdkSnapshot } from '../sdk-snapshot.js';
import { type ConsulProxy, startProxy } from '../../test/support/proxy.js';
import type { ChangeOutcome, FanoutMode, FanoutRequest, Memory } from './protocol.js';

export interface FanoutConfig {
  readonly name: string;
  readonly subscribers: number;
  readonly mode: FanoutMode;
}

export const FANOUT_CONFIGS: readonly FanoutConfig[] = [
  { name: '1 subscriber', subscribers: 1, mode: 'shared' },
  { name: '100 subscribers, one `leader(key)`', subscribers: 100, mode: 'shared' },
  { name: '10,000 subscribers, one `leader(key)`', subscribers: 10_000, mode: 'shared' },
  { name: '100 subscribers, each its own `leader(key)`', subscribers: 100, mode: 'separate' },
];

export interface FanoutSettings {
  readonly rounds: number;
  /** Measured changes per round (even: as many acquisitions as releases). */
  readonly changesPerRound: number;
  /** Changes after subscribing, before the heap is measured; not counted. */
  readonly warmupPerRound: number;
  readonly timeoutMs: number;
  /** After every subscriber saw a change: wait this long (ms, up to twice) before the next. */
  readonly gapMs: number;
}

export function fanoutSettings(quick: boolean): FanoutSettings {
  return {
    rounds: quick ? 2 : 3,
    changesPerRound: quick ? 10 : 40,
    warmupPerRound: 2,
    timeoutMs: 5_000,
    gapMs: 10,
  };
}

/** Requests the proxy received, by kind. */
export interface RequestCounts {
  readonly kv: number;
  readonly session: number;
  readonly other: number;
}

export interface MeasuredChange extends ChangeOutcome {
  readonly requests: RequestCounts;
}

export interface RoundMemory {
  readonly empty: Memory;
  readonly full: Memory;
  readonly subscribeMs: number;
}

export interface FanoutResult {
  readonly config: FanoutConfig;
  readonly changes: readonly MeasuredChange[];
  readonly rounds: readonly RoundMemory[];
  /** Most client connections open at the proxy at once, sampled between changes. */
  readonly maxConnections: number;
  readonly durationMs: number;
}

export interface FanoutCaseResult {
  readonly settings: FanoutSettings;
  readonly results: readonly FanoutResult[];
  readonly durationMs: number;
}

function countSince(proxy: ConsulProxy, from: number): RequestCounts {
  let kv = 0;
  let session = 0;
  let other = 0;
  for (const request of proxy.requests.slice(from)) {
    if (request.method === 'GET' && request.path.startsWith('/v1/kv/')) kv += 1;
    else if (request.method === 'GET' && request.path.startsWith('/v1/session/info/')) session += 1;
    else other += 1;
  }
  return { kv, session, other };
}

/** Waits until the SDK's blocking KV read is waiting at the proxy again. */
async function blocking(proxy: ConsulProxy): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (proxy.inFlight('/v1/kv/') < 1) {
    if (Date.now() > deadline) throw new Error('the SDK has no KV read in flight');
    await sleep(1);
  }
}

async function runConfig(
  agent: { host: string; port: number },
  config: FanoutConfig,
  settings: FanoutSettings,
  log: (line: string) => void,
  sdk: SdkSnapshot | undefined,
): Promise<FanoutResult> {
  const started = Date.now();
  const proxy = await startProxy(agent);
  const child = new ChildModule<FanoutRequest>(
    `fanout ${config.name}`,
    new URL('./child.ts', import.meta.url),
    sdk,
  );
  const key = `bench/fanout-${Date.now()}-${config.mode}-${config.subscribers}/leader`;
  const changeRequest = { type: 'change', timeoutMs: settings.timeoutMs, gapMs: settings.gapMs } as const;
  try {
    await child.ask({
      type: 'init',
      proxy: { host: proxy.host, port: proxy.port },
      agent: { host: agent.host, port: agent.port },
      key,
    });
    const changes: MeasuredChange[] = [];
    const rounds: RoundMemory[] = [];
    let maxConnections = 0;
    // Round 0 warms the process up (code paths, lazily allocated state) and is not reported.
    for (let round = 0; round <= settings.rounds; round += 1) {
      const empty = await child.ask<Memory>({ type: 'memory' });
      const { ms } = await child.ask<{ ms: number }>({
        type: 'subscribe',
        subscribers: config.subscribers,
        mode: config.mode,
      });
      for (let i = 0; i < settings.warmupPerRound; i += 1) await child.ask<ChangeOutcome>(changeRequest);
      const full = await child.ask<Memory>({ type: 'memory' });
      if (round > 0) rounds.push({ empty, full, subscribeMs: ms });
      for (let i = 0; i < settings.changesPerRound; i += 1) {
        await blocking(proxy);
        const from = proxy.requests.length;
        const outcome = await child.ask<ChangeOutcome>({
          ...changeRequest,
          gapMs: settings.gapMs * (1 + Math.random()),
        });
        // The change's requests: the session read (for a new session) and the next blocking KV read.
        await blocking(proxy);
        maxConnections = Math.max(maxConnections, proxy.openConnections());
        if (round > 0) changes.push({ ...outcome, requests: countSince(proxy, from) });
      }
      await child.ask({ type: 'unsubscribe' });
      log(
        `fan-out, ${config.name}: ${round === 0 ? 'warm-up round' : `round ${round}/${settings.rounds}`} done`,
      );
    }
    return { config, changes, rounds, maxConnections, durationMs: Date.now() - started };
  } finally {
    await child.stop();
    await proxy.close();
  }
}

export async function runFanoutCase(
  quick: boolean,
  log: (line: string) => void,
  sdk?: SdkSnapshot,
): Promise<FanoutCaseResult> {
  const settings = fanoutSettings(quick);
  const started = Date.now();
  return withAgent({}, log, async (agent) => {
    const results: FanoutResult[] = [];
    for (const config of FANOUT_CONFIGS) results.push(await runConfig(agent, config, settings, log, sdk));
    return { settings, results, durationMs: Date.now() - started };
  });
}
