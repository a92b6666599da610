/** The contract of a watcher, whatever it is built on. */
import type { LeaderView, Target } from '../protocol.js';

export interface WatcherContext {
  readonly target: Target;
  /** Reports what the watcher now believes; timestamps it at once. */
  readonly emit: (view: LeaderView) => void;
  /** Reports a failure that ends the benchmark. */
  readonly fail: (error: unknown) => void;
}

export interface Watcher {
  /** Stops following the key and closes every socket. */
  stop(): Promise<void>;
  /** A watcher with OpenTelemetry metrics on: its reader's exports so far that carried the SDK's metrics. */
  metricExports?(): number;
}
