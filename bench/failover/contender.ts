/**
 * The next leader: a contender blocked on the key the way Consul's
 * leader-election guide describes. It follows the key with a blocking query
 * (bare `http`); as soon as the key is free it tries to acquire it, and while
 * Consul refuses (the old session's lock-delay), it tries again every
 * `retryMs`.
 */
import type { ClientRequest } from 'node:http';
import { sleep } from '../clock.js';
import type { ConsulHttp } from '../consul-http.js';

export interface Takeover {
  /** `now()` right before its first acquire attempt, and before the one that succeeded. */
  readonly firstAttemptAt: number;
  readonly acquiredAt: number;
  readonly attempts: number;
}

export class BlockedContender {
  /** Resolves once its blocking read of the key is on its way. */
  readonly blocked: Promise<void>;
  /** Resolves once it holds the key. */
  readonly takeover: Promise<Takeover>;
  #request: ClientRequest | undefined;
  #stopped = false;

  constructor(http: ConsulHttp, key: string, session: string, value: string, retryMs: number) {
    let signalBlocked = (): void => {};
    this.blocked = new Promise((resolve) => {
      signalBlocked = resolve;
    });
    this.takeover = (async (): Promise<Takeover> => {
      let index = 0n;
      for (;;) {
        const blocking = index > 0n;
        const read = await http.readKey(key, index, (request) => {
          this.#request = request;
          if (blocking) signalBlocked();
        });
        index = read.index < index ? 0n : read.index;
        if (read.holder?.session) continue;
        let attempts = 0;
        let firstAttemptAt = 0;
        for (;;) {
          if (this.#stopped) throw new Error('contender stopped');
          const sent = await http.acquire(key, session, value);
          attempts += 1;
          if (attempts === 1) firstAttemptAt = sent.sentAt;
          if (sent.value) return { firstAttemptAt, acquiredAt: sent.sentAt, attempts };
          await sleep(retryMs);
        }
      }
    })();
    // A stopped contender's read fails: that is expected, not an unhandled rejection.
    this.takeover.catch(() => {});
  }

  stop(): void {
    this.#stopped = true;
    this.#request?.destroy();
  }
}
