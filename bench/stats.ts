/** Order statistics of latency samples (milliseconds). */

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
