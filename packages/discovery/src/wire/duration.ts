/** Go-style durations ("500ms", "30s", "5m", "1m30s") as Consul's `wait` takes them. */
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;

/** Milliseconds for a duration: a number is taken as ms; a string as a Go duration. NaN when invalid. */
export function parseDurationMs(value: number | string): number {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : NaN;
  const text = value.trim();
  if (text === '0') return 0;
  if (text === '') return NaN;
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
    consumed = PART.lastIndex;
  }
  return consumed === text.length ? total : NaN;
}

/** The `wait` query parameter for a duration in ms (Consul accepts "ms"). */
export function formatWait(ms: number): string {
  return `${Math.max(1, Math.round(ms))}ms`;
}
