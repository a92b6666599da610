/**
 * `leader()` from `watch()` and `leaders()` from the prefix states: the
 * settled answer, held through an outage of Consul.
 */
import { type OperatorFunction, defer, distinctUntilChanged, filter, map, of, switchMap, timer } from 'rxjs';
import type { ErrorInfo, Leader, LeaderState } from '@consul-leader/types';
import { sameLeader } from './to-state.js';

/**
 * While an input is an outage, the last answer stays: a leader that was
 * elected is likely still leading, and routing nowhere is worse for most
 * callers. With `emptyAfterMs`, an outage that lasts that long (from its first
 * failed read) turns into `empty`, for callers that must not act on stale
 * knowledge.
 */
export function holdThroughOutage<S, R>(options: {
  readonly isOutage: (input: S) => boolean;
  readonly answer: (input: S) => R;
  readonly empty: R;
  readonly same: (a: R, b: R) => boolean;
  readonly emptyAfterMs: number | undefined;
}): OperatorFunction<S, R> {
  const { isOutage, answer, empty, same, emptyAfterMs } = options;
  // Without a time limit, an outage just emits nothing: no timer, no inner observable per input.
  if (emptyAfterMs === undefined) {
    return (input$) =>
      input$.pipe(
        filter((input) => !isOutage(input)),
        map(answer),
        distinctUntilChanged(same),
      );
  }
  return (input$) =>
    defer(() => {
      let outageStart: number | undefined;
      return input$.pipe(
        switchMap((input) => {
          if (!isOutage(input)) {
            outageStart = undefined;
            return of(answer(input));
          }
          outageStart ??= performance.now();
          return timer(Math.max(0, outageStart + emptyAfterMs - performance.now())).pipe(map(() => empty));
        }),
        distinctUntilChanged(same),
      );
    });
}

/** The leader of one key, or null. */
export function leaderOf<T, E extends ErrorInfo>(
  nullAfterMs: number | undefined,
): OperatorFunction<LeaderState<T, E>, Leader<T> | null> {
  return holdThroughOutage({
    isOutage: (state: LeaderState<T, E>) => state.status === 'unreachable',
    answer: (state) => (state.status === 'leader' ? state.leader : null),
    empty: null,
    same: sameLeader,
    emptyAfterMs: nullAfterMs,
  });
}

/** What `leadersOf` needs of a prefix's state. */
interface PrefixStates<T, E extends ErrorInfo> {
  readonly unreachable: unknown;
  readonly states: ReadonlyMap<string, LeaderState<T, E>>;
}

function sameLeaders<T>(a: ReadonlyMap<string, Leader<T>>, b: ReadonlyMap<string, Leader<T>>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, leader] of a) {
    const other = b.get(key);
    if (!other || !sameLeader(leader, other)) return false;
  }
  return true;
}

/** The leaders under a prefix: keys without a (valid) leader are absent. */
export function leadersOf<T, E extends ErrorInfo>(
  emptyAfterMs: number | undefined,
): OperatorFunction<PrefixStates<T, E>, ReadonlyMap<string, Leader<T>>> {
  return holdThroughOutage({
    isOutage: (input: PrefixStates<T, E>) => input.unreachable !== null,
    answer: ({ states }) => {
      const leaders = new Map<string, Leader<T>>();
      for (const [key, state] of states) if (state.status === 'leader') leaders.set(key, state.leader);
      return leaders as ReadonlyMap<string, Leader<T>>;
    },
    empty: new Map<string, Leader<T>>() as ReadonlyMap<string, Leader<T>>,
    same: sameLeaders,
    emptyAfterMs,
  });
}
