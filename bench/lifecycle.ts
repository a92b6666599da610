/**
 * What a case starts and must stop, even when the run is interrupted: Consul
 * agents, child processes. Each case stops what it started in a `finally`;
 * run.ts stops whatever is still registered on SIGINT/SIGTERM.
 */
import { type AgentOptions, type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';

const stoppers = new Set<() => Promise<void>>();

/** Registers `stop` until the returned function is called. */
export function stopOnInterrupt(stop: () => Promise<void>): () => void {
  stoppers.add(stop);
  return () => stoppers.delete(stop);
}

/** Stops everything still registered (signal handler). */
export async function stopEverything(): Promise<void> {
  const pending = [...stoppers];
  stoppers.clear();
  await Promise.allSettled(pending.map((stop) => stop()));
}

/** Starts a Consul dev agent for `fn` and destroys it afterwards, whatever happens. */
export async function withAgent<T>(
  options: AgentOptions,
  log: (line: string) => void,
  fn: (agent: ConsulAgent) => Promise<T>,
): Promise<T> {
  const agent = await startConsulAgent(options);
  const forget = stopOnInterrupt(() => agent.destroy());
  log(`Consul agent at ${agent.address} (pid ${agent.process().pid ?? '?'})`);
  try {
    return await fn(agent);
  } finally {
    forget();
    await agent.destroy();
  }
}
