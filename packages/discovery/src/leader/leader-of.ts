/** `leader()` from `watch()`: the leader or null, holding the last one while Consul cannot be read. */
import { EMPTY, type OperatorFunction, defer, distinctUntilChanged, map, of, switchMap, timer } from 'rxjs';
import type { ErrorInfo, Leader, LeaderState } from '@consul-leader/types';
import { sameLeader } from './to-state.js';

/**
 * While `unreachable`, the last leader stays the answer: it was elected and is
 * likely still leading, and routing nowhere is worse for most callers. With
 * `nullAfterMs`, an outage that lasts that long (from its first failed read)
 * turns into `null`, for callers that must not act on stale knowledge.
 */
export function leaderOf<T, E extends ErrorInfo>(
  nullAfterMs: number | undefined,
): OperatorFunction<LeaderState<T, E>, Leader<T> | null> {
  return (states$) =>
    defer(() => {
      let outageStart: number | undefined;
      return states$.pipe(
        switchMap((state) => {
          if (state.status !== 'unreachable') {
            outageStart = undefined;
            return of(state.status === 'leader' ? state.leader : null);
          }
          if (nullAfterMs === undefined) return EMPTY;
          outageStart ??= performance.now();
          return timer(Math.max(0, outageStart + nullAfterMs - performance.now())).pipe(map(() => null));
        }),
        distinctUntilChanged(sameLeader),
      );
    });
}
