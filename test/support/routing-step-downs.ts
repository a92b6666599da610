/**
 * The planned step-downs scenario both failover files run, each through its own client path:
 * step-downs of the planned backends' leader under continuous load, then every check of what
 * the client got, what its handle named and what reached the backends.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { expect } from 'vitest';
import type { LeaderHandle } from '@consul-leader/discovery';
import { until } from './recorder.js';
import type { Backends, Holders } from './routing-backends.js';
import { type Echo, arrivalsAt, expectPlannedStepDownsHeld } from './routing-checks.js';
import type { ClientPath } from './routing-client.js';
import {
  type FailoverBackends,
  Node,
  leaderSession,
  untilNoConnectionOpen,
  untilStats,
} from './routing-failover-setup.js';
import { type Load, startLoad } from './routing-load.js';
import { HandleLog, type Start, observedPools } from './routing-observers.js';

/** Short, so two contenders are usually campaigning; a step-down still waits for one (below). */
export const REJOIN_MS = 300;
/** Requests answered after the handle named each new leader, before the next step-down. */
const REQUESTS_AFTER_CHANGE = 40;

/** The client's path to the leader, as a test makes it over the scenario's handle. */
export interface PathOverHandle {
  readonly client: ClientPath;
  /** Frees requests a failure left waiting. */
  destroy(): Promise<unknown>;
  /** The graceful close; with the handle's, it must leave no connection open to any backend. */
  close(): Promise<unknown>;
  /** What else each echo through this path must show, given the origin of the leader that answered. */
  echoAlso?(echo: Echo, leaderOrigin: string | undefined): boolean;
}

/**
 * Follows the planned key; `makePath` makes the client's path over that handle with
 * `factory` as its pools (observed: see observedPools). Then `count` step-downs under load,
 * which starts once the handle names the first leader (a slow first read of Consul is no
 * failover); then close() and every check. Resolves with the counts for the test's log line.
 */
export async function plannedStepDowns(
  world: FailoverBackends,
  count: number,
  makePath: (
    handle: LeaderHandle<Node>,
    factory: (origin: string) => Dispatcher,
  ) => PathOverHandle | Promise<PathOverHandle>,
): Promise<{ requests: number; misdirected: number; afterLoss: number }> {
  const set = world.planned;
  const holders = world.plannedHolders;
  const handle = world.discovery.follow(world.plannedKey, { schema: Node });
  const log = new HandleLog(handle);
  try {
    const starts: Start[] = [];
    const path = await makePath(handle, observedPools(handle, starts));
    const first = await set.leader();
    await until(
      'the handle names the first leader',
      () => handle.current?.session.id === leaderSession(first),
    );
    const load = startLoad(path.client, log);
    try {
      await stepDowns(set, holders, handle, load, count);
    } finally {
      await load.stop(() => path.destroy());
    }
    const arrivals = await arrivalsAt(set);

    await path.close();
    handle.close();
    await untilNoConnectionOpen(set.backends);

    const counts = expectPlannedStepDownsHeld({
      sent: load.sent,
      starts,
      arrivals,
      log,
      holders,
      stepDowns: count,
      echoAlso: (echo) => path.echoAlso?.(echo, log.originOf(echo.sessionId)) ?? true,
    });
    return { requests: load.sent.length, ...counts };
  } finally {
    log.stop();
    handle.close();
  }
}

/**
 * `count` planned step-downs of whoever leads `set`, each once the handle names it and a
 * contender is campaigning; each ends once the load got answers after the handle named the
 * next leader and no connection to the old one is left open.
 */
async function stepDowns(
  set: Backends,
  holders: Holders,
  handle: LeaderHandle<Node>,
  load: Load,
  count: number,
): Promise<void> {
  for (let step = 1; step <= count; step += 1) {
    const old = await set.leader(10_000);
    const oldSession = leaderSession(old);
    await until(
      `step ${step}: the handle names ${old.name}`,
      () => handle.current?.session.id === oldSession,
    );
    // Without a contender the key would stay vacant until the stepped-down one rejoins.
    const others = set.backends.filter((b) => b !== old);
    await untilStats(others, `step ${step}: a contender`, (all) =>
      all.some((s) => s.sessionId !== null && !s.leader),
    );
    const from = holders.changes.length;
    expect(await old.stepDown(REJOIN_MS)).toBe(oldSession);
    const next = await holders.waitFor((c) => c.session !== null && c.session !== oldSession, {
      from,
      timeoutMs: 10_000,
    });
    await until(
      `step ${step}: the handle names ${String(next.session)}`,
      () => handle.current?.session.id === next.session,
      10_000,
    );
    const seenAt = performance.now();
    await until(
      `step ${step}: requests after the change`,
      () => load.answeredSince(seenAt) >= REQUESTS_AFTER_CHANGE,
    );
    // The old leader's pool was closed on the change: its connections end once their requests have.
    await untilStats(
      [old],
      `step ${step}: no connection open to ${old.name}`,
      ([s]) => s?.openConnections === 0,
    );
  }
}
