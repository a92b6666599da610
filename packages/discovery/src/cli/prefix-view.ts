/**
 * What `watch --prefix` knows of every key under the prefix, fed with what
 * `watchLeaders()` emits: the rows of the live view, whether Consul answers,
 * and which keys changed (the lines to print). Pure: the time comes in.
 */
import type { ConsulReadMeta, ErrorInfo, LeaderState, SettledLeaderState } from '@consul-leader/types';
import { sameState } from '../state/to-state.js';
import type { ConsulStatus, TableRow } from './table.js';

type State = LeaderState<unknown, ErrorInfo>;
type Settled = SettledLeaderState<unknown, ErrorInfo>;

export interface ViewRow extends TableRow {
  readonly state: State;
  readonly since: Date;
  readonly sinceAtLeast: boolean;
}

/** What a state says was last read from Consul (`unreachable`: its `lastKnown`). */
function settledOf(state: State): Settled | null {
  return state.status === 'unreachable' ? state.lastKnown : state;
}

/**
 * The newest answer's headers among the states. (A key that did not change keeps its state, and
 * the headers of the answer that changed it: the map's own answer is not given.)
 */
function metaOf(states: Iterable<State>): ConsulReadMeta | null {
  let newest: ConsulReadMeta | null = null;
  for (const state of states) {
    const meta = settledOf(state)?.consul;
    if (meta && (newest === null || meta.index > newest.index)) newest = meta;
  }
  return newest;
}

const byKey = (a: State, b: State): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export class PrefixView {
  private readonly rowsByKey = new Map<string, ViewRow>();
  private current: ConsulStatus = { kind: 'connecting' };
  private meta: ConsulReadMeta | null = null;
  private readSeen = false;

  /** `started`: when the watch started (the lower bound of SINCE for the keys of the first read). */
  constructor(private readonly started: Date) {}

  get status(): ConsulStatus {
    return this.current;
  }

  /** The rows, sorted by key. */
  rows(): ViewRow[] {
    return [...this.rowsByKey.values()].sort((a, b) => byKey(a.state, b.state));
  }

  /**
   * A map read from Consul. Keys absent from it that were shown before were
   * deleted: they show as `vacant` (`key-missing`), as `watch <key>` says it.
   * Returns the states that changed, by key.
   */
  read(states: ReadonlyMap<string, State>, now: Date): State[] {
    const changed: State[] = [];
    const meta = metaOf(states.values()) ?? this.meta;
    for (const [key, state] of states) this.update(key, state, now, changed);
    if (meta) {
      for (const key of this.rowsByKey.keys()) {
        if (!states.has(key)) {
          this.update(key, { status: 'vacant', key, reason: 'key-missing', consul: meta }, now, changed);
        }
      }
    }
    this.meta = meta;
    this.readSeen = true;
    this.current = { kind: 'ok', meta };
    return changed.sort(byKey);
  }

  /**
   * An outage, as `watchLeaders()` shows it: every key it knew, `unreachable`
   * (`states` is not empty). Keys shown as deleted become `unreachable` too.
   * Returns the states that changed (all of them: the attempt count moves).
   */
  outage(states: ReadonlyMap<string, State>, now: Date): State[] {
    const down = states.values().next().value;
    if (down?.status !== 'unreachable') return this.read(states, now);
    const changed: State[] = [];
    for (const [key, state] of states) this.update(key, state, now, changed);
    this.meta = metaOf(states.values()) ?? this.meta;
    const { error, attempt, retryInMs } = down;
    for (const [key, row] of this.rowsByKey) {
      if (states.has(key)) continue;
      const lastKnown = settledOf(row.state);
      this.update(key, { status: 'unreachable', key, error, attempt, retryInMs, lastKnown }, now, changed);
    }
    this.down(error, now, attempt, retryInMs);
    return changed.sort(byKey);
  }

  /**
   * An outage while no key is known: the SDK's map is empty, so the error
   * comes from elsewhere (a single-key read). No row changes.
   */
  outageWithoutKeys(error: ErrorInfo, now: Date): void {
    this.down(error, now, null, null);
  }

  private down(error: ErrorInfo, now: Date, attempt: number | null, retryInMs: number | null): void {
    const since = this.current.kind === 'unreachable' ? this.current.since : now;
    this.current = { kind: 'unreachable', error, since, attempt, retryInMs };
  }

  private update(key: string, state: State, now: Date, changed: State[]): void {
    const previous = this.rowsByKey.get(key);
    if (previous && sameState(previous.state, state)) return;
    changed.push(state);
    const before = previous ? settledOf(previous.state) : null;
    const after = settledOf(state);
    let since: Date;
    let sinceAtLeast: boolean;
    if (previous && (after === null || (before !== null && sameState(before, after)))) {
      // An outage, or the end of one with the same state: the state itself did not change.
      ({ since, sinceAtLeast } = previous);
    } else if (!previous && !this.readSeen) {
      // Already there when the watch started: it has been so for at least that long.
      since = this.started;
      sinceAtLeast = true;
    } else {
      since = now;
      sinceAtLeast = false;
    }
    this.rowsByKey.set(key, { state, since, sinceAtLeast });
  }
}
