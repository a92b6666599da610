/**
 * (d) The SDK: `createLeaderDiscovery(...).leader(key)` with the default schema (any JSON);
 * (e) the same with `watchSessions: true`.
 */
import { type LeaderDiscoveryOptions, createLeaderDiscovery } from '@consul-leader/discovery';
import { seqOf } from '../protocol.js';
import type { Watcher, WatcherContext } from './watcher.js';

function start({ target, emit }: WatcherContext, options: LeaderDiscoveryOptions): Watcher {
  const discovery = createLeaderDiscovery({ ...options, consul: { host: target.host, port: target.port } });
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

export const startSdk = (context: WatcherContext): Watcher => start(context, {});

export const startSdkWithSessions = (context: WatcherContext): Watcher =>
  start(context, { watchSessions: true });
