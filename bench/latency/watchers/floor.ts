/**
 * (a) The floor: the least a watcher can do. A loop of blocking
 * `GET /v1/kv/<key>?index=N&wait=60s` on a keep-alive `http.Agent`, and a
 * `GET /v1/session/info/<id>` when the key's session changes to a new one.
 */
import http from 'node:http';
import type { ClientRequest } from 'node:http';
import { type LeaderView, sameView, seqOfText } from '../protocol.js';
import { type HttpAnswer, consulIndex, httpRequest, readKvHolder } from '../http.js';
import type { Watcher, WatcherContext } from './watcher.js';

export function startFloor({ target, emit, fail }: WatcherContext): Watcher {
  const agent = new http.Agent({ keepAlive: true });
  let stopped = false;
  let inFlight: ClientRequest | undefined;
  const get = (path: string): Promise<HttpAnswer> =>
    httpRequest({
      agent,
      host: target.host,
      port: target.port,
      method: 'GET',
      path,
      onRequest: (request) => {
        inFlight = request;
      },
    });

  const sessionAlive = async (id: string): Promise<boolean> => {
    const answer = await get(`/v1/session/info/${id}`);
    if (answer.status !== 200) throw new Error(`GET session/info: HTTP ${answer.status}`);
    const sessions: unknown = JSON.parse(answer.body.toString());
    return Array.isArray(sessions) && sessions.length > 0;
  };

  const loop = async (): Promise<void> => {
    let index = 0n;
    let last: LeaderView | undefined;
    let known: { readonly id: string; readonly alive: boolean } | undefined;
    while (!stopped) {
      const query = index > 0n ? `?index=${index}&wait=60s` : '';
      const answer = await get(`/v1/kv/${target.key}${query}`);
      const received = consulIndex(answer.headers);
      index = received < index ? 0n : received;
      const holder = readKvHolder(answer);
      let view: LeaderView = null;
      if (holder?.session) {
        const { session } = holder;
        if (known?.id !== session) known = { id: session, alive: await sessionAlive(session) };
        if (known.alive) view = { session, seq: seqOfText(holder.valueText) };
      }
      if (!sameView(view, last)) {
        last = view;
        emit(view);
      }
    }
  };
  loop().catch((error: unknown) => {
    if (!stopped) fail(error);
  });

  return {
    async stop() {
      stopped = true;
      inFlight?.destroy();
      agent.destroy();
    },
  };
}
