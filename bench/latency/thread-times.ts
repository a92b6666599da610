/**
 * CPU time of the calling thread, from Linux's /proc/thread-self/schedstat:
 * nanoseconds spent running, and nanoseconds spent runnable but waiting for a
 * CPU (the run queue). NaN where the file does not exist (not Linux, or
 * schedstats off). Node 20 has no per-thread CPU clock of its own.
 */
import { readFileSync } from 'node:fs';

export interface ThreadTimes {
  readonly cpuMs: number;
  readonly runQueueMs: number;
}

export function threadTimes(): ThreadTimes {
  try {
    const [running, waiting] = readFileSync('/proc/thread-self/schedstat', 'utf8').trim().split(/\s+/);
    return { cpuMs: Number(running) / 1e6, runQueueMs: Number(waiting) / 1e6 };
  } catch {
    return { cpuMs: Number.NaN, runQueueMs: Number.NaN };
  }
}
