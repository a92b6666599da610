/**
 * The main thread's handle on one watcher running in its own worker thread:
 * collects its timestamped observations, finds the one that shows a given
 * change, checks the clock offset between the threads, reads its CPU usage,
 * and stops it.
 */
import { Worker } from 'node:worker_threads';
import { now } from '../clock.js';
import type { FromWatcher, LeaderView, ToWatcher, WatcherInit, WatcherKind } from './protocol.js';

export interface Observation {
  readonly at: number;
  readonly view: LeaderView;
}

/** The worker's clock minus the main thread's, from the ping with the shortest round trip. */
export interface ClockCheck {
  readonly offsetMs: number;
  readonly rttMs: number;
}

/** Totals since the thread started: its CPU time and run-queue wait (ms), and HTTP requests sent. */
export interface Usage {
  readonly cpuMs: number;
  readonly runQueueMs: number;
  readonly requests: number;
}

const STOP_TIMEOUT_MS = 5_000;
const ANSWER_TIMEOUT_MS = 5_000;

type Reply<K extends FromWatcher['type']> = Extract<FromWatcher, { type: K }>;

/**
 * Worker threads do not inherit tsx's loader hooks: the thread starts from a
 * small script that imports worker.ts through tsx's API.
 */
function bootstrapSource(): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}));`;
}

export class WatcherThread {
  readonly #worker: Worker;
  readonly #observations: Observation[] = [];
  readonly #listeners = new Set<() => void>();
  #cursor = 0;
  #unexpected = 0;
  #failure: Error | undefined;
  #stopping = false;
  #onReply: ((message: FromWatcher) => void) | undefined;
  #onStopped: (() => void) | undefined;

  constructor(
    readonly kind: WatcherKind,
    init: Omit<WatcherInit, 'kind'>,
  ) {
    const workerData: WatcherInit = { kind, host: init.host, port: init.port, key: init.key };
    this.#worker = new Worker(bootstrapSource(), { eval: true, workerData });
    this.#worker.on('message', (message: FromWatcher) => this.#receive(message));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (!this.#stopping) this.#fail(new Error(`exited with code ${code}`));
    });
  }

  /** Observations that matched no change (a watcher that emits twice, or late). */
  get unexpected(): number {
    return this.#unexpected;
  }

  #receive(message: FromWatcher): void {
    switch (message.type) {
      case 'observation':
        this.#observations.push({ at: message.at, view: message.view });
        this.#notify();
        return;
      case 'pong':
      case 'usage':
        this.#onReply?.(message);
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

  #send(message: ToWatcher): void {
    this.#worker.postMessage(message);
  }

  /** Sends `message`; resolves with the reply of type `type`, rejects if the watcher failed or is silent. */
  #ask<K extends 'pong' | 'usage'>(message: ToWatcher, type: K): Promise<Reply<K>> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const timer = setTimeout(() => {
        this.#onReply = undefined;
        reject(
          this.#failure ?? new Error(`watcher ${this.kind}: no ${type} answer in ${ANSWER_TIMEOUT_MS} ms`),
        );
      }, ANSWER_TIMEOUT_MS);
      this.#onReply = (reply) => {
        if (reply.type !== type) return;
        clearTimeout(timer);
        this.#onReply = undefined;
        resolve(reply as Reply<K>);
      };
      this.#send(message);
    });
  }

  /**
   * The first observation not looked at yet whose view `matches`; the ones
   * skipped count as unexpected. Resolves null after `timeoutMs`, rejects if
   * the watcher failed.
   */
  next(matches: (view: LeaderView) => boolean, timeoutMs: number): Promise<Observation | null> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        resolve(null);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      const check = (): boolean => {
        if (this.#failure) {
          done();
          reject(this.#failure);
          return true;
        }
        while (this.#cursor < this.#observations.length) {
          const observation = this.#observations[this.#cursor] as Observation;
          this.#cursor += 1;
          if (matches(observation.view)) {
            done();
            resolve(observation);
            return true;
          }
          this.#unexpected += 1;
        }
        return false;
      };
      if (!check()) this.#listeners.add(check);
    });
  }

  /** Pings the thread `rounds` times; keeps the answer with the shortest round trip. */
  async checkClock(rounds = 20): Promise<ClockCheck> {
    let best: ClockCheck | undefined;
    for (let round = 0; round < rounds; round += 1) {
      const pong = await this.#ask({ type: 'ping', sentAt: now() }, 'pong');
      const back = now();
      const rttMs = back - pong.sentAt;
      if (!best || rttMs < best.rttMs) best = { rttMs, offsetMs: pong.at - (pong.sentAt + back) / 2 };
    }
    if (!best) throw new Error('no clock rounds');
    return best;
  }

  /** The thread's totals so far. */
  async usage(): Promise<Usage> {
    const { cpuMs, runQueueMs, requests } = await this.#ask({ type: 'usage' }, 'usage');
    return { cpuMs, runQueueMs, requests };
  }

  /** Asks the watcher to stop (it closes its sockets), then ends the thread. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      this.#onStopped = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#send({ type: 'stop' });
    });
    await this.#worker.terminate();
  }
}
