/**
 * The telemetry hub of one discovery: what it reads of Consul (each request and how it
 * ended), what it follows (keys and prefixes), and the states it emits, handed to the sinks
 * (OpenTelemetry metrics, the logger) and published on the diagnostics channels. Nothing
 * here changes what the streams emit.
 */
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import type { LeaderState } from '../state/states.js';
import { sameState } from '../state/to-state.js';
import { publishState, traceRequest } from './channels.js';
import type { RequestInfo, RequestKind, RequestResult, TrackRequest } from './requests.js';

/** A key or prefix followed: what `consul_leader.followed` counts. */
export interface FollowedUnit {
  readonly type: 'key' | 'prefix';
  /** The key or prefix. */
  readonly key: string;
  /** Its read scope's id: the same key read two ways is two units. */
  readonly id: string;
}

/** A consumer of the telemetry. Every method is optional; none may throw. */
export interface TelemetrySink {
  /** A request ended (`durationMs` from its start to its answer read). */
  request?(info: RequestInfo, result: RequestResult, durationMs: number): void;
  /** A unit is followed now (1), or no longer (-1). */
  followed?(unit: FollowedUnit, delta: 1 | -1): void;
  /** A state `watch()` of the unit emits (a key of a prefix: `key` is that key). */
  state?(unit: FollowedUnit, key: string, state: LeaderState<unknown>): void;
}

interface Followed {
  count: number;
  /** The last event a state was told for (another pipeline of the same key maps it too). */
  lastEvent: unknown;
  lastState: LeaderState<unknown> | undefined;
}

export class Telemetry {
  private readonly followed = new Map<string, Followed>();

  constructor(private readonly sinks: readonly TelemetrySink[]) {}

  /** The request tracker of one kind of read of `key`. */
  requests(kind: RequestKind, key: string): TrackRequest {
    return (blocking, index) => {
      const info: RequestInfo = { kind, key, blocking, index };
      const started = performance.now();
      const traced = traceRequest(info);
      return (result) => {
        const durationMs = performance.now() - started;
        for (const sink of this.sinks) sink.request?.(info, result, durationMs);
        traced?.(result);
      };
    };
  }

  /** `source` counted as following `unit` while subscribed (each unit once, however many pipelines). */
  following<E>(unit: FollowedUnit): MonoTypeOperatorFunction<E> {
    return (source) =>
      new Observable<E>((subscriber) => {
        this.acquire(unit);
        const subscription = source.subscribe(subscriber);
        return () => {
          subscription.unsubscribe();
          this.release(unit);
        };
      });
  }

  /**
   * A state of a key `unit` mapped from `event`: told once per event (the key's `leader()`
   * and `watch()` map the same events) and once per change (as `watch()` emits).
   */
  keyState(unit: FollowedUnit, event: unknown, state: LeaderState<unknown>): void {
    const entry = this.followed.get(unit.id);
    if (entry) {
      if (entry.lastEvent === event) return;
      entry.lastEvent = event;
      if (entry.lastState && sameState(entry.lastState, state)) return;
      entry.lastState = state;
    }
    this.tell(unit, unit.key, state);
  }

  /** A state of one key of a prefix `unit` (changed since the last one told). */
  prefixKeyState(unit: FollowedUnit, key: string, state: LeaderState<unknown>): void {
    this.tell(unit, key, state);
  }

  private tell(unit: FollowedUnit, key: string, state: LeaderState<unknown>): void {
    for (const sink of this.sinks) sink.state?.(unit, key, state);
    publishState(key, state);
  }

  private acquire(unit: FollowedUnit): void {
    const entry = this.followed.get(unit.id);
    if (entry) {
      entry.count += 1;
      return;
    }
    this.followed.set(unit.id, { count: 1, lastEvent: undefined, lastState: undefined });
    for (const sink of this.sinks) sink.followed?.(unit, 1);
  }

  private release(unit: FollowedUnit): void {
    const entry = this.followed.get(unit.id);
    if (!entry) return;
    entry.count -= 1;
    if (entry.count > 0) return;
    this.followed.delete(unit.id);
    for (const sink of this.sinks) sink.followed?.(unit, -1);
  }
}
