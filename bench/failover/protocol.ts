/** What the failover case's main thread and its watcher threads say to each other. */
import type { LeaderView } from '../latency/protocol.js';

/** `floor`: case 1's bare-http loop, one per key; `sdk`: one `createLeaderDiscovery`, one `leader(key)` per key. */
export type FailoverWatcherKind = 'floor' | 'sdk';

export interface FailoverWatcherInit {
  readonly kind: FailoverWatcherKind;
  readonly host: string;
  readonly port: number;
  readonly keys: readonly string[];
  /** Where to import `@consul-leader/discovery` from (bench/sdk-snapshot.ts); the package itself if absent. */
  readonly sdk?: string;
}

export type FromFailoverWatcher =
  /** `at` is `now()` (bench/clock.ts) in the watcher's thread. */
  | { readonly type: 'observation'; readonly key: string; readonly at: number; readonly view: LeaderView }
  | { readonly type: 'pong'; readonly sentAt: number; readonly at: number }
  | { readonly type: 'failure'; readonly message: string }
  | { readonly type: 'stopped' };

export type ToFailoverWatcher =
  { readonly type: 'ping'; readonly sentAt: number } | { readonly type: 'stop' };
