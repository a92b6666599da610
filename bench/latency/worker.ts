/**
 * Entry of a watcher's worker thread: starts the watcher named in
 * `workerData`, posts each observation with its timestamp, answers clock
 * pings and usage queries (the thread's CPU time, HTTP requests sent, metric
 * exports), and stops on request (bench/thread.ts). Loaded through tsx by
 * watcher-thread.ts.
 */
import { subscribe } from 'node:diagnostics_channel';
import { workerData } from 'node:worker_threads';
import { now } from '../clock.js';
import { threadPort } from '../thread.js';
import { threadTimes } from './thread-times.js';
import type { FromWatcher, Usage, WatcherInit, WatcherKind } from './protocol.js';
import { startConsulWatch } from './watchers/consul-watch.js';
import { startFloor } from './watchers/floor.js';
import { startPoll } from './watchers/poll.js';
import { startSdk, startSdkWithMetrics, startSdkWithSessions } from './watchers/sdk.js';
import type { Watcher, WatcherContext } from './watchers/watcher.js';

const STARTERS: Record<WatcherKind, (context: WatcherContext) => Watcher> = {
  floor: startFloor,
  'consul-watch': startConsulWatch,
  poll: startPoll,
  sdk: startSdk,
  'sdk-sessions': startSdkWithSessions,
  'sdk-metrics': startSdkWithMetrics,
};

const thread = threadPort<FromWatcher, Usage>('bench/latency/worker.ts');
const init = workerData as WatcherInit;

// Every HTTP request the watcher sends, whatever client it goes through.
let requests = 0;
subscribe('http.client.request.start', () => {
  requests += 1;
});

const watcher = STARTERS[init.kind]({
  target: { host: init.host, port: init.port, key: init.key },
  emit: (view) => {
    const at = now();
    thread.post({ type: 'observation', at, view });
  },
  fail: thread.fail,
});

thread.serve({
  usage: () => ({ ...threadTimes(), requests, metricExports: watcher.metricExports?.() ?? 0 }),
  stop: () => watcher.stop(),
});
