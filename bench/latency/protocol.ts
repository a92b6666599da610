/** What the main thread and a watcher's worker thread say to each other. */
import type { ThreadTimes } from './thread-times.js';

export type WatcherKind = 'floor' | 'consul-watch' | 'poll' | 'sdk' | 'sdk-sessions' | 'sdk-metrics';

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

/**
 * Totals since the thread started: its CPU time and run-queue wait (ms), HTTP requests sent,
 * and, for a watcher with OpenTelemetry metrics on, its reader's exports (0 for the others).
 */
export interface Usage extends ThreadTimes {
  readonly requests: number;
  readonly metricExports: number;
}

/** What a watcher thread posts besides the messages of every thread (bench/thread.ts). */
export interface FromWatcher {
  readonly type: 'observation';
  /** `now()` (bench/clock.ts) in the watcher's thread, taken when it saw the view. */
  readonly at: number;
  readonly view: LeaderView;
}

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
