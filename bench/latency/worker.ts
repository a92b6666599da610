/**
 * Entry of a watcher's worker thread: starts the watcher named in
 * `workerData`, posts each observation with its timestamp, answers clock
 * pings and usage queries (the thread's CPU time, HTTP requests sent), and
 * stops on request. Loaded through tsx by watcher-thread.ts.
 */
import { subscribe } from 'node:diagnostics_channel';
import { parentPort, workerData } from 'node:worker_threads';
import { now } from '../clock.js';
import { threadTimes } from './thread-times.js';
import type { FromWatcher, ToWatcher, WatcherInit, WatcherKind } from './protocol.js';
import { startConsulWatch } from './watchers/consul-watch.js';
import { startFloor } from './watchers/floor.js';
import { startPoll } from './watchers/poll.js';
import { startSdk } from './watchers/sdk.js';
import type { Watcher, WatcherContext } from './watchers/watcher.js';

const STARTERS: Record<WatcherKind, (context: WatcherContext) => Watcher> = {
  floor: startFloor,
  'consul-watch': startConsulWatch,
  poll: startPoll,
  sdk: startSdk,
};

const port = parentPort;
if (!port) throw new Error('bench/latency/worker.ts runs as a worker thread');
const init = workerData as WatcherInit;
const post = (message: FromWatcher): void => port.postMessage(message);

// Every HTTP request the watcher sends, whatever client it goes through.
let requests = 0;
subscribe('http.client.request.start', () => {
  requests += 1;
});

const watcher = STARTERS[init.kind]({
  target: { host: init.host, port: init.port, key: init.key },
  emit: (view) => {
    const at = now();
    post({ type: 'observation', at, view });
  },
  fail: (error) => post({ type: 'failure', message: error instanceof Error ? error.message : String(error) }),
});

port.on('message', (message: ToWatcher) => {
  if (message.type === 'ping') {
    post({ type: 'pong', sentAt: message.sentAt, at: now() });
    return;
  }
  if (message.type === 'usage') {
    post({ type: 'usage', ...threadTimes(), requests });
    return;
  }
  watcher
    .stop()
    .then(() => {
      post({ type: 'stopped' });
      port.close();
    })
    .catch((error: unknown) => post({ type: 'failure', message: String(error) }));
});
