/**
 * (c) What a naive user writes: every second, `consul.kv.get` the key and,
 * when a session holds it, `consul.session.info`; report when the leader differs.
 */
import Consul from 'consul';
import { type LeaderView, sameView, seqOfText } from '../protocol.js';
import { holderOf, isSession } from './consul-client.js';
import type { Watcher, WatcherContext } from './watcher.js';

export const POLL_INTERVAL_MS = 1_000;

export function startPoll({ target, emit, fail }: WatcherContext): Watcher {
  const consul = new Consul({ host: target.host, port: target.port });
  let last: LeaderView | undefined;
  let busy = false;

  const poll = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const holder = holderOf(await consul.kv.get(target.key));
      let view: LeaderView = null;
      if (holder?.session) {
        const info: unknown = await consul.session.info(holder.session);
        if (isSession(info)) view = { session: holder.session, seq: seqOfText(holder.valueText) };
      }
      if (!sameView(view, last)) {
        last = view;
        emit(view);
      }
    } finally {
      busy = false;
    }
  };

  poll().catch(fail);
  const timer = setInterval(() => poll().catch(fail), POLL_INTERVAL_MS);

  return {
    async stop() {
      clearInterval(timer);
      consul.destroy();
    },
  };
}
