/** What the soak tests share: their knobs, the settled heap, active resources, waiting for a condition. */
import { delay } from '../support/recorder.js';

/** A non-negative integer from the environment (a soak's knob), or `fallback`. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
  return value;
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function gc(): void {
  if (!globalThis.gc) throw new Error('run with --expose-gc (vitest.soak.config.ts sets execArgv)');
  globalThis.gc();
}

/** `heapUsed` after a few collections, once what can be freed is. */
export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i += 1) {
    gc();
    await delay(50);
  }
  gc();
  return process.memoryUsage().heapUsed;
}

/** How many of `process.getActiveResourcesInfo()`'s entries are `name`. */
function countOf(list: readonly string[], name: string): number {
  return list.filter((r) => r === name).length;
}

/** Waits until `check` holds; false when the deadline passed first (the caller asserts). */
export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await delay(25);
  }
  return true;
}

export interface LeftBehind {
  /** Every TCP socket closed within 10 s. */
  readonly noSockets: boolean;
  /** No more timers than before the discovery, within 2 s of `close()`. */
  readonly timersGone: boolean;
  readonly resources: string[];
  readonly heapAfter: number;
}

/**
 * What is left once the discovery closed at `closedAt` (`performance.now()`)
 * and the test closed its own sockets. Timers: vitest's own throttled
 * task-update timer comes and goes within 100 ms; an SDK timer left behind,
 * such as a request's timeout of 10 s or 69 s or a retry's sleep of up to 5 s,
 * would still be there after 2 s.
 */
export async function leftBehind(baseline: readonly string[], closedAt: number): Promise<LeftBehind> {
  const noSockets = await until(
    () => countOf(process.getActiveResourcesInfo(), 'TCPSocketWrap') === 0,
    10_000,
  );
  const timersGone = await until(
    () => countOf(process.getActiveResourcesInfo(), 'Timeout') <= countOf(baseline, 'Timeout'),
    Math.max(0, 2_000 - (performance.now() - closedAt)),
  );
  return {
    noSockets,
    timersGone,
    resources: process.getActiveResourcesInfo(),
    heapAfter: await settledHeap(),
  };
}
