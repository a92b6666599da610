/**
 * Entry of a failover watcher thread: follows every key of the case with the
 * floor (case 1's bare-http loop, one per key) or the SDK (one discovery, one
 * `leader(key)` per key), posts each observation with its timestamp, answers
 * clock pings, and stops on request. Loaded through tsx by threads.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Subscription } from 'rxjs';
import type * as Sdk from '@consul-leader/discovery';
import { now } from '../clock.js';
import { type LeaderView, seqOf } from '../latency/protocol.js';
import { startFloor } from '../latency/watchers/floor.js';
import type { FailoverWatcherInit, FromFailoverWatcher, ToFailoverWatcher } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('bench/failover/worker.ts runs as a worker thread');
const init = workerData as FailoverWatcherInit;
const post = (message: FromFailoverWatcher): void => port.postMessage(message);
const observe = (key: string) => (view: LeaderView) => {
  const at = now();
  post({ type: 'observation', key, at, view });
};
const fail = (error: unknown): void =>
  post({ type: 'failure', message: error instanceof Error ? error.message : String(error) });

let stop: () => Promise<void>;
if (init.kind === 'floor') {
  const floors = init.keys.map((key) =>
    startFloor({ target: { host: init.host, port: init.port, key }, emit: observe(key), fail }),
  );
  stop = async () => {
    await Promise.all(floors.map((floor) => floor.stop()));
  };
} else {
  const sdk: typeof Sdk = await import(init.sdk ?? '@consul-leader/discovery');
  const discovery = sdk.createLeaderDiscovery({ consul: { host: init.host, port: init.port } });
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

port.on('message', (message: ToFailoverWatcher) => {
  if (message.type === 'ping') {
    post({ type: 'pong', sentAt: message.sentAt, at: now() });
    return;
  }
  stop()
    .then(() => {
      post({ type: 'stopped' });
      port.close();
    })
    .catch(fail);
});
