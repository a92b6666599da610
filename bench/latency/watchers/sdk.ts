/** (d) The SDK: `createLeaderDiscovery(...).leader(key)` with the default schema (any JSON). */
import { createLeaderDiscovery } from '@consul-leader/discovery';
import { seqOf } from '../protocol.js';
import type { Watcher, WatcherContext } from './watcher.js';

export function startSdk({ target, emit }: WatcherContext): Watcher {
  const discovery = createLeaderDiscovery({ consul: { host: target.host, port: target.port } });
  const subscription = discovery
    .leader(target.key)
    .subscribe((leader) => emit(leader ? { session: leader.session.id, seq: seqOf(leader.node) } : null));

  return {
    async stop() {
      subscription.unsubscribe();
      discovery.close();
    },
  };
}
