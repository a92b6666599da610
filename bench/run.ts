/**
 * `pnpm bench`: runs the benchmark cases (each starts and stops its own Consul
 * agent), prints the report and (unless --quick) writes BENCHMARKS.md.
 *
 *   pnpm bench                          # every case, writes BENCHMARKS.md
 *   pnpm bench -- --case fanout         # one case (repeatable); replaces only its section
 *   pnpm bench --quick                  # or BENCH_QUICK=1: reduced sizes, prints only
 *   BENCH_CHANGES=2000 pnpm bench       # see bench/config.ts for every BENCH_* setting
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consulBinary } from '../scripts/consul-agent.js';
import { type BenchCase, CASES, type CaseContext } from './cases.js';
import { readConfig } from './config.js';
import { describeEnvironment } from './environment.js';
import { stopEverything } from './lifecycle.js';
import { formatMarkdown, renderHeader } from './report.js';
import { distHash, removeSnapshot, snapshotSdk } from './sdk-snapshot.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line: string): void => console.error(`[bench] ${line}`);

function stopOnSignal(signal: NodeJS.Signals): void {
  process.once(signal, () => {
    log(`${signal}: stopping Consul agents and child processes`);
    void stopEverything().finally(() => process.exit(130));
  });
}

/**
 * The sections of `previous` (split on `## Case N:` headings) with those in
 * `replaced` swapped in, in case order; its header, unless `newHeader` is given.
 */
function mergeSections(previous: string, replaced: ReadonlyMap<string, string>, newHeader?: string): string {
  const parts = previous.split(/^(?=## Case )/m);
  const header = newHeader ?? parts[0] ?? '';
  const headingOf = (section: string): string => /^## Case \d+:/.exec(section)?.[0] ?? section;
  const sections = new Map(parts.slice(1).map((part) => [headingOf(part), part]));
  for (const [heading, section] of replaced) sections.set(heading, section);
  // In case order; sections of cases this script does not run (written by others) are kept.
  const number = (heading: string): number => Number(/\d+/.exec(heading)?.[0] ?? Number.POSITIVE_INFINITY);
  const ordered = [...sections].sort(([a], [b]) => number(a) - number(b)).map(([, s]) => s.trimEnd());
  return [header.trimEnd(), ...ordered].join('\n\n') + '\n';
}

async function runCase(bench: BenchCase, context: CaseContext): Promise<string> {
  const started = Date.now();
  const section = await bench.run(context);
  log(`${bench.name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return section;
}

async function main(): Promise<void> {
  const config = readConfig();
  stopOnSignal('SIGINT');
  stopOnSignal('SIGTERM');
  const environment = describeEnvironment(ROOT, consulBinary());
  const sdk = snapshotSdk();
  log(`${config.quick ? 'quick mode, ' : ''}cases: ${config.cases.join(', ')}; SDK build ${sdk.hash}`);
  const started = Date.now();
  const selected = CASES.filter((c) => config.cases.includes(c.name));
  // Quick mode runs the cases that mostly wait (a TTL, an idle window) at the same time, to stay short.
  const together = config.quick ? selected.filter((c) => c.mostlyWaits) : [];
  const sections = new Map<string, string>();
  // The first case after which packages/*/dist differed from the snapshot (rebuilt by other work).
  let rebuiltBy: string | undefined;
  const noteRebuild = (after: string): void => {
    if (rebuiltBy === undefined && distHash() !== sdk.hash) {
      rebuiltBy = after;
      log(`packages/*/dist changed during ${after}: the cases keep using the snapshot ${sdk.hash}`);
    }
  };
  try {
    for (const bench of selected.filter((c) => !together.includes(c))) {
      sections.set(bench.heading, await runCase(bench, { config, log, sdk }));
      noteRebuild(bench.name);
    }
    if (together.length > 0) {
      log(`quick mode: ${together.map((c) => c.name).join(' and ')} at the same time`);
      const outcomes = await Promise.allSettled(
        together.map((bench) => runCase(bench, { config, log, sdk })),
      );
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === 'rejected') throw outcome.reason;
        sections.set(together[i]?.heading ?? '', outcome.value);
      }
      noteRebuild(together.map((c) => c.name).join(' and '));
    }
  } finally {
    removeSnapshot(sdk);
  }
  log(`all cases: ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const file = join(ROOT, config.out ?? 'BENCHMARKS.md');
  const complete = config.cases.length === CASES.length;
  const header = renderHeader({
    config,
    environment,
    loadAtEnd: loadavg(),
    sdk: { hash: sdk.hash, ...(rebuiltBy === undefined ? {} : { rebuiltDuring: rebuiltBy }) },
  });
  const inOrder = CASES.flatMap(({ heading }) => sections.get(heading) ?? []);
  const fresh = [header, ...inOrder].join('\n');
  console.log(await formatMarkdown(fresh, file));
  if (!config.out) return;
  // A full run writes a new header; a run of some cases keeps the file's header and notes
  // the re-run in its sections. Sections of cases not run here are kept either way.
  const note = `_Re-run alone on ${environment.date} (\`${config.command}\`, commit ${environment.source}); the header describes an earlier, full run._\n\n`;
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : header;
  const replaced = new Map(
    [...sections].map(([heading, text]) => [heading, complete ? text : text.replace(/\n\n/, `\n\n${note}`)]),
  );
  const document = mergeSections(previous, replaced, complete ? header : undefined);
  writeFileSync(file, await formatMarkdown(document, file));
  log(`wrote ${config.out}`);
}

main().catch(async (error: unknown) => {
  console.error(error);
  process.exitCode = 1;
  await stopEverything();
});
