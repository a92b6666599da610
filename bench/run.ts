/**
 * `pnpm bench`: starts its own Consul dev agent, runs the benchmark cases,
 * prints the report and (unless --quick) writes BENCHMARKS.md, then stops
 * the agent and every worker thread.
 *
 *   pnpm bench                          # 500 measured changes, writes BENCHMARKS.md
 *   pnpm bench --quick                  # or BENCH_QUICK=1: 100 changes, prints only
 *   BENCH_CHANGES=2000 pnpm bench       # see bench/config.ts for every BENCH_* setting
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConsulAgent, consulBinary, startConsulAgent } from '../scripts/consul-agent.js';
import { readConfig } from './config.js';
import { describeEnvironment } from './environment.js';
import { runLatencyCase } from './latency/case.js';
import { renderReport } from './report.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line: string): void => console.error(`[bench] ${line}`);

let agent: ConsulAgent | undefined;

function stopOnSignal(signal: NodeJS.Signals): void {
  process.once(signal, () => {
    log(`${signal}: stopping the Consul agent`);
    const stopping = agent?.destroy() ?? Promise.resolve();
    void stopping.finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const config = readConfig();
  stopOnSignal('SIGINT');
  stopOnSignal('SIGTERM');
  const environment = describeEnvironment(ROOT, consulBinary());
  log(
    `${config.quick ? 'quick mode, ' : ''}${config.changes} changes (+${config.warmup} warm-up), ${config.pollChanges} polled`,
  );
  agent = await startConsulAgent();
  log(`Consul agent at ${agent.address}`);
  try {
    const result = await runLatencyCase(agent, { ...config, log });
    const file = join(ROOT, config.out ?? 'BENCHMARKS.md');
    const report = await renderReport({ config, environment, result, loadAtEnd: loadavg() }, file);
    console.log(report);
    if (config.out) {
      writeFileSync(file, report);
      log(`wrote ${config.out}`);
    }
  } finally {
    await agent.destroy();
    agent = undefined;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
