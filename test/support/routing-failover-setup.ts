/**
 * What the two failover files (test/routing-failover.test.ts through leaderDispatcher,
 * test/routing-proxy-failover.test.ts through createLeaderProxy) run against: a real Consul
 * agent, two sets of three backend processes campaigning for a key each (one set for the
 * planned step-downs, one to crash), and Consul's holder changes of each key read
 * independently (followHolders); plus the few questions both ask of the backends.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll } from 'vitest';
import { z } from 'zod';
import { type Leader, type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { delay } from './recorder.js';
import {
  type Backend,
  type Backends,
  type BackendStats,
  type Holders,
  followHolders,
  startBackends,
} from './routing-backends.js';

/** What a backend writes as the key's value while it leads. */
export const Node = z.object({ host: z.string(), port: z.number(), name: z.string() });
export type Node = z.output<typeof Node>;
export const originOf = (leader: Leader<Node>): string => `http://${leader.node.host}:${leader.node.port}`;

export interface FailoverBackends {
  readonly plannedKey: string;
  readonly crashKey: string;
  // Each getter below throws when its part did not start: the test fails with that reason.
  readonly agent: ConsulAgent;
  readonly discovery: LeaderDiscovery;
  readonly planned: Backends;
  readonly crash: Backends;
  readonly plannedHolders: Holders;
  readonly crashHolders: Holders;
}

/** Starts it all in the calling file's beforeAll and stops it in its afterAll; keys under `routing/<name>-<now>/`. */
export function setUpFailoverBackends(name: string): FailoverBackends {
  const stamp = Date.now();
  const plannedKey = `routing/${name}-${stamp}/planned`;
  const crashKey = `routing/${name}-${stamp}/crash`;
  let agent: ConsulAgent | undefined;
  let discovery: LeaderDiscovery | undefined;
  let planned: Backends | undefined;
  let crash: Backends | undefined;
  let plannedHolders: Holders | undefined;
  let crashHolders: Holders | undefined;

  beforeAll(async () => {
    agent = await startConsulAgent();
    discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
    // Before the backends: the record starts with the key's first holder.
    plannedHolders = followHolders(agent.address, plannedKey);
    crashHolders = followHolders(agent.address, crashKey);
    // Both sets at once (process start-up dominates); the crash set idles until its test.
    const [a, b] = await Promise.allSettled([
      startBackends({ consulAddress: agent.address, key: plannedKey, ttl: '10s', lockDelay: '0s' }),
      // 10s is the shortest TTL Consul accepts; the lock-delay keeps the key vacant after the crash.
      startBackends({ consulAddress: agent.address, key: crashKey, ttl: '10s', lockDelay: '1s' }),
    ]);
    if (a.status === 'fulfilled') planned = a.value;
    if (b.status === 'fulfilled') crash = b.value;
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
  });

  afterAll(async () => {
    plannedHolders?.stop();
    crashHolders?.stop();
    discovery?.close();
    await Promise.all([planned?.close(), crash?.close()]);
    await agent?.destroy();
  });

  return {
    plannedKey,
    crashKey,
    get agent() {
      return started(agent, 'the Consul agent');
    },
    get discovery() {
      return started(discovery, 'the discovery');
    },
    get planned() {
      return started(planned, 'the planned backends');
    },
    get crash() {
      return started(crash, 'the crash backends');
    },
    get plannedHolders() {
      return started(plannedHolders, 'followHolders');
    },
    get crashHolders() {
      return started(crashHolders, 'followHolders');
    },
  };
}

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start`);
  return value;
}

/** The session a backend last reported leading with. */
export function leaderSession(backend: Backend): string {
  const event = [...backend.events].reverse().find((e) => e.type === 'leader');
  if (event?.type !== 'leader') throw new Error(`${backend.name} never led`);
  return event.sessionId;
}

/** Polls the backends' stats until `check` holds for them; the deadline only fails a stuck test. */
export async function untilStats(
  backends: readonly Backend[],
  what: string,
  check: (stats: BackendStats[]) => boolean,
  timeoutMs = 10_000,
): Promise<BackendStats[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(backends.map((b) => b.stats()));
    if (check(all)) return all;
    if (performance.now() > deadline) {
      const brief = all.map((s) => ({
        name: s.name,
        leader: s.leader,
        open: s.openConnections,
        ws: s.openWebSockets,
      }));
      throw new Error(`not reached within ${timeoutMs} ms: ${what}: ${JSON.stringify(brief)}`);
    }
    await delay(25);
  }
}

/** Every connection to `backends` closed (after the client's path was closed). */
export const untilNoConnectionOpen = (backends: readonly Backend[]): Promise<BackendStats[]> =>
  untilStats(backends, 'no connection open after close()', (all) =>
    all.every((s) => s.openConnections === 0),
  );
