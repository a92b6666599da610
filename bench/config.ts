/** Benchmark settings, from the command line and `BENCH_*` environment variables. */
import { parseArgs } from 'node:util';

/** The cases, in the order they run and appear in BENCHMARKS.md. */
export const CASE_NAMES = ['latency', 'fanout', 'many-keys', 'idle', 'failover', 'routing'] as const;
export type CaseName = (typeof CASE_NAMES)[number];

export interface BenchConfig {
  /** `--quick` or `BENCH_QUICK=1`: fewer changes, shorter windows; prints only, leaves BENCHMARKS.md alone. */
  readonly quick: boolean;
  /** `--case <name>` (repeatable; `BENCH_CASES=a,b`): the cases to run; all by default. */
  readonly cases: readonly CaseName[];
  /** Measured changes of the main phase (`BENCH_CHANGES`; 500, quick 100). */
  readonly changes: number;
  /** Changes made before the measured ones, not counted (`BENCH_WARMUP`; 20, quick 10). */
  readonly warmup: number;
  /** Changes of the polling phase, spaced above the poll interval (`BENCH_POLL_CHANGES`; 100, quick 12). */
  readonly pollChanges: number;
  /** How long a change may take to reach a watcher before it counts as missed (`BENCH_TIMEOUT_MS`; 5000). */
  readonly timeoutMs: number;
  /** Where the report is written; null in quick mode. */
  readonly out: string | null;
  /** The command line that reproduces this run, for the report. */
  readonly command: string;
}

function positiveInt(name: string, fallback: number, allowZero = false): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new Error(`${name}: expected a ${allowZero ? 'non-negative' : 'positive'} integer, got "${text}"`);
  }
  return value;
}

function commandLine(args: readonly string[]): string {
  const env = Object.entries(process.env)
    .filter(([name, value]) => name.startsWith('BENCH_') && value !== undefined && value !== '')
    .map(([name, value]) => `${name}=${value ?? ''}`);
  const base = process.env.npm_lifecycle_event === 'bench' ? 'pnpm bench' : 'npx tsx bench/run.ts';
  return [...env, base, ...args].join(' ');
}

function caseNames(given: readonly string[]): readonly CaseName[] {
  if (given.length === 0) return CASE_NAMES;
  for (const name of given) {
    if (!(CASE_NAMES as readonly string[]).includes(name)) {
      throw new Error(`--case ${name}: expected one of ${CASE_NAMES.join(', ')}`);
    }
  }
  return CASE_NAMES.filter((name) => given.includes(name));
}

export function readConfig(args: readonly string[] = process.argv.slice(2)): BenchConfig {
  // `pnpm bench -- --case x` hands the script a literal `--`.
  const argv = args.filter((arg) => arg !== '--');
  const { values } = parseArgs({
    args: [...argv],
    options: { quick: { type: 'boolean' }, case: { type: 'string', multiple: true } },
    strict: true,
  });
  const quick = values.quick === true || ['1', 'true'].includes(process.env.BENCH_QUICK ?? '');
  const fromEnv = (process.env.BENCH_CASES ?? '').split(',').filter((name) => name !== '');
  return {
    quick,
    cases: caseNames([...(values.case ?? []), ...fromEnv]),
    changes: positiveInt('BENCH_CHANGES', quick ? 100 : 500),
    warmup: positiveInt('BENCH_WARMUP', quick ? 10 : 20, true),
    pollChanges: positiveInt('BENCH_POLL_CHANGES', quick ? 12 : 100),
    timeoutMs: positiveInt('BENCH_TIMEOUT_MS', 5_000),
    out: quick ? null : 'BENCHMARKS.md',
    command: commandLine(argv),
  };
}
