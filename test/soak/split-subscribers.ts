/**
 * The split soak's subscribers (split-soak.test.ts), all of one
 * `createLeaderDiscovery`: `leaders()`, `watchLeaders()` and `watchPrefix()`
 * of the prefix, on a shared Observable or a call of their own, the first of
 * each kind there from start to end and checking every emission; `leader()`
 * of a sample of the first keys and of keys the writers will create,
 * coalesced into the prefix's query. Some join at a write or after the last
 * one, some leave and come back: when, is their `Schedule`.
 */
import type { Observable } from 'rxjs';
import type { Leader, LeaderDiscovery, PrefixState } from '@consul-leader/discovery';
import { Schedule } from './run.js';
import {
  type Inspector,
  Inspected,
  type Kind,
  type LeadersMap,
  type SplitSubscriber,
  type StatesMap,
  type Violations,
  leaderInspector,
  leaderMismatch,
  leadersInspector,
  leadersMismatch,
  prefixInspector,
  statesInspector,
  statesMismatch,
} from './split-inspectors.js';
import { FLIPS, type FinalState, KEYS, Node, PREFIX, keyOf, likelyNewKeys } from './split-model.js';

/** Keys of the prefix followed one by one with leader() (32 or more: they coalesce into its query). */
const LEADER_KEYS = 40;

export interface Roster {
  /** Every subscriber, in the order they were made (their ids). */
  readonly all: readonly SplitSubscriber[];
  /** The first leaders() subscriber: there from start to end, checking every emission. */
  readonly firstLeaders: Inspected<LeadersMap>;
  /** When the others join, leave and come back, counted in writes. */
  readonly schedule: Schedule;
}

/** Makes the subscribers, subscribes those there from the start, and schedules the others (draws from `random`). */
export function enlist(discovery: LeaderDiscovery, random: () => number, violations: Violations): Roster {
  const leaderOf = (key: string): Observable<Leader<Node> | null> => discovery.leader(key, { schema: Node });
  const all: SplitSubscriber[] = [];
  const add = <T>(
    kind: Kind,
    target: string,
    source: () => Observable<T>,
    inspector: Inspector<T> | undefined,
    compare: (value: T, final: FinalState) => string | null,
  ): Inspected<T> => {
    const subscriber = new Inspected<T>(all.length, kind, target, source, inspector, compare);
    all.push(subscriber);
    return subscriber;
  };
  /**
   * Subscribers of one call on the prefix: `own`, a call per subscription (else
   * one Observable shared by all); `checked`, each emission inspected (else `unchecked`).
   */
  const ofPrefix = <T>(
    kind: Kind,
    call: () => Observable<T>,
    inspector: (label: string, violations: Violations) => Inspector<T>,
    unchecked: () => Inspector<T> | undefined,
    compare: (value: T, final: FinalState) => string | null,
  ): ((own: boolean, checked: boolean) => Inspected<T>) => {
    const shared = call();
    return (own, checked) =>
      add<T>(
        kind,
        PREFIX,
        own ? call : () => shared,
        checked ? inspector(`${kind}() #${all.length}`, violations) : unchecked(),
        compare,
      );
  };
  const addLeaders = ofPrefix<LeadersMap>(
    'leaders',
    () => discovery.leaders(PREFIX, { schema: Node }),
    leadersInspector,
    () => undefined,
    leadersMismatch,
  );
  const addStates = ofPrefix<StatesMap>(
    'watchLeaders',
    () => discovery.watchLeaders(PREFIX, { schema: Node }),
    statesInspector,
    () => undefined,
    statesMismatch,
  );
  const addPrefix = ofPrefix<PrefixState<Node>>(
    'watchPrefix',
    () => discovery.watchPrefix(PREFIX, { schema: Node }),
    prefixInspector,
    // Every watchPrefix() subscriber checks its outage flag; one checks every key too.
    () => ({ reset: () => undefined, check: (value) => value.unreachable !== null }),
    (value, final) => (value.unreachable !== null ? 'unreachable' : statesMismatch(value.states, final)),
  );
  const addLeader = (key: string, own: boolean): Inspected<Leader<Node> | null> => {
    const shared = leaderOf(key);
    return add<Leader<Node> | null>(
      'leader',
      key,
      own ? () => leaderOf(key) : () => shared,
      leaderInspector(`leader(${key}) #${all.length}`, violations),
      (value, final) => leaderMismatch(key, value, final.byKey.get(key)),
    );
  };

  // What joins when: from the start, at a given write, after the last write; leave and come back.
  const schedule = new Schedule(FLIPS, random, 3);
  const late = (subscriber: SplitSubscriber, cycles = 0): void => {
    const from = schedule.randomWrite(0.8);
    schedule.at(from, () => subscriber.subscribe());
    if (cycles > 0) schedule.comesAndGoes(subscriber, from, cycles);
  };

  // Prefix subscribers: the first of each kind stays from start to end and checks every emission.
  const firstLeaders = addLeaders(false, true);
  firstLeaders.subscribe();
  addLeaders(true, false).subscribe();
  const leadersBack = addLeaders(false, false);
  leadersBack.subscribe();
  schedule.comesAndGoes(leadersBack, 0, 2);
  late(addLeaders(false, false));
  late(addLeaders(true, false), 1);
  const leadersLast = addLeaders(false, false);
  schedule.afterLastWrite(() => leadersLast.subscribe());
  addStates(false, true).subscribe();
  late(addStates(true, false));
  const statesBack = addStates(false, false);
  statesBack.subscribe();
  schedule.comesAndGoes(statesBack, 0, 2);
  addPrefix(false, true).subscribe();
  late(addPrefix(false, false), 1);
  const prefixLast = addPrefix(true, false);
  schedule.afterLastWrite(() => prefixLast.subscribe());

  // leader() of a sample of the first keys, and of keys the writers will (likely) create.
  const sample = Array.from({ length: LEADER_KEYS }, (_, i) =>
    keyOf(Math.floor((i * KEYS) / LEADER_KEYS) + (i % 3)),
  );
  for (const key of [...sample, ...likelyNewKeys()]) {
    // The first subscriber of each key stays: the group of coalesced keys never empties.
    addLeader(key, false).subscribe();
    const second = addLeader(key, random() < 0.3);
    const r = random();
    if (r < 0.5) {
      second.subscribe();
      if (random() < 0.3) schedule.comesAndGoes(second, 0, 1 + Math.floor(random() * 2));
    } else if (r < 0.85) late(second, random() < 0.3 ? 1 : 0);
    else schedule.afterLastWrite(() => second.subscribe());
  }
  return { all, firstLeaders, schedule };
}
