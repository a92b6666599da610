/** A prefix's events as the public `PrefixState`: one state per key, decoded by `toState`. */
import { type OperatorFunction, defer, map, type Observable } from 'rxjs';
import type { KeyEvent, KeySnapshot } from '../key/key-snapshot.js';
import type { PrefixEvent } from '../prefix/follow-prefix.js';
import { KeyedList, PositionalMap, changedPositions } from '../prefix/keyed-list.js';
import type { LeaderState, PrefixState } from './states.js';

export function toPrefixStates<T>(
  prefix: string,
  toState: (event: KeyEvent) => LeaderState<T>,
): OperatorFunction<PrefixEvent, PrefixState<T>> {
  return (events: Observable<PrefixEvent>) =>
    defer(() => {
      // The last snapshot's keys and their states by position: a change makes a view over
      // them in one array copy (PositionalMap), not a Map of every key.
      let keys: KeyedList<KeySnapshot> | undefined;
      let states: LeaderState<T>[] = [];
      return events.pipe(
        map((event): PrefixState<T> => {
          if (event.kind === 'snapshot') {
            const next = event.keys;
            if (next instanceof KeyedList) {
              const positions = changedPositions(keys, next);
              if (positions) {
                states = states.slice();
                for (const i of positions) states[i] = toState(next.list[i] as KeySnapshot);
              } else {
                states = next.list.map(toState);
              }
              keys = next;
              const view = new PositionalMap<LeaderState<T>>(next, states, states.length);
              return { prefix, states: view, unreachable: null, consul: event.meta };
            }
            keys = undefined;
            const byKey = new Map<string, LeaderState<T>>();
            for (const [key, snapshot] of next) byKey.set(key, toState(snapshot));
            return { prefix, states: byKey, unreachable: null, consul: event.meta };
          }
          keys = undefined;
          const { error, attempt, retryInMs } = event;
          const unreachable = new Map<string, LeaderState<T>>();
          for (const [key, lastKnown] of event.lastKnown?.keys ?? []) {
            unreachable.set(key, toState({ kind: 'unreachable', key, error, attempt, retryInMs, lastKnown }));
          }
          return {
            prefix,
            states: unreachable,
            unreachable: { error, attempt, retryInMs },
            consul: event.lastKnown?.meta ?? null,
          };
        }),
      );
    });
}
