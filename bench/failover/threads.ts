/**
 * The main thread's handle on one failover watcher thread (floor or SDK) that
 * follows many keys: keeps every timestamped observation per key, waits for
 * one that matches, checks the clock offset between the threads, and stops.
 */
import { Worker } from 'node:worker_threads';
import { now } from '../clock.js';
import type { LeaderView } from '../latency/protocol.js';
import type { ClockCheck } from '../latency/watcher-thread.js';
import type { FailoverWatcherInit, FailoverWatcherKind, FromFailoverWatcher } from './protocol.js';

export interface KeyObservation {
  readonly at: number;
  readonly view: LeaderView;
}

const STOP_TIMEOUT_MS = 5_000;

/** Worker threads do not inherit tsx's loader hooks: start from a script that imports worker.ts through tsx. */
function bootstrapSource(): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}));`;
}

export class KeyWatcherThread {
  readonly #worker: Worker;
  readonly #observations = new Map<string, KeyObservation[]>();
  readonly #listeners = new Set<() => void>();
  #failure: Error | undefined;
  #stopping = false;
  #onPong: ((message: Extract<FromFailoverWatcher, { type: 'pong' }>) => void) | undefined;
  #onStopped: (() => void) | undefined;

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
    this.#worker = new Worker(bootstrapSource(), { eval: true, workerData });
    this.#worker.on('message', (message: FromFailoverWatcher) => this.#receive(message));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (!this.#stopping) this.#fail(new Error(`exited with code ${code}`));
    });
  }

  #receive(message: FromFailoverWatcher): void {
    switch (message.type) {
      case 'observation': {
        const list = this.#observations.get(message.key) ?? [];
        list.push({ at: message.at, view: message.view });
        this.#observations.set(message.key, list);
        this.#notify();
        return;
      }
      case 'pong':
        this.#onPong?.(message);
        return;
      case 'failure':
        this.#fail(new Error(message.message));
        return;
      case 'stopped':
        this.#onStopped?.();
        return;
    }
  }

  #fail(error: Error): void {
    this.#failure ??= new Error(`watcher ${this.kind}: ${error.message}`, { cause: error });
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
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
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        resolve(null);
      }, timeoutMs);
      const check = (): boolean => {
        if (this.#failure) {
          clearTimeout(timer);
          this.#listeners.delete(check);
          reject(this.#failure);
          return true;
        }
        const found = this.find(key, from, matches);
        if (!found) return false;
        clearTimeout(timer);
        this.#listeners.delete(check);
        resolve(found);
        return true;
      };
      if (!check()) this.#listeners.add(check);
    });
  }

  /** Pings the thread `rounds` times; keeps the answer with the shortest round trip. */
  async checkClock(rounds = 20): Promise<ClockCheck> {
    let best: ClockCheck | undefined;
    for (let round = 0; round < rounds; round += 1) {
      const pong = await new Promise<Extract<FromFailoverWatcher, { type: 'pong' }>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`watcher ${this.kind}: no pong`)), STOP_TIMEOUT_MS);
        this.#onPong = (message) => {
          clearTimeout(timer);
          resolve(message);
        };
        this.#worker.postMessage({ type: 'ping', sentAt: now() });
      });
      const back = now();
      const rttMs = back - pong.sentAt;
      if (!best || rttMs < best.rttMs) best = { rttMs, offsetMs: pong.at - (pong.sentAt + back) / 2 };
    }
    if (!best) throw new Error('no clock rounds');
    return best;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      this.#onStopped = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#worker.postMessage({ type: 'stop' });
    });
    await this.#worker.terminate();
  }
}
