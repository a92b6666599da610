/**
 * The telemetry hub of one discovery: what it reads of Consul (each request and how it
 * ended), what it follows (keys and prefixes), and the states it emits, handed to the sinks
 * (OpenTelemetry metrics, the logger) and published on the diagnostics channels. Nothing
 * here changes what the streams emit.
 */
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import type { PrefixEvent } from '../prefix/follow-prefix.js';
import type { LeaderState, PrefixOutage } from '../state/states.js';
import { sameState } from '../state/to-state.js';
import { publishState, stateListened, traceRequest } from './channels.js';
import type { RequestInfo, RequestKind, RequestResult, TrackRequest } from './request-types.js';

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
  /**
   * Whether Consul can be read for the unit: each failed read of it (`attempt` 1, 2, ...),
   * and `null` once it is read again after failures.
   */
  reachable?(unit: FollowedUnit, outage: PrefixOutage | null): void;
}

interface Followed {
  count: number;
  lastState: LeaderState<unknown> | undefined;
  /** The unit's last failed read was not followed by a good one. */
  unreachable: boolean;
  /** Events already told: the unit's pipelines (leader(), watch(), schemas) map the same events. */
  readonly told: WeakSet<object>;
}

export class Telemetry {
  private readonly followed = new Map<string, Followed>();

  constructor(private readonly sinks: readonly TelemetrySink[]) {}

  /** The request tracker of one kind of read of `key`. */
  requests(kind: RequestKind, key: string): TrackRequest {
    return (blocking, index) => {
      const info: RequestInfo = { kind, key, blocking, index };
      const traced = traceRequest(info);
      // No sink and no subscriber: nothing to build per request.
      if (this.sinks.length === 0 && !traced) return undefined;
      const started = performance.now();
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
  keyState(unit: FollowedUnit, event: object, state: LeaderState<unknown>): void {
    const entry = this.followed.get(unit.id);
    if (!firstTime(entry, event)) return;
    if (entry?.lastState && sameState(entry.lastState, state)) return;
    if (entry) entry.lastState = state;
    this.tell(unit, unit.key, state);
    if (state.status === 'unreachable') {
      this.outage(unit, { error: state.error, attempt: state.attempt, retryInMs: state.retryInMs });
    } else this.outage(unit, null);
  }

  /** A prefix unit's event, before it is mapped: whether Consul could be read for it. */
  prefixEvent(unit: FollowedUnit, event: PrefixEvent): void {
    if (!firstTime(this.followed.get(unit.id), event)) return;
    if (event.kind === 'unreachable') {
      this.outage(unit, { error: event.error, attempt: event.attempt, retryInMs: event.retryInMs });
    } else this.outage(unit, null);
  }

  /** The state of one key of a prefix unit, mapped from its (new) snapshot. */
  prefixKeyState(unit: FollowedUnit, snapshot: object, key: string, state: LeaderState<unknown>): void {
    // Unchanged keys keep their snapshot objects from answer to answer: told once.
    if (firstTime(this.followed.get(unit.id), snapshot)) this.tell(unit, key, state);
  }

  /** Whether anyone listens: without sinks or channel subscribers, states need not be told. */
  get listening(): boolean {
    return this.sinks.length > 0 || stateListened();
  }

  private outage(unit: FollowedUnit, outage: PrefixOutage | null): void {
    const entry = this.followed.get(unit.id);
    if (outage === null && !entry?.unreachable) return;
    if (entry) entry.unreachable = outage !== null;
    for (const sink of this.sinks) sink.reachable?.(unit, outage);
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
    this.followed.set(unit.id, { count: 1, lastState: undefined, unreachable: false, told: new WeakSet() });
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

/** Whether `event` is told for the first time to the unit (always, for a unit no longer followed). */
function firstTime(entry: Followed | undefined, event: object): boolean {
  if (!entry) return true;
  if (entry.told.has(event)) return false;
  entry.told.add(event);
  return true;
}
