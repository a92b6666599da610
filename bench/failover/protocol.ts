/** What the failover case's main thread and its watcher threads say to each other. */
import type { LeaderView } from '../latency/protocol.js';

/**
 * `floor`: case 1's bare-http loop, one per key; `sdk`: one `createLeaderDiscovery`, one
 * `leader(key)` per key; `sdk-sessions`: the same with `watchSessions: true`.
 */
export type FailoverWatcherKind = 'floor' | 'sdk' | 'sdk-sessions';

export interface FailoverWatcherInit {
  readonly kind: FailoverWatcherKind;
  readonly host: string;
  readonly port: number;
  readonly keys: readonly string[];
  /** Where to import `@consul-leader/discovery` from (bench/sdk-snapshot.ts); the package itself if absent. */
  readonly sdk?: string;
}

/** What a watcher thread posts besides the messages of every thread (bench/thread.ts). */
export interface FromFailoverWatcher {
  readonly type: 'observation';
  readonly key: string;
  /** `now()` (bench/clock.ts) in the watcher's thread. */
  readonly at: number;
  readonly view: LeaderView;
}
