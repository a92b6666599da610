/**
 * Coalescing: once enough single keys under one prefix are followed, they are
 * all served from the prefix's recursive blocking query instead of one query
 * (and one connection to Consul) each.
 */
import { BehaviorSubject, Observable, type Subscriber, type Subscription } from 'rxjs';
import { KeyedList, changedPositions } from '../keyed-list.js';
import type { KeyEvent } from './key-snapshot.js';
import type { PrefixEvent } from './follow-prefix.js';

export interface CoalesceOptions {
  /** Followed keys under one prefix from which they share one query. Default 32. */
  readonly minKeys: number;
  /** The prefix a key is grouped under, or null to never coalesce it. Default: its top-level folder. */
  readonly prefixOf: (key: string) => string | null;
}

/** `service/db/leader` → `service/`; a key with no folder is not grouped. */
export function topLevelFolder(key: string): string | null {
  const slash = key.indexOf('/');
  return slash > 0 && slash < key.length - 1 ? key.slice(0, slash + 1) : null;
}

export const DEFAULT_COALESCE: CoalesceOptions = Object.freeze({ minKeys: 32, prefixOf: topLevelFolder });

/** One key's events, read off its prefix's events. */
export function keyEventFromPrefix(event: PrefixEvent, key: string): KeyEvent {
  if (event.kind === 'snapshot') return event.keys.get(key) ?? { kind: 'key-missing', key, meta: event.meta };
  const { error, attempt, retryInMs, lastKnown } = event;
  const known = lastKnown
    ? (lastKnown.keys.get(key) ?? { kind: 'key-missing' as const, key, meta: lastKnown.meta })
    : null;
  return { kind: 'unreachable', key, error, attempt, retryInMs, lastKnown: known };
}

/**
 * Counts the keys followed per group (prefix and read scope). A group turns
 * coalesced when it reaches `minKeys` and stays so until it is empty: going
 * back and forth would cost more than it saves.
 */
export class KeyGroups {
  readonly #groups = new Map<string, { count: number; coalesced$: BehaviorSubject<boolean> }>();

  constructor(private readonly minKeys: number) {}

  /** A key joins its group; the observable says whether the group is coalesced. */
  join(group: string): Observable<boolean> {
    let entry = this.#groups.get(group);
    if (!entry) {
      entry = { count: 0, coalesced$: new BehaviorSubject(false) };
      this.#groups.set(group, entry);
    }
    entry.count += 1;
    if (entry.count >= this.minKeys && !entry.coalesced$.value) entry.coalesced$.next(true);
    return entry.coalesced$;
  }

  leave(group: string): void {
    const entry = this.#groups.get(group);
    if (!entry) return;
    entry.count -= 1;
    if (entry.count <= 0) this.#groups.delete(group);
  }
}

/**
 * Hands each coalesced key the events of its prefix's query that concern it.
 * When an answer has the same keys as the last one, only the keys whose
 * snapshot changed are told: a change to one key of 10,000 followed keys runs
 * one key's pipeline, not 10,000. Subscribes to the prefix while any key is
 * followed.
 */
export class PrefixRouter {
  readonly #subscribers = new Map<string, Set<Subscriber<KeyEvent>>>();
  #last: PrefixEvent | undefined;
  #subscription: Subscription | undefined;

  constructor(
    private readonly source: Observable<PrefixEvent>,
    /** Called when the last key leaves (the router may be dropped). */
    private readonly onIdle: () => void = () => undefined,
  ) {}

  key(key: string): Observable<KeyEvent> {
    return new Observable<KeyEvent>((subscriber) => {
      let subscribers = this.#subscribers.get(key);
      if (!subscribers) {
        subscribers = new Set();
        this.#subscribers.set(key, subscribers);
      }
      subscribers.add(subscriber);
      if (this.#last) subscriber.next(keyEventFromPrefix(this.#last, key));
      this.#subscription ??= this.source.subscribe({
        next: (event) => this.#route(event),
        complete: () => {
          for (const set of [...this.#subscribers.values()]) for (const s of [...set]) s.complete();
        },
      });
      return () => {
        const set = this.#subscribers.get(key);
        set?.delete(subscriber);
        if (set?.size === 0) this.#subscribers.delete(key);
        if (this.#subscribers.size === 0) {
          this.#subscription?.unsubscribe();
          this.#subscription = undefined;
          this.#last = undefined;
          this.onIdle();
        }
      };
    });
  }

  #route(event: PrefixEvent): void {
    const previous = this.#last;
    this.#last = event;
    if (
      event.kind === 'snapshot' &&
      previous?.kind === 'snapshot' &&
      previous.keys instanceof KeyedList &&
      event.keys instanceof KeyedList
    ) {
      const positions = changedPositions(previous.keys, event.keys);
      if (positions) {
        for (const i of positions) {
          const key = (event.keys.list[i] as { key: string }).key;
          const subscribers = this.#subscribers.get(key);
          if (subscribers) tell(subscribers, keyEventFromPrefix(event, key));
        }
        return;
      }
    }
    for (const [key, subscribers] of this.#subscribers) tell(subscribers, keyEventFromPrefix(event, key));
  }
}

function tell(subscribers: ReadonlySet<Subscriber<KeyEvent>>, event: KeyEvent): void {
  for (const subscriber of [...subscribers]) subscriber.next(event);
}
