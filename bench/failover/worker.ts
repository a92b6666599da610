/**
 * Entry of a failover watcher thread: follows every key of the case with the
 * floor (case 1's bare-http loop, one per key) or the SDK (one discovery, one
 * `leader(key)` per key; with `watchSessions` or not), posts each observation with its timestamp, answers
 * clock pings, and stops on request (bench/thread.ts). Loaded through tsx by
 * threads.ts.
 */
import { workerData } from 'node:worker_threads';
import type { Subscription } from 'rxjs';
import type * as Sdk from '@consul-leader/discovery';
import { now } from '../clock.js';
import { type LeaderView, seqOf } from '../latency/protocol.js';
import { threadTimes } from '../latency/thread-times.js';
import { startFloor } from '../latency/watchers/floor.js';
import { threadPort } from '../thread.js';
import type { FailoverWatcherInit, FromFailoverWatcher } from './protocol.js';

const thread = threadPort<FromFailoverWatcher>('bench/failover/worker.ts');
const init = workerData as FailoverWatcherInit;
const observe = (key: string) => (view: LeaderView) => {
  const at = now();
  thread.post({ type: 'observation', key, at, view });
};

let stop: () => Promise<void>;
if (init.kind === 'floor') {
  const floors = init.keys.map((key) =>
    startFloor({ target: { host: init.host, port: init.port, key }, emit: observe(key), fail: thread.fail }),
  );
  stop = async () => {
    await Promise.all(floors.map((floor) => floor.stop()));
  };
} else {
  const sdk: typeof Sdk = await import(init.sdk ?? '@consul-leader/discovery');
  const discovery = sdk.createLeaderDiscovery({
    consul: { host: init.host, port: init.port },
    ...(init.kind === 'sdk-sessions' ? { watchSessions: true } : {}),
  });
  const subscriptions: Subscription[] = init.keys.map((key) => {
    const emit = observe(key);
    return discovery
      .leader(key)
      .subscribe((leader) => emit(leader ? { session: leader.session.id, seq: seqOf(leader.node) } : null));
  });
  stop = async () => {
    for (const subscription of subscriptions) subscription.unsubscribe();
    discovery.close();
  };
}

thread.serve({ usage: threadTimes, stop });
