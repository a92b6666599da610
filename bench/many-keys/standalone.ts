/** `npx tsx bench/many-keys/standalone.ts [--quick]`: case 3 alone, printed (`pnpm bench -- --case many-keys` writes it). */
import { summarize } from '../stats.js';
import { runManyKeys } from './case.js';

const quick = process.argv.includes('--quick');
const rows = await runManyKeys(quick ? [1, 100, 1000] : [1, 100, 1000, 10000], quick ? 20 : 50);
for (const row of rows) {
  const s = summarize(row.latencies);
  console.log(
    [
      `${row.keys} keys`,
      row.mode,
      `first load ${row.firstLoadMs.toFixed(0)} ms`,
      `p50 ${s?.p50.toFixed(2)} ms p99 ${s?.p99.toFixed(2)} ms`,
      `KV req/change ${row.kvRequestsPerChange.toFixed(2)}`,
      `session req/change ${row.sessionRequestsPerChange.toFixed(2)}`,
      `KV in flight ${row.kvInFlight}`,
      `connections ${row.connections}`,
      `CPU ${row.cpuMsPerChange.toFixed(1)} ms/change`,
    ].join(' | '),
  );
}
