/**
 * Case 3's floor: the least a watcher of a prefix can do. A loop of
 * `GET /v1/kv/<prefix>?recurse&index=N&wait=60s` on a keep-alive `http.Agent`
 * (the first read non-blocking, then blocking on the last `X-Consul-Index`,
 * back to 0 if it goes backwards). Each answer is parsed with `JSON.parse`;
 * the first reports every entry, the next ones the entries whose ModifyIndex
 * is the answer's `X-Consul-Index` (what changed): key, and the `tag` of the
 * base64 JSON value, or null when no session holds the key. An answer whose
 * index did not move (the wait ran out) reports nothing.
 */
import http from 'node:http';
import type { ClientRequest } from 'node:http';
import { consulIndex, httpRequest } from '../latency/http.js';

interface KvEntry {
  readonly Key: string;
  readonly ModifyIndex: number;
  readonly Session?: string;
  readonly Value: string | null;
}

export interface FloorContext {
  readonly host: string;
  readonly port: number;
  readonly prefix: string;
  /** Reports a key's leader: the tag of its value, or null with no leader. */
  readonly report: (key: string, tag: string | null) => void;
  /** Called after the reports of one answer. */
  readonly flush: () => void;
  readonly fail: (error: unknown) => void;
}

const tagOf = (entry: KvEntry): string | null => {
  if (!entry.Session || !entry.Value) return null;
  const value: unknown = JSON.parse(Buffer.from(entry.Value, 'base64').toString());
  return typeof value === 'object' && value !== null && 'tag' in value && typeof value.tag === 'string'
    ? value.tag
    : null;
};

export function startPrefixFloor({ host, port, prefix, report, flush, fail }: FloorContext): {
  stop(): void;
} {
  const agent = new http.Agent({ keepAlive: true });
  let stopped = false;
  let inFlight: ClientRequest | undefined;

  const loop = async (): Promise<void> => {
    let index = 0n;
    while (!stopped) {
      const all = index === 0n;
      const query = all ? '?recurse' : `?recurse&index=${index}&wait=60s`;
      const answer = await httpRequest({
        agent,
        host,
        port,
        method: 'GET',
        path: `/v1/kv/${prefix}${query}`,
        onRequest: (request) => {
          inFlight = request;
        },
      });
      if (answer.status !== 200 && answer.status !== 404) {
        throw new Error(`GET kv recurse: HTTP ${answer.status}: ${answer.body.toString()}`);
      }
      const received = consulIndex(answer.headers);
      const moved = received !== index;
      index = received < index ? 0n : received;
      if (!all && !moved) continue;
      const entries = answer.status === 404 ? [] : (JSON.parse(answer.body.toString()) as KvEntry[]);
      const changed = Number(received);
      for (const entry of entries) {
        if (all || entry.ModifyIndex === changed) report(entry.Key, tagOf(entry));
      }
      flush();
    }
  };
  loop().catch((error: unknown) => {
    if (!stopped) fail(error);
  });

  return {
    stop() {
      stopped = true;
      inFlight?.destroy();
      agent.destroy();
    },
  };
}
