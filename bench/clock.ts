/**
 * One clock for every thread: milliseconds since the epoch with sub-millisecond
 * resolution. `performance.timeOrigin + performance.now()` is monotonic within
 * a thread and comparable across worker threads (each run checks the offset
 * between threads with a ping, see latency/watcher-thread.ts).
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
