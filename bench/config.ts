/** Benchmark settings, from the command line and `BENCH_*` environment variables. */
import { parseArgs } from 'node:util';

export interface BenchConfig {
  /** `--quick` or `BENCH_QUICK=1`: fewer changes; prints only, leaves BENCHMARKS.md alone. */
  readonly quick: boolean;
  /** Measured changes of the main phase (`BENCH_CHANGES`; 500, quick 100). */
  readonly changes: number;
  /** Changes made before the measured ones, not counted (`BENCH_WARMUP`; 20, quick 10). */
  readonly warmup: number;
  /** Changes of the polling phase, spaced above the poll interval (`BENCH_POLL_CHANGES`; 100, quick 20). */
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

export function readConfig(argv: readonly string[] = process.argv.slice(2)): BenchConfig {
  const { values } = parseArgs({ args: [...argv], options: { quick: { type: 'boolean' } }, strict: true });
  const quick = values.quick === true || ['1', 'true'].includes(process.env.BENCH_QUICK ?? '');
  return {
    quick,
    changes: positiveInt('BENCH_CHANGES', quick ? 100 : 500),
    warmup: positiveInt('BENCH_WARMUP', quick ? 10 : 20, true),
    pollChanges: positiveInt('BENCH_POLL_CHANGES', quick ? 20 : 100),
    timeoutMs: positiveInt('BENCH_TIMEOUT_MS', 5_000),
    out: quick ? null : 'BENCHMARKS.md',
    command: commandLine(argv),
  };
}
