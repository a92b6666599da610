/**
 * The write side of cases 2, 4 and 5 (sessions, locks), on bare `http` with a
 * keep-alive agent like case 1's writer, so a change's timestamp is taken
 * right before its request goes to the socket.
 */
import http from 'node:http';
import { now } from './clock.js';
import { type HttpAnswer, consulIndex, httpRequest, readKvHolder, type KvHolder } from './latency/http.js';

export interface SessionSpec {
  readonly name: string;
  /** Go duration; Consul's default is 15s. */
  readonly lockDelay?: string;
  /** Go duration, at least 10s on a dev agent; none: no TTL. */
  readonly ttl?: string;
}

/** A request that was sent: when (`now()` right before it was written) and Consul's answer. */
export interface Sent<T> {
  readonly sentAt: number;
  readonly value: T;
}

export class ConsulHttp {
  readonly #agent = new http.Agent({ keepAlive: true });

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  async #send(method: 'GET' | 'PUT', path: string, body?: string): Promise<Sent<HttpAnswer>> {
    let sentAt = 0;
    const answer = await httpRequest({
      agent: this.#agent,
      host: this.host,
      port: this.port,
      method,
      path,
      ...(body === undefined ? {} : { body }),
      beforeSend: () => {
        sentAt = now();
      },
    });
    if (answer.status !== 200 && !(method === 'GET' && answer.status === 404)) {
      throw new Error(`${method} ${path}: HTTP ${answer.status}: ${answer.body.toString()}`);
    }
    return { sentAt, value: answer };
  }

  async createSession(spec: SessionSpec): Promise<string> {
    const body: Record<string, string> = { Name: spec.name, Behavior: 'release' };
    if (spec.lockDelay !== undefined) body.LockDelay = spec.lockDelay;
    if (spec.ttl !== undefined) body.TTL = spec.ttl;
    const { value } = await this.#send('PUT', '/v1/session/create', JSON.stringify(body));
    const created: unknown = JSON.parse(value.body.toString());
    if (
      typeof created !== 'object' ||
      created === null ||
      !('ID' in created) ||
      typeof created.ID !== 'string'
    ) {
      throw new Error(`session/create: unexpected answer ${value.body.toString()}`);
    }
    return created.ID;
  }

  /** `PUT /v1/kv/<key>?acquire=<session>`: whether the lock was taken. */
  async acquire(key: string, session: string, value: string): Promise<Sent<boolean>> {
    const sent = await this.#send('PUT', `/v1/kv/${key}?acquire=${session}`, value);
    return { sentAt: sent.sentAt, value: sent.value.body.toString().trim() === 'true' };
  }

  async release(key: string, session: string, value: string): Promise<Sent<boolean>> {
    const sent = await this.#send('PUT', `/v1/kv/${key}?release=${session}`, value);
    return { sentAt: sent.sentAt, value: sent.value.body.toString().trim() === 'true' };
  }

  async destroySession(session: string): Promise<Sent<void>> {
    const { sentAt } = await this.#send('PUT', `/v1/session/destroy/${session}`);
    return { sentAt, value: undefined };
  }

  async renewSession(session: string): Promise<Sent<void>> {
    const { sentAt } = await this.#send('PUT', `/v1/session/renew/${session}`);
    return { sentAt, value: undefined };
  }

  /** A KV read of `key`, blocking on `index` when above 0; `onRequest` can destroy it. */
  async readKey(
    key: string,
    index: bigint,
    onRequest?: (request: http.ClientRequest) => void,
  ): Promise<{ index: bigint; holder: KvHolder | null }> {
    const query = index > 0n ? `?index=${index}&wait=60s` : '';
    const answer = await httpRequest({
      agent: this.#agent,
      host: this.host,
      port: this.port,
      method: 'GET',
      path: `/v1/kv/${key}${query}`,
      ...(onRequest ? { onRequest } : {}),
    });
    return { index: consulIndex(answer.headers), holder: readKvHolder(answer) };
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Runs `task` over `items`, at most `concurrency` at a time. */
export async function eachLimited<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      await task(items[i] as T, i);
    }
  });
  await Promise.all(lanes);
}
