/**
 * `npx tsx bench/many-keys/standalone.ts [--quick] [--markdown]`: case 3 alone, printed, one line per
 * row, or as its BENCHMARKS.md section (`pnpm bench -- --case many-keys` writes it).
 */
import { manyKeysSettings, runManyKeys } from './case.js';
import { figures, largestClockOffset, renderManyKeysSection, splitFigures } from './report.js';

const quick = process.argv.includes('--quick');
const markdown = process.argv.includes('--markdown');
const { sizes, http2Sizes, http1SplitSizes, changes } = manyKeysSettings(quick);
const t0 = Date.now();
const fixed = (x: number | undefined, digits = 2): string =>
  x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits);
const result = await runManyKeys(sizes, changes, {
  http2Sizes,
  http1SplitSizes,
  log: (line) => console.error(`[bench] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${line}`),
});
console.error(`[bench] ${((Date.now() - t0) / 1000).toFixed(1)} s: many-keys: finished`);
for (const row of result.rows) {
  const f = figures(row);
  console.log(
    [
      `${row.keys} keys`,
      row.mode,
      `floor p50 ${fixed(f.floorP50)} p99 ${fixed(f.floorP99)} ms`,
      `SDK p50 ${fixed(f.sdkP50)} p99 ${fixed(f.sdkP99)} ms`,
      `SDK/floor p50 ${fixed(f.ratio)}x`,
      `median Δ ${fixed(f.medianDelta)} ms`,
      `missed ${row.floor.missed}/${row.sdk.missed}`,
      `first load ${fixed(row.floor.firstLoadMs, 0)}/${fixed(row.sdk.firstLoadMs, 0)} ms`,
      `KV req/change ${fixed(row.kvRequestsPerChange)} (floor ${fixed(row.floorRequestsPerChange)})`,
      `session req/change ${fixed(row.sessionRequestsPerChange)}`,
      `KV in flight ${row.kvInFlight}`,
      `connections ${row.connections}`,
      `CPU floor ${fixed(row.floor.perChange.cpuMs, 1)} SDK ${fixed(row.sdk.perChange.cpuMs, 1)} Consul ${fixed(row.consulCpuMsPerChange, 1)} ms/change`,
      `run queue floor ${fixed(row.floor.perChange.runQueueMs, 1)} SDK ${fixed(row.sdk.perChange.runQueueMs, 1)} ms/change`,
    ].join(' | '),
  );
}
const splitRows = [
  ...result.http2Rows.map((row) => ({
    row,
    over: 'over HTTPS, http2',
    names: ['splitPrefixes: false', 'split'],
  })),
  ...result.http1SplitRows.map((row) => ({
    row,
    over: 'over plain HTTP',
    names: ['one query', 'splitPrefixes: { http1: true }'],
  })),
];
for (const { row, over, names } of splitRows) {
  for (const [name, m] of [
    [names[0], row.whole],
    [names[1], row.split],
  ] as const) {
    const f = splitFigures(m);
    console.log(
      [
        `${row.keys} keys ${over}`,
        row.mode,
        name,
        `p50 ${fixed(f.p50)} p90 ${fixed(f.p90)} p99 ${fixed(f.p99)} ms`,
        `missed ${m.sdk.missed}`,
        `first load ${fixed(m.sdk.firstLoadMs, 0)} ms`,
        `KV req/change ${fixed(m.kvRequestsPerChange)}`,
        `session req/change ${fixed(m.sessionRequestsPerChange)}`,
        `KV in flight ${m.kvInFlight}`,
        ...(result.http1SplitRows.includes(row)
          ? [`recursive queries ${m.queryKeys.length} (keys ${m.queryKeys.join(',')})`]
          : []),
        `connections accepted ${m.connectionsAccepted} (open ${m.connectionsOpen})`,
        `CPU SDK ${fixed(m.sdk.perChange.cpuMs, 1)} Consul ${fixed(m.consulCpuMsPerChange, 1)} ms/change`,
        `run queue SDK ${fixed(m.sdk.perChange.runQueueMs, 1)} ms/change`,
      ].join(' | '),
    );
  }
}
console.log(`largest clock offset between threads: ${fixed(largestClockOffset(result), 3)} ms`);
if (markdown) console.log(`\n${renderManyKeysSection(result, changes)}`);
