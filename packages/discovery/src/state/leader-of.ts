/**
 * `leader()` from `watch()` and `leaders()` from the prefix's events: the
 * settled answer, held through an outage of Consul.
 */
import { type OperatorFunction, defer, distinctUntilChanged, filter, map, of, switchMap, timer } from 'rxjs';
import type { ErrorInfo, Leader, LeaderState } from '@consul-leader/types';
import { KeyedList, PositionalMap, changedPositions } from '../prefix/keyed-list.js';
import type { PrefixEvent } from '../prefix/follow-prefix.js';
import type { KeySnapshot } from '../key/key-snapshot.js';
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

function sameLeaders<T>(a: ReadonlyMap<string, Leader<T>>, b: ReadonlyMap<string, Leader<T>>): boolean {
  if (a === b) return true;
  if (PositionalMap.differs(a, b)) return false;
  if (a.size !== b.size) return false;
  for (const [key, leader] of a) {
    const other = b.get(key);
    if (!other || !sameLeader(leader, other)) return false;
  }
  return true;
}

/**
 * The leaders under a prefix, from its events: keys without a (valid) leader
 * are absent. When the keys are the same as in the last snapshot, only those
 * whose snapshot changed are decoded and compared: an answer that changes no
 * leader makes no new map, and one that does makes a view (PositionalMap)
 * in one array copy.
 */
export function leadersOf<T, E extends ErrorInfo>(
  toState: (snapshot: KeySnapshot) => LeaderState<T, E>,
  emptyAfterMs: number | undefined,
): OperatorFunction<PrefixEvent, ReadonlyMap<string, Leader<T>>> {
  return (input$) =>
    defer(() => {
      const none: ReadonlyMap<string, Leader<T>> = new Map<string, Leader<T>>();
      let keys: ReadonlyMap<string, KeySnapshot> | undefined;
      let leaders = none;
      // Each key's leader by position in `keys` (when it is a KeyedList): never changed in place once handed out.
      let byPosition: (Leader<T> | undefined)[] = [];
      let size = 0;
      const leaderIn = (snapshot: KeySnapshot): Leader<T> | undefined => {
        const state = toState(snapshot);
        return state.status === 'leader' ? state.leader : undefined;
      };
      const answer = (event: PrefixEvent): ReadonlyMap<string, Leader<T>> => {
        if (event.kind !== 'snapshot') return leaders;
        const next = event.keys;
        const positions = changedPositions(keys, next);
        keys = next;
        let changedFrom: ReadonlyMap<string, Leader<T>> | undefined;
        if (positions) {
          let copy: (Leader<T> | undefined)[] | undefined;
          for (const i of positions) {
            const before = byPosition[i];
            const now = leaderIn((next as KeyedList<KeySnapshot>).list[i] as KeySnapshot);
            if (before === undefined || now === undefined ? before === now : sameLeader(before, now))
              continue;
            copy ??= byPosition.slice();
            copy[i] = now;
            size += (now ? 1 : 0) - (before ? 1 : 0);
          }
          if (!copy) return leaders;
          byPosition = copy;
          changedFrom = leaders;
        } else {
          byPosition = [...next.values()].map(leaderIn);
          size = byPosition.filter((leader) => leader !== undefined).length;
        }
        if (next instanceof KeyedList) {
          return (leaders = new PositionalMap(next, byPosition, size, changedFrom));
        }
        const made = new Map<string, Leader<T>>();
        let i = 0;
        for (const key of next.keys()) {
          const leader = byPosition[i++];
          if (leader) made.set(key, leader);
        }
        return (leaders = made);
      };
      return input$.pipe(
        holdThroughOutage({
          isOutage: (event: PrefixEvent) => event.kind === 'unreachable',
          answer,
          empty: none,
          same: sameLeaders,
          emptyAfterMs,
        }),
      );
    });
}
