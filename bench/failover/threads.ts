/**
 * The main thread's handle on one failover watcher thread (floor or SDK) that
 * follows many keys: keeps every timestamped observation per key, waits for
 * one that matches; checks the clock offset between the threads and stops as
 * every watcher thread does (bench/thread.ts).
 */
import type { LeaderView } from '../latency/protocol.js';
import { WatcherThreadBase } from '../thread.js';
import type { FailoverWatcherInit, FailoverWatcherKind, FromFailoverWatcher } from './protocol.js';

export interface KeyObservation {
  readonly at: number;
  readonly view: LeaderView;
}

export class KeyWatcherThread extends WatcherThreadBase<FromFailoverWatcher> {
  readonly #observations = new Map<string, KeyObservation[]>();

  constructor(
    readonly kind: FailoverWatcherKind,
    target: { host: string; port: number },
    keys: readonly string[],
    sdk?: string,
  ) {
    const workerData: FailoverWatcherInit = {
      kind,
      host: target.host,
      port: target.port,
      keys,
      ...(sdk ? { sdk } : {}),
    };
    super(`watcher ${kind}`, new URL('./worker.ts', import.meta.url), workerData);
  }

  protected receive(message: FromFailoverWatcher): void {
    const list = this.#observations.get(message.key) ?? [];
    list.push({ at: message.at, view: message.view });
    this.#observations.set(message.key, list);
    this.notify();
  }

  /** How many observations of `key` there are so far: a mark to search from. */
  mark(key: string): number {
    return this.#observations.get(key)?.length ?? 0;
  }

  /** The first observation of `key` from `from` on whose view `matches`, if any yet. */
  find(key: string, from: number, matches: (view: LeaderView) => boolean): KeyObservation | undefined {
    return (this.#observations.get(key) ?? []).slice(from).find((o) => matches(o.view));
  }

  /** Waits for `find` to succeed; null after `timeoutMs`; rejects if the watcher failed. */
  waitFor(
    key: string,
    from: number,
    matches: (view: LeaderView) => boolean,
    timeoutMs: number,
  ): Promise<KeyObservation | null> {
    return this.within(() => this.find(key, from, matches), timeoutMs);
  }
}
