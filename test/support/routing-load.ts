/**
 * The continuous load of the planned step-down tests: one loop per kind of request, each
 * sending its next request as soon as the last one settled, every request recorded with
 * what the handle named when it was made.
 */
import { performance } from 'node:perf_hooks';
import { type Answer, type ClientPath, type Method, type Via, exchange, pathOf } from './routing-client.js';
import type { HandleLog } from './routing-observers.js';
import { delay } from './recorder.js';

export interface Kind {
  readonly via: Via;
  readonly method: Method;
  readonly route: string;
}

export const KINDS: readonly Kind[] = [
  { via: 'request', method: 'GET', route: '/echo' },
  { via: 'request', method: 'POST', route: '/echo' },
  { via: 'fetch', method: 'GET', route: '/echo' },
  { via: 'fetch', method: 'POST', route: '/echo' },
  // Answered 25 ms after they arrive: some are in flight when a leader steps down.
  { via: 'request', method: 'POST', route: '/slow?ms=25' },
  { via: 'fetch', method: 'GET', route: '/slow?ms=25' },
];

export interface Sent {
  readonly id: string;
  readonly kind: Kind;
  readonly path: string;
  readonly body: string | undefined;
  readonly dispatchedAt: number;
  /** The index in HandleLog.named of what the handle named when the request was made. */
  readonly namedAtDispatch: number;
  answeredAt?: number;
  answer?: Answer;
  error?: unknown;
}

export interface Load {
  readonly sent: readonly Sent[];
  /** How many requests made after `at` have settled. */
  answeredSince(at: number): number;
  /** Ends the loops; if they are still waiting 10 s later, `destroy` (the client's path) frees them. */
  stop(destroy: () => Promise<unknown>): Promise<void>;
}

/** The loops of KINDS through `client`; request ids are `r1`, `r2`... (POST bodies `body-<id>`). */
export function startLoad(client: ClientPath, log: HandleLog): Load {
  let running = true;
  const sent: Sent[] = [];
  let nextId = 0;
  const loops = KINDS.map(async (kind) => {
    while (running) {
      const id = `r${++nextId}`;
      const path = pathOf(kind.route, id);
      const body = kind.method === 'POST' ? `body-${id}` : undefined;
      const record: Sent = {
        id,
        kind,
        path,
        body,
        dispatchedAt: performance.now(),
        namedAtDispatch: log.latestIndex(),
      };
      sent.push(record);
      try {
        record.answer = await exchange(client, kind.via, kind.method, path, body);
      } catch (error) {
        record.error = error;
      }
      record.answeredAt = performance.now();
    }
  });
  return {
    sent,
    answeredSince(at) {
      let count = 0;
      for (let i = sent.length - 1; i >= 0; i -= 1) {
        const r = sent[i];
        if (!r || r.dispatchedAt <= at) break;
        if (r.answeredAt !== undefined) count += 1;
      }
      return count;
    },
    async stop(destroy) {
      running = false;
      const settled = Promise.all(loops).then(() => true);
      if (!(await Promise.race([settled, delay(10_000).then(() => false)]))) {
        await destroy();
        await Promise.all(loops);
      }
    },
  };
}
