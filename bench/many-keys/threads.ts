/**
 * The main thread's handle on one case 3 watcher thread (floor or SDK): keeps
 * every timestamped view per key, waits for one that shows a given tag; checks
 * the clock offset between the threads, reads the thread's CPU time (and the
 * HTTP/2 streams its SDK opened: h2-streams.ts) and stops it as every watcher
 * thread does (bench/thread.ts). One thread follows one prefix after another
 * (`follow`, `unfollow`).
 */
import { now } from '../clock.js';
import { WatcherThreadBase } from '../thread.js';
import type {
  FromManyKeysWatcher,
  ManyKeysUsage,
  ManyKeysWatcherInit,
  FollowOrder,
  ToManyKeysWatcher,
} from './protocol.js';

export type { ThreadTimes } from '../latency/thread-times.js';

export interface KeyObservation {
  readonly at: number;
  readonly tag: string | null;
}

/** Unsubscribing 10,000 `leader(key)` calls on a loaded machine can take seconds. */
const UNFOLLOW_TIMEOUT_MS = 60_000;

export class ManyKeysThread extends WatcherThreadBase<FromManyKeysWatcher, ToManyKeysWatcher, ManyKeysUsage> {
  readonly role: ManyKeysWatcherInit['role'];
  readonly #observations = new Map<string, KeyObservation[]>();
  #loaded = false;
  #unfollowed = false;
  #firstLoadMs: number | undefined;

  constructor(init: ManyKeysWatcherInit) {
    super(`watcher ${init.role}`, new URL('./worker.ts', import.meta.url), init);
    this.role = init.role;
  }

  protected receive(message: FromManyKeysWatcher): void {
    switch (message.type) {
      case 'views':
        for (const [key, tag, at] of message.views) {
          const list = this.#observations.get(key);
          if (list) list.push({ at, tag });
          else this.#observations.set(key, [{ at, tag }]);
        }
        break;
      case 'loaded':
        this.#loaded = true;
        break;
      case 'unfollowed':
        this.#unfollowed = true;
        break;
      case 'ready':
        this.#firstLoadMs = message.firstLoadMs;
        break;
    }
    this.notify();
  }

  /** Resolves once the thread has loaded its modules (threads can load side by side). */
  loaded(timeoutMs: number): Promise<true> {
    return this.until(() => (this.#loaded ? true : undefined), timeoutMs, 'not loaded');
  }

  /**
   * Starts following `order` (after the thread loaded); resolves once the
   * watcher reported every key, with its first load in ms.
   */
  async follow(order: FollowOrder, timeoutMs: number): Promise<number> {
    await this.until(() => (this.#loaded ? true : undefined), timeoutMs, 'not loaded');
    this.#observations.clear();
    this.#firstLoadMs = undefined;
    this.send({ type: 'follow', ...order });
    return this.ready(timeoutMs);
  }

  /** Stops following (the watcher closes its sockets); resolves once it did, with the time it took (ms). */
  async unfollow(timeoutMs = UNFOLLOW_TIMEOUT_MS): Promise<number> {
    const start = now();
    this.#unfollowed = false;
    this.send({ type: 'unfollow' });
    await this.until(() => (this.#unfollowed ? true : undefined), timeoutMs, 'not unfollowed');
    return now() - start;
  }

  /** Resolves once the watcher reported every key: its first load in ms (measured in its thread). */
  ready(timeoutMs: number): Promise<number> {
    return this.until(() => this.#firstLoadMs, timeoutMs, 'not every key reported');
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
    return this.within(find, timeoutMs);
  }

  /** The thread's CPU time and run-queue wait so far (ms), and the HTTP/2 streams its SDK opened. */
  async usage(): Promise<ManyKeysUsage> {
    const { cpuMs, runQueueMs, streams } = await this.askUsage();
    return { cpuMs, runQueueMs, streams };
  }
}
