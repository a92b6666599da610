/** Order statistics of latency samples (milliseconds). */
import { rng } from '../test/support/rng.js';

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending array: the smallest value with at least p% of samples at or below it. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of no samples');
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export function summarize(samples: readonly number[]): Summary | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
    mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
  };
}

/** The median of per-change differences `a[i] - b[i]`, over changes both saw. */
export function medianPairedDelta(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
): number | null {
  const deltas: number[] = [];
  for (const [change, x] of a) {
    const y = b.get(change);
    if (y !== undefined) deltas.push(x - y);
  }
  if (deltas.length === 0) return null;
  return percentile(
    deltas.sort((p, q) => p - q),
    50,
  );
}

export interface Interval {
  /** The statistic on the whole sample. */
  readonly estimate: number;
  /** 2.5th and 97.5th percentiles of the statistic over the resamples. */
  readonly low: number;
  readonly high: number;
}

/**
 * p50(a) − p50(b) over the changes both saw, with a 95% paired bootstrap
 * interval: changes are resampled with replacement and both medians taken on
 * the same resample, so a change slow for everyone (a busy moment of the
 * machine) weighs on both sides alike.
 */
export function p50DifferenceInterval(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
  resamples = 2000,
): Interval | null {
  const pairs: [number, number][] = [];
  for (const [change, x] of a) {
    const y = b.get(change);
    if (y !== undefined) pairs.push([x, y]);
  }
  if (pairs.length === 0) return null;
  const p50 = (values: number[]): number =>
    percentile(
      values.sort((p, q) => p - q),
      50,
    );
  const estimate = p50(pairs.map(([x]) => x)) - p50(pairs.map(([, y]) => y));
  const random = rng(pairs.length);
  const differences: number[] = [];
  const xs = new Array<number>(pairs.length);
  const ys = new Array<number>(pairs.length);
  for (let r = 0; r < resamples; r += 1) {
    for (let i = 0; i < pairs.length; i += 1) {
      const [x, y] = pairs[Math.floor(random() * pairs.length)] as [number, number];
      xs[i] = x;
      ys[i] = y;
    }
    differences.push(p50(xs) - p50(ys));
  }
  differences.sort((p, q) => p - q);
  return { estimate, low: percentile(differences, 2.5), high: percentile(differences, 97.5) };
}
