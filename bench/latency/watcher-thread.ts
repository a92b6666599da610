/**
 * The main thread's handle on one watcher running in its own worker thread:
 * collects its timestamped observations, finds the one that shows a given
 * change, checks the clock offset between the threads (bench/thread.ts),
 * reads its CPU usage, and stops it.
 */
import { WatcherThreadBase } from '../thread.js';
import type { FromWatcher, LeaderView, Usage, WatcherInit, WatcherKind } from './protocol.js';

export type { ClockCheck } from '../thread.js';
export type { Usage } from './protocol.js';

export interface Observation {
  readonly at: number;
  readonly view: LeaderView;
}

export class WatcherThread extends WatcherThreadBase<FromWatcher, never, Usage> {
  readonly #observations: Observation[] = [];
  #cursor = 0;
  #unexpected = 0;

  constructor(
    readonly kind: WatcherKind,
    init: Omit<WatcherInit, 'kind'>,
  ) {
    const workerData: WatcherInit = { kind, host: init.host, port: init.port, key: init.key };
    super(`watcher ${kind}`, new URL('./worker.ts', import.meta.url), workerData);
  }

  /** Observations that matched no change (a watcher that emits twice, or late). */
  get unexpected(): number {
    return this.#unexpected;
  }

  protected receive(message: FromWatcher): void {
    this.#observations.push({ at: message.at, view: message.view });
    this.notify();
  }

  /**
   * The first observation not looked at yet whose view `matches`; the ones
   * skipped count as unexpected. Resolves null after `timeoutMs`, rejects if
   * the watcher failed.
   */
  next(matches: (view: LeaderView) => boolean, timeoutMs: number): Promise<Observation | null> {
    return this.within(() => {
      while (this.#cursor < this.#observations.length) {
        const observation = this.#observations[this.#cursor] as Observation;
        this.#cursor += 1;
        if (matches(observation.view)) return observation;
        this.#unexpected += 1;
      }
      return undefined;
    }, timeoutMs);
  }

  /** The thread's totals so far. */
  async usage(): Promise<Usage> {
    const { cpuMs, runQueueMs, requests, metricExports } = await this.askUsage();
    return { cpuMs, runQueueMs, requests, metricExports };
  }
}
