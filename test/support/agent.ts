/**
 * The setup most integration files share: a real Consul dev agent for the tests of one file,
 * a `consul` client of it, and, when asked, a discovery reading it directly and the counting
 * and fault proxy (./proxy.ts) in front of it; plus keys no other test of the file uses and
 * teardowns of the running test.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type Consul from 'consul';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { consulClient } from './contender.js';
import { type ConsulProxy, startProxy } from './proxy.js';

export interface AgentEnvOptions {
  /** A `createLeaderDiscovery()` of the agent (not through the proxy), closed after the file's tests. */
  readonly discovery?: boolean;
  /** A proxy (`startProxy`) in front of the agent. */
  readonly proxy?: boolean;
}

/** What `useAgent()` started. Each getter throws when read outside the file's tests and hooks. */
export interface AgentEnv {
  readonly agent: ConsulAgent;
  /** A client of the agent, for the test's own writes (sessions, acquire, release). */
  readonly consul: Consul;
  /** Only with `{ discovery: true }`. */
  readonly discovery: LeaderDiscovery;
  /** Only with `{ proxy: true }`. */
  readonly proxy: ConsulProxy;
  /** `<scope>/t<n>-<now>/leader`, a new key at each call. */
  uniqueKey(scope: string): string;
  /** `<scope>/p<n>-<now>/`, a new prefix at each call (same counter as `uniqueKey`). */
  uniquePrefix(scope: string): string;
  /** Runs `cleanup` after the running test (pass or fail), the last deferred first. */
  defer(cleanup: () => unknown): void;
}

interface Started {
  agent: ConsulAgent;
  consul: Consul;
  discovery?: LeaderDiscovery;
  proxy?: ConsulProxy;
}

/**
 * Starts an agent (and what `options` ask for) in a beforeAll of the enclosing describe (or
 * file) and stops it all in an afterAll. Call it once, at the top, before the file's own hooks:
 * its afterEach (the deferred teardowns) and afterAll then run after theirs.
 */
export function useAgent(options: AgentEnvOptions = {}): AgentEnv {
  let started: Started | undefined;
  let stopped = false;
  let n = 0;
  const cleanups: Array<() => unknown> = [];

  const current = (): Started => {
    if (stopped) throw new Error('useAgent(): the agent was stopped in afterAll; use it in a test or a hook');
    if (!started) throw new Error('useAgent(): the agent starts in beforeAll; use it in a test or a hook');
    return started;
  };
  const asked = <T>(value: T | undefined, option: keyof AgentEnvOptions): T => {
    if (value !== undefined) return value;
    if (!options[option]) throw new Error(`useAgent(): env.${option} needs useAgent({ ${option}: true })`);
    throw new Error(`useAgent(): env.${option} did not start`);
  };

  beforeAll(async () => {
    const agent = await startConsulAgent();
    // Kept as soon as it runs, so that afterAll stops it if what follows fails.
    started = { agent, consul: consulClient(agent.address) };
    if (options.discovery) {
      started.discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
    }
    if (options.proxy) started.proxy = await startProxy({ host: agent.host, port: agent.port });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    stopped = true;
    started?.discovery?.close();
    await started?.proxy?.close();
    await started?.agent.destroy();
  });

  return {
    get agent() {
      return current().agent;
    },
    get consul() {
      return current().consul;
    },
    get discovery() {
      return asked(current().discovery, 'discovery');
    },
    get proxy() {
      return asked(current().proxy, 'proxy');
    },
    uniqueKey: (scope) => `${scope}/t${++n}-${Date.now()}/leader`,
    uniquePrefix: (scope) => `${scope}/p${++n}-${Date.now()}/`,
    defer: (cleanup) => void cleanups.push(cleanup),
  };
}
