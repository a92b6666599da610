/** The benchmark cases: each starts and stops its own agent(s) and returns its section of BENCHMARKS.md. */
import type { BenchConfig, CaseName } from './config.js';
import { runFailoverCase } from './failover/case.js';
import { renderFailoverSection } from './failover/report.js';
import { runFanoutCase } from './fanout/case.js';
import { renderFanoutSection } from './fanout/report.js';
import { runIdleCase } from './idle/case.js';
import { renderIdleSection } from './idle/report.js';
import { runLatencyCase } from './latency/case.js';
import { manyKeysSettings, runManyKeys } from './many-keys/case.js';
import { renderManyKeysSection } from './many-keys/report.js';
import { withAgent } from './lifecycle.js';
import { renderLatencySection } from './report.js';
import { runRoutingCase } from './routing/case.js';
import { renderRoutingSection } from './routing/report.js';
import type { SdkSnapshot } from './sdk-snapshot.js';

export interface CaseContext {
  readonly config: BenchConfig;
  readonly log: (line: string) => void;
  /** The SDK build of the run's start, for the processes and threads started later. */
  readonly sdk: SdkSnapshot;
}

export interface BenchCase {
  readonly name: CaseName;
  /** The start of its section's heading in BENCHMARKS.md. */
  readonly heading: string;
  /** Most of its time is spent waiting (quick mode runs such cases at the same time). */
  readonly mostlyWaits?: boolean;
  /** Runs the case; resolves with its Markdown section. */
  run(context: CaseContext): Promise<string>;
}

export const CASES: readonly BenchCase[] = [
  {
    name: 'latency',
    heading: '## Case 1:',
    run: ({ config, log }) => {
      log(`latency: ${config.changes} changes (+${config.warmup} warm-up), ${config.pollChanges} polled`);
      return withAgent({}, log, async (agent) =>
        renderLatencySection(config, await runLatencyCase(agent, { ...config, log })),
      );
    },
  },
  {
    name: 'fanout',
    heading: '## Case 2:',
    run: async ({ config, log, sdk }) => renderFanoutSection(await runFanoutCase(config.quick, log, sdk)),
  },
  {
    name: 'many-keys',
    heading: '## Case 3:',
    run: async ({ config, log, sdk }) => {
      const { sizes, http2Sizes, http1SplitSizes, changes } = manyKeysSettings(config.quick);
      return renderManyKeysSection(
        await runManyKeys(sizes, changes, { sdk: sdk.url, log, http2Sizes, http1SplitSizes }),
        changes,
      );
    },
  },
  {
    name: 'idle',
    heading: '## Case 4:',
    mostlyWaits: true,
    run: async ({ config, log, sdk }) => renderIdleSection(await runIdleCase(config.quick, log, sdk)),
  },
  {
    name: 'failover',
    heading: '## Case 5:',
    mostlyWaits: true,
    run: async ({ config, log, sdk }) => renderFailoverSection(await runFailoverCase(config.quick, log, sdk)),
  },
  {
    name: 'routing',
    heading: '## Case 6:',
    run: async ({ config, log, sdk }) => renderRoutingSection(await runRoutingCase(config.quick, log, sdk)),
  },
];
