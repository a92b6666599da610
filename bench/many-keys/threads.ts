/**
 * The main thread's handle on one case 3 watcher thread (floor or SDK): keeps
 * every timestamped view per key, waits for one that shows a given tag, checks
 * the clock offset between the threads, reads the thread's CPU time, stops it.
 * One thread follows one prefix after another (`follow`, `unfollow`).
 */
import { Worker } from 'node:worker_threads';
import { now } from '../clock.js';
import type { ClockCheck, Usage } from '../latency/watcher-thread.js';
import type { FromManyKeysWatcher, ManyKeysWatcherInit, FollowOrder, ToManyKeysWatcher } from './protocol.js';

export interface KeyObservation {
  readonly at: number;
  readonly tag: string | null;
}

export type ThreadTimes = Omit<Usage, 'requests'>;

const STOP_TIMEOUT_MS = 5_000;
const ANSWER_TIMEOUT_MS = 5_000;
/** Unsubscribing 10,000 `leader(key)` calls on a loaded machine can take seconds. */
const UNFOLLOW_TIMEOUT_MS = 60_000;

type Reply<K extends FromManyKeysWatcher['type']> = Extract<FromManyKeysWatcher, { type: K }>;

/** Worker threads do not inherit tsx's loader hooks: start from a script that imports worker.ts through tsx. */
function bootstrapSource(): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}));`;
}

export class ManyKeysThread {
  readonly role: ManyKeysWatcherInit['role'];
  readonly #worker: Worker;
  readonly #observations = new Map<string, KeyObservation[]>();
  readonly #listeners = new Set<() => void>();
  #loaded = false;
  #unfollowed = false;
  #firstLoadMs: number | undefined;
  #failure: Error | undefined;
  #stopping = false;
  #onReply: ((message: FromManyKeysWatcher) => void) | undefined;
  #onStopped: (() => void) | undefined;

  constructor(init: ManyKeysWatcherInit) {
    this.role = init.role;
    this.#worker = new Worker(bootstrapSource(), { eval: true, workerData: init });
    this.#worker.on('message', (message: FromManyKeysWatcher) => this.#receive(message));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (!this.#stopping) this.#fail(new Error(`exited with code ${code}`));
    });
  }

  #receive(message: FromManyKeysWatcher): void {
    switch (message.type) {
      case 'views':
        for (const [key, tag, at] of message.views) {
          const list = this.#observations.get(key);
          if (list) list.push({ at, tag });
          else this.#observations.set(key, [{ at, tag }]);
        }
        this.#notify();
        return;
      case 'loaded':
        this.#loaded = true;
        this.#notify();
        return;
      case 'unfollowed':
        this.#unfollowed = true;
        this.#notify();
        return;
      case 'ready':
        this.#firstLoadMs = message.firstLoadMs;
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
    this.#failure ??= new Error(`watcher ${this.role}: ${error.message}`, { cause: error });
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** Resolves with `value()` once it is defined; rejects after `timeoutMs` or if the watcher failed. */
  #until<T>(value: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(this.#failure ?? new Error(`watcher ${this.role}: ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): boolean => {
        const found = this.#failure ? undefined : value();
        if (!this.#failure && found === undefined) return false;
        clearTimeout(timer);
        this.#listeners.delete(check);
        if (this.#failure) reject(this.#failure);
        else resolve(found as T);
        return true;
      };
      if (!check()) this.#listeners.add(check);
    });
  }

  /** Resolves once the thread has loaded its modules (threads can load side by side). */
  loaded(timeoutMs: number): Promise<true> {
    return this.#until(() => (this.#loaded ? true : undefined), timeoutMs, 'not loaded');
  }

  /**
   * Starts following `order` (after the thread loaded); resolves once the
   * watcher reported every key, with its first load in ms.
   */
  async follow(order: FollowOrder, timeoutMs: number): Promise<number> {
    await this.#until(() => (this.#loaded ? true : undefined), timeoutMs, 'not loaded');
    this.#observations.clear();
    this.#firstLoadMs = undefined;
    this.#worker.postMessage({ type: 'follow', ...order } satisfies ToManyKeysWatcher);
    return this.ready(timeoutMs);
  }

  /** Stops following (the watcher closes its sockets); resolves once it did, with the time it took (ms). */
  async unfollow(timeoutMs = UNFOLLOW_TIMEOUT_MS): Promise<number> {
    const start = now();
    this.#unfollowed = false;
    this.#worker.postMessage({ type: 'unfollow' } satisfies ToManyKeysWatcher);
    await this.#until(() => (this.#unfollowed ? true : undefined), timeoutMs, 'not unfollowed');
    return now() - start;
  }

  /** Resolves once the watcher reported every key: its first load in ms (measured in its thread). */
  ready(timeoutMs: number): Promise<number> {
    return this.#until(() => this.#firstLoadMs, timeoutMs, 'not every key reported');
  }

  /** How many views of `key` there are so far: a mark to search from. */
  mark(key: string): number {
    return this.#observations.get(key)?.length ?? 0;
  }

  /** The first view of `key` from `from` on that shows `tag`; null after `timeoutMs` (missed). */
  waitFor(key: string, from: number, tag: string | null, timeoutMs: number): Promise<KeyObservation | null> {
    const find = (): KeyObservation | undefined =>
      this.#observations
        .get(key)
        ?.slice(from)
        .find((o) => o.tag === tag);
    return this.#until(find, timeoutMs, 'missed').catch((error: unknown) => {
      if (this.#failure) throw error;
      return null;
    });
  }

  #ask<K extends 'pong' | 'usage'>(message: ToManyKeysWatcher, type: K): Promise<Reply<K>> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const timer = setTimeout(() => {
        this.#onReply = undefined;
        reject(
          this.#failure ?? new Error(`watcher ${this.role}: no ${type} answer in ${ANSWER_TIMEOUT_MS} ms`),
        );
      }, ANSWER_TIMEOUT_MS);
      this.#onReply = (reply) => {
        if (reply.type !== type) return;
        clearTimeout(timer);
        this.#onReply = undefined;
        resolve(reply as Reply<K>);
      };
      this.#worker.postMessage(message);
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

  /** The thread's CPU time and run-queue wait so far (ms). */
  async times(): Promise<ThreadTimes> {
    const { cpuMs, runQueueMs } = await this.#ask({ type: 'usage' }, 'usage');
    return { cpuMs, runQueueMs };
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      this.#onStopped = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#worker.postMessage({ type: 'stop' } satisfies ToManyKeysWatcher);
    });
    await this.#worker.terminate();
  }
}
