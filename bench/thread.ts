/**
 * What every bench watcher thread shares, on both sides of its
 * `worker_threads` Worker: the start through tsx, failures, clock pings, CPU
 * usage queries and the stop handshake. A case adds its own messages (its
 * protocol.ts): its main-thread handle extends `WatcherThreadBase`, its
 * worker.ts calls `threadPort`.
 */
import { Worker, parentPort } from 'node:worker_threads';
import { now } from './clock.js';
import type { ThreadTimes } from './latency/thread-times.js';

/** Every message between the threads: a case's own ones, and the ones below. */
export interface Message {
  readonly type: string;
}

/** What every watcher thread posts besides its case's own messages; `U` is its usage answer. */
export type FromThread<U extends ThreadTimes = ThreadTimes> =
  | { readonly type: 'pong'; readonly sentAt: number; readonly at: number }
  /** Totals so far in the thread: CPU time, run-queue wait (latency/thread-times.ts), and what `U` adds. */
  | ({ readonly type: 'usage' } & U)
  | { readonly type: 'failure'; readonly message: string }
  | { readonly type: 'stopped' };

/** What every watcher thread answers besides its case's own messages. */
export type ToThread =
  { readonly type: 'ping'; readonly sentAt: number } | { readonly type: 'usage' } | { readonly type: 'stop' };

/** The worker's clock minus the main thread's, from the ping with the shortest round trip. */
export interface ClockCheck {
  readonly offsetMs: number;
  readonly rttMs: number;
}

const STOP_TIMEOUT_MS = 5_000;
const ANSWER_TIMEOUT_MS = 5_000;

const FROM_THREAD: ReadonlySet<string> = new Set<FromThread['type']>(['pong', 'usage', 'failure', 'stopped']);
const TO_THREAD: ReadonlySet<string> = new Set<ToThread['type']>(['ping', 'usage', 'stop']);

function isFromThread<U extends ThreadTimes>(message: Message): message is FromThread<U> {
  return FROM_THREAD.has(message.type);
}

function isToThread(message: Message): message is ToThread {
  return TO_THREAD.has(message.type);
}

/**
 * Worker threads do not inherit tsx's loader hooks: the thread starts from a
 * small script that imports `entry` through tsx's API.
 */
function bootstrapSource(entry: URL): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(import.meta.url)}));`;
}

/**
 * The main thread's handle on a watcher thread: `From` and `To` are its
 * case's own messages, `U` what its usage answer holds. A failure (reported,
 * an error, an exit before `stop`) is kept and rejects every wait from then on.
 */
export abstract class WatcherThreadBase<
  From extends Message,
  To extends Message = never,
  U extends ThreadTimes = ThreadTimes,
> {
  readonly #label: string;
  readonly #worker: Worker;
  readonly #listeners = new Set<() => void>();
  #failure: Error | undefined;
  #stopping = false;
  #onReply: ((message: FromThread<U>) => void) | undefined;
  #onStopped: (() => void) | undefined;

  /** Starts `entry` (a worker.ts) in a new thread; `label` (`watcher sdk`) begins its errors. */
  protected constructor(label: string, entry: URL, workerData: unknown) {
    this.#label = label;
    this.#worker = new Worker(bootstrapSource(entry), { eval: true, workerData });
    this.#worker.on('message', (message: From | FromThread<U>) => {
      if (isFromThread<U>(message)) this.#receive(message);
      else this.receive(message);
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (!this.#stopping) this.#fail(new Error(`exited with code ${code}`));
    });
  }

  /** Takes one of the case's own messages; calls `notify` when a wait may be over. */
  protected abstract receive(message: From): void;

  #receive(message: FromThread<U>): void {
    switch (message.type) {
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
    this.#failure ??= new Error(`${this.#label}: ${error.message}`, { cause: error });
    this.notify();
  }

  protected get failure(): Error | undefined {
    return this.#failure;
  }

  /** Has the pending waits look again. */
  protected notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  protected send(message: To | ToThread): void {
    this.#worker.postMessage(message);
  }

  /**
   * Resolves with `value()` once it is defined (looked at now and on each
   * `notify`), or null after `timeoutMs`; rejects if the thread failed.
   */
  protected within<T>(value: () => T | undefined, timeoutMs: number): Promise<T | null> {
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
        const found = value();
        if (found === undefined) return false;
        done();
        resolve(found);
        return true;
      };
      if (!check()) this.#listeners.add(check);
    });
  }

  /** `within`, but a timeout rejects: `<label>: <what> within <timeoutMs> ms`. */
  protected async until<T>(value: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const found = await this.within(value, timeoutMs);
    if (found === null) throw new Error(`${this.#label}: ${what} within ${timeoutMs} ms`);
    return found;
  }

  /** Sends `message`; resolves with the reply `pick` takes, rejects if the thread failed or is silent. */
  #ask<R>(message: ToThread, pick: (reply: FromThread<U>) => R | undefined): Promise<R> {
    const type = message.type === 'ping' ? 'pong' : message.type;
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const timer = setTimeout(() => {
        this.#onReply = undefined;
        reject(this.#failure ?? new Error(`${this.#label}: no ${type} answer in ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      this.#onReply = (reply) => {
        const picked = pick(reply);
        if (picked === undefined) return;
        clearTimeout(timer);
        this.#onReply = undefined;
        resolve(picked);
      };
      this.send(message);
    });
  }

  /** Pings the thread `rounds` times; keeps the answer with the shortest round trip. */
  async checkClock(rounds = 20): Promise<ClockCheck> {
    let best: ClockCheck | undefined;
    for (let round = 0; round < rounds; round += 1) {
      const pong = await this.#ask({ type: 'ping', sentAt: now() }, (r) =>
        r.type === 'pong' ? r : undefined,
      );
      const back = now();
      const rttMs = back - pong.sentAt;
      if (!best || rttMs < best.rttMs) best = { rttMs, offsetMs: pong.at - (pong.sentAt + back) / 2 };
    }
    if (!best) throw new Error('no clock rounds');
    return best;
  }

  /** The thread's usage answer (with its `type`). */
  protected askUsage(): Promise<U> {
    return this.#ask({ type: 'usage' }, (r) => (r.type === 'usage' ? r : undefined));
  }

  /** Asks the thread to stop (its watcher closes its sockets), then ends it, stopped or not within 5 s. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      this.#onStopped = () => {
        clearTimeout(timer);
        resolve();
      };
      this.send({ type: 'stop' });
    });
    await this.#worker.terminate();
  }
}

/** A worker.ts's side of the thread; `From` is what its case adds to `FromThread<U>`. */
export interface ThreadPort<From extends Message, U extends ThreadTimes> {
  post(message: From | FromThread<U>): void;
  /** Reports `error` to the main thread, which fails the thread. */
  fail(error: unknown): void;
  /**
   * Starts answering the main thread: pings, usage queries with `usage()`,
   * `stop` once `stop()` is done; the case's own messages go to `receive`.
   * Until then messages wait in the port.
   */
  serve<To extends Message = never>(handlers: ThreadHandlers<To, U>): void;
}

export interface ThreadHandlers<To extends Message, U extends ThreadTimes> {
  readonly usage: () => U;
  /** Stops the watcher (closes its sockets); the thread then says `stopped` and closes its port. */
  readonly stop: () => void | Promise<void>;
  readonly receive?: (message: To) => void;
}

/** `file` names the worker.ts in the error thrown when it is not run as a worker thread. */
export function threadPort<From extends Message, U extends ThreadTimes = ThreadTimes>(
  file: string,
): ThreadPort<From, U> {
  const port = parentPort;
  if (!port) throw new Error(`${file} runs as a worker thread`);
  const post = (message: From | FromThread<U>): void => port.postMessage(message);
  const fail = (error: unknown): void =>
    post({ type: 'failure', message: error instanceof Error ? error.message : String(error) });
  return {
    post,
    fail,
    serve<To extends Message>({ usage, stop, receive }: ThreadHandlers<To, U>): void {
      const stopThread = async (): Promise<void> => {
        await stop();
        post({ type: 'stopped' });
        port.close();
      };
      port.on('message', (message: To | ToThread) => {
        if (!isToThread(message)) return receive?.(message);
        switch (message.type) {
          case 'ping':
            post({ type: 'pong', sentAt: message.sentAt, at: now() });
            return;
          case 'usage':
            post({ type: 'usage', ...usage() });
            return;
          case 'stop':
            stopThread().catch(fail);
            return;
        }
      });
    },
  };
}
