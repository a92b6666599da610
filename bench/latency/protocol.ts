/** What the main thread and a watcher's worker thread say to each other. */

export type WatcherKind = 'floor' | 'consul-watch' | 'poll' | 'sdk';

/** Where a watcher looks: the Consul HTTP API and the leader key. */
export interface Target {
  readonly host: string;
  readonly port: number;
  readonly key: string;
}

/** `workerData` of a watcher thread. */
export interface WatcherInit extends Target {
  readonly kind: WatcherKind;
}

/** What a watcher believes: the session holding the key and the `seq` of its value, or no leader. */
export type LeaderView = { readonly session: string; readonly seq: number | null } | null;

export type FromWatcher =
  /** `at` is `now()` (bench/clock.ts) in the watcher's thread, taken when it saw the view. */
  | { readonly type: 'observation'; readonly at: number; readonly view: LeaderView }
  | { readonly type: 'pong'; readonly sentAt: number; readonly at: number }
  /** Totals so far in the watcher's thread: CPU time, run-queue wait (thread-times.ts), HTTP requests. */
  | {
      readonly type: 'usage';
      readonly cpuMs: number;
      readonly runQueueMs: number;
      readonly requests: number;
    }
  | { readonly type: 'failure'; readonly message: string }
  | { readonly type: 'stopped' };

export type ToWatcher =
  { readonly type: 'ping'; readonly sentAt: number } | { readonly type: 'usage' } | { readonly type: 'stop' };

export function sameView(a: LeaderView | undefined, b: LeaderView | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a === null || b === null) return a === b;
  return a.session === b.session && a.seq === b.seq;
}

/** The `seq` of a descriptor such as `{"seq":17}`, or null. */
export function seqOf(descriptor: unknown): number | null {
  if (typeof descriptor !== 'object' || descriptor === null || !('seq' in descriptor)) return null;
  const { seq } = descriptor;
  return typeof seq === 'number' ? seq : null;
}

/** `seqOf` for a value as text (JSON). */
export function seqOfText(text: string | null | undefined): number | null {
  if (!text) return null;
  try {
    return seqOf(JSON.parse(text));
  } catch {
    return null;
  }
}
