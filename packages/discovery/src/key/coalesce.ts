/**
 * Coalescing: once enough single keys under one prefix are followed, they are
 * all served from the prefix's recursive blocking query instead of one query
 * (and one connection to Consul) each.
 */
import { Observable, type Subscriber, Subscription } from 'rxjs';
import { type KeyedList, changedPositions } from '../prefix/keyed-list.js';
import { type KeyEvent, type KeySnapshot, sameKeyEvent } from './key-snapshot.js';
import type { PrefixEvent } from '../prefix/follow-prefix.js';

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

/** One key's events, read off its prefix's events. */
export function keyEventFromPrefix(event: PrefixEvent, key: string): KeyEvent {
  if (event.kind === 'snapshot') return event.keys.get(key) ?? { kind: 'key-missing', key, meta: event.meta };
  const { error, attempt, retryInMs, lastKnown } = event;
  const known = lastKnown
    ? (lastKnown.keys.get(key) ?? { kind: 'key-missing' as const, key, meta: lastKnown.meta })
    : null;
  return { kind: 'unreachable', key, error, attempt, retryInMs, lastKnown: known };
}

/** A key's place in its group. */
export interface GroupMembership {
  /** Whether the group was coalesced when the key joined. */
  readonly coalesced: boolean;
  /** The key leaves its group (once). */
  leave(): void;
}

/**
 * A key's events: from `single()` until its group turns coalesced (`join` tells), then from
 * `coalesced()`, never the same event twice in a row. switchMap over the group's state and
 * distinctUntilChanged(sameKeyEvent), by hand: those layers were about a fifth of a key's
 * memory, and leaving the group's Subject O(n).
 */
export function groupedKey(
  join: (onCoalesced: () => void) => GroupMembership,
  single: () => Observable<KeyEvent>,
  coalesced: () => Observable<KeyEvent>,
): Observable<KeyEvent> {
  return new Observable<KeyEvent>((subscriber) => {
    let last: KeyEvent | undefined;
    let source: Subscription | undefined;
    const follow = (events: Observable<KeyEvent>): void => {
      source?.unsubscribe();
      // Set before subscribing: a switch or an unsubscribe while it subscribes ends it.
      const current = new Subscription();
      source = current;
      current.add(
        events.subscribe({
          next: (event) => {
            if (current.closed || (last !== undefined && sameKeyEvent(last, event))) return;
            last = event;
            subscriber.next(event);
          },
          error: (error: unknown) => {
            if (!current.closed) subscriber.error(error);
          },
          // Like switchMap's inner: a source that completes leaves the key open (close() ends it).
        }),
      );
    };
    const membership = join(() => follow(coalesced()));
    follow(membership.coalesced ? coalesced() : single());
    return () => {
      source?.unsubscribe();
      membership.leave();
    };
  });
}

/**
 * Counts the keys followed per group (prefix and read scope). A group turns
 * coalesced when it reaches `minKeys` and stays so until it is empty: going
 * back and forth would cost more than it saves.
 */
export class KeyGroups {
  readonly #groups = new Map<string, { count: number; coalesced: boolean; waiting: Set<() => void> }>();

  constructor(private readonly minKeys: number) {}

  /**
   * A key joins its group. When the group turns coalesced, the keys that
   * joined before are told (`onCoalesced`), then the joining key is: it reads
   * `coalesced`. Plain callbacks, not a Subject of every key: leaving costs O(1),
   * and a coalesced group holds no callback at all.
   */
  join(group: string, onCoalesced: () => void): GroupMembership {
    let entry = this.#groups.get(group);
    if (!entry) {
      entry = { count: 0, coalesced: false, waiting: new Set() };
      this.#groups.set(group, entry);
    }
    const joined = entry;
    joined.count += 1;
    if (joined.count >= this.minKeys && !joined.coalesced) {
      joined.coalesced = true;
      // Deleted before each call: a key that leaves meanwhile is not told; one that joins reads `coalesced`.
      for (const waiting of joined.waiting) {
        joined.waiting.delete(waiting);
        waiting();
      }
    }
    if (!joined.coalesced) joined.waiting.add(onCoalesced);
    let left = false;
    return {
      coalesced: joined.coalesced,
      leave: () => {
        if (left) return;
        left = true;
        joined.waiting.delete(onCoalesced);
        joined.count -= 1;
        if (joined.count <= 0 && this.#groups.get(group) === joined) this.#groups.delete(group);
      },
    };
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
    if (event.kind === 'snapshot' && previous?.kind === 'snapshot') {
      const positions = changedPositions(previous.keys, event.keys);
      if (positions) {
        const list = (event.keys as KeyedList<KeySnapshot>).list;
        for (const i of positions) {
          const key = (list[i] as KeySnapshot).key;
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
