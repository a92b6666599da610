/**
 * (b) The `consul` package's own watch: `consul.watch({ method: consul.kv.get })`
 * on the key, and a `consul.session.info` read on each change that names a session.
 */
import Consul from 'consul';
import { type LeaderView, seqOfText } from '../protocol.js';
import { holderOf, isSession } from './consul-client.js';
import type { Watcher, WatcherContext } from './watcher.js';

export function startConsulWatch({ target, emit, fail }: WatcherContext): Watcher {
  const consul = new Consul({ host: target.host, port: target.port });
  // The same `wait` as the floor and the SDK (the package's default is 30s).
  const watch = consul.watch({ method: consul.kv.get, options: { key: target.key, wait: '60s' } });
  let generation = 0;
  let stopped = false;

  const onChange = async (data: unknown): Promise<void> => {
    const mine = (generation += 1);
    const holder = holderOf(data);
    let view: LeaderView = null;
    if (holder?.session) {
      const info: unknown = await consul.session.info(holder.session);
      if (isSession(info)) view = { session: holder.session, seq: seqOfText(holder.valueText) };
    }
    // An answer that arrives after a newer change is dropped, as a careful user would.
    if (mine === generation && !stopped) emit(view);
  };

  watch.on('change', (data: unknown) => {
    onChange(data).catch(fail);
  });
  watch.on('error', (error: unknown) => {
    if (!stopped) fail(error);
  });

  return {
    async stop() {
      stopped = true;
      watch.end();
      consul.destroy();
    },
  };
}
