/**
 * A big prefix followed as many small recursive queries at once (with
 * `http2` they share one connection; with `splitPrefixes.http1` each holds its
 * own), so that a change to one key of 10,000 wakes a query of about a hundred
 * keys and not the prefix's whole answer.
 *
 * The prefix is first read whole (`?recurse`); once it holds `minKeys` keys,
 * it is split into sub-prefixes (prefix-plan.ts), each followed by its own blocking
 * query, and one more query follows the prefix's key list (`?keys`, no values). A
 * key born outside every sub-prefix shows in that list and sends the prefix back to
 * one whole read, then a new plan. The sub-prefixes' answers, laid end to end, are
 * emitted as the prefix's answer: the same events as one blocking query on it,
 * but that one write changing keys of several sub-prefixes may leave as more than one.
 */
import { Observable, type Subscriber, Subscription } from 'rxjs';
import type { ConsulReadMeta } from '@consul-leader/types';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { KvEntry } from '../wire/kv.js';
import { KeyedList, indexOf } from './keyed-list.js';
import { type PlanLimits, subPrefixFinder, planSubPrefixes } from './prefix-plan.js';

type ListEvent = BlockingQueryEvent<ReadonlyMap<string, KvEntry>>;
type ErrorEvent = Extract<BlockingQueryEvent<unknown>, { type: 'error' }>;

export interface SplitPrefixOptions {
  readonly prefix: string;
  /** The prefix's own blocking query (`?recurse`). */
  readonly whole: () => Observable<ListEvent>;
  /**
   * A sub-prefix's blocking query; `seed` holds its entries from the whole answer, to
   * be reused while unchanged, and `index` is their highest ModifyIndex, which
   * the sub-prefix blocks on from its first read instead of reading them again.
   * Consul's index of a prefix is that, or a later delete's under it (then that
   * first read returns at once): the whole answer's index would be too high,
   * and the sub-prefix's first wake-up would see its index go back.
   */
  readonly subPrefix: (
    prefix: string,
    seed: ReadonlyMap<string, KvEntry>,
    index: bigint,
  ) => Observable<ListEvent>;
  /** The blocking query of the prefix's keys (`?keys`), from the whole answer's index: Consul gives the key list the same one. */
  readonly keys: (index: bigint) => Observable<BlockingQueryEvent<readonly string[]>>;
  /** Split once the prefix holds this many keys. */
  readonly minKeys: number;
  readonly limits: PlanLimits;
  /**
   * Awaited (when it returns a promise) before the result that follows an
   * emitted one: the reads joining a result are not cut short by the next
   * (the whole query's `beforeNextRead`, for queries that run side by side).
   */
  readonly beforeNextEmit?: () => Promise<void> | undefined;
}

/** The same entry objects at the same positions. */
function sameEntries(a: KeyedList<KvEntry>, b: KeyedList<KvEntry>): boolean {
  if (a.list.length !== b.list.length) return false;
  for (let i = 0; i < a.list.length; i++) if (a.list[i] !== b.list[i]) return false;
  return true;
}

/** The same keys in the same order. */
function sameKeys(a: KeyedList<KvEntry>, b: KeyedList<KvEntry>): boolean {
  if (a.index === b.index) return true;
  if (a.list.length !== b.list.length) return false;
  for (let i = 0; i < a.list.length; i++) if (a.list[i]?.key !== b.list[i]?.key) return false;
  return true;
}

/** The highest ModifyIndex of `entries` (0n for none). */
function lastWrite(entries: readonly KvEntry[] | undefined): bigint {
  let last = 0n;
  for (const entry of entries ?? []) if (entry.modifyIndex > last) last = entry.modifyIndex;
  return last;
}

/**
 * Follows `prefix` whole until it holds `minKeys` keys, then split. Emits a
 * result whenever a sub-prefix's answer changes the prefix's entries; while any of
 * its queries fails, the prefix is unreachable (one `error` event per retry
 * round, not one per sub-prefix) and results wait until every query answers again.
 */
export function splitPrefixQuery(options: SplitPrefixOptions): Observable<ListEvent> {
  return new Observable<ListEvent>((subscriber) => {
    let current: Subscription | undefined;
    // The keys a plan could not split (a key equal to the prefix, say): not planned again while the same.
    let unsplittable: ReadonlyMap<string, number> | undefined;
    // The old queries end before the new ones start (over HTTP/1.1 each holds a connection),
    // and `current` is set first: a query that answers at once may plan again.
    const follow = (): Subscription => {
      current?.unsubscribe();
      current = new Subscription();
      return current;
    };

    const followWhole = (): void => {
      const subscription = follow();
      subscription.add(
        options.whole().subscribe((event) => {
          if (subscription.closed) return;
          subscriber.next(event);
          if (event.type !== 'result') return;
          const entries = KeyedList.from(event.value);
          if (entries.size < options.minKeys || entries.index === unsplittable) return;
          const subPrefixes = planSubPrefixes(options.prefix, [...entries.keys()], options.limits);
          if (!subPrefixes) unsplittable = entries.index;
          else
            follow().add(
              new PlanQueries(options, subPrefixes, entries, event.meta, subscriber, followWhole)
                .subscription,
            );
        }),
      );
    };

    followWhole();
    return () => current?.unsubscribe();
  });
}

/**
 * One plan: a blocking query per sub-prefix and one of the key list, their answers laid end
 * to end as the prefix's. Unsubscribing `subscription` ends them all.
 */
class PlanQueries {
  readonly subscription = new Subscription();
  readonly #find: (key: string) => number;
  readonly #lists: KeyedList<KvEntry>[];
  // The whole answer's index stands while the sub-prefixes lay its entries out in its order.
  #combinedIndex: ReadonlyMap<string, number> | undefined;
  #meta: ConsulReadMeta;
  // Each sub-prefix's last index: the prefix's is the highest (a sub-prefix's index may go back, after a restore).
  readonly #indexes: bigint[];
  // Failing queries by sub-prefix position (-1: the key list) and the attempt last reported.
  readonly #failing = new Map<number, number>();
  #reportedAttempt = 0;
  // The joins of the last result, which the next one waits for (`beforeNextEmit`).
  #joining: Promise<void> | undefined;
  #dirty = false;
  // Answers are gathered until the next turn of the event loop: the sub-prefixes woken by one
  // write (a session's end releasing keys in several) mostly arrive together, and leave as one.
  #gathering: NodeJS.Immediate | undefined;

  constructor(
    private readonly options: SplitPrefixOptions,
    subPrefixes: readonly string[],
    whole: KeyedList<KvEntry>,
    wholeMeta: ConsulReadMeta,
    private readonly subscriber: Subscriber<ListEvent>,
    /** Reads the prefix whole again (a key no sub-prefix follows appeared). */
    private readonly replan: () => void,
  ) {
    this.#find = subPrefixFinder(subPrefixes);
    const slices: KvEntry[][] = subPrefixes.map(() => []);
    for (const entry of whole.list) slices[this.#find(entry.key)]?.push(entry);
    this.#lists = slices.map((slice) => KeyedList.of(slice));
    this.#combinedIndex = sameEntries(whole, new KeyedList(slices.flat(), whole.index))
      ? whole.index
      : undefined;
    this.#meta = wholeMeta;
    this.#indexes = subPrefixes.map(() => wholeMeta.index);
    this.subscription.add(() => clearImmediate(this.#gathering));

    this.#waitForJoins();
    subPrefixes.forEach((subPrefix, position) => {
      const seed = this.#lists[position] as KeyedList<KvEntry>;
      this.subscription.add(
        options
          .subPrefix(subPrefix, seed, lastWrite(slices[position]))
          .subscribe((event) => this.#onSubPrefix(position, event)),
      );
    });
    this.subscription.add(options.keys(wholeMeta.index).subscribe((event) => this.#onKeyList(event)));
  }

  #onSubPrefix(position: number, event: ListEvent): void {
    if (this.subscription.closed) return;
    if (event.type === 'error') return this.#fail(position, event);
    const next = KeyedList.from(event.value);
    const previous = this.#lists[position] as KeyedList<KvEntry>;
    const leaderNews = event.meta.knownLeader !== this.#meta.knownLeader;
    this.#meta = event.meta;
    this.#indexes[position] = event.meta.index;
    const recovered = this.#answered(position);
    if (sameEntries(previous, next)) {
      if (recovered || leaderNews) this.#emit();
      return;
    }
    if (!sameKeys(previous, next)) this.#combinedIndex = undefined;
    this.#lists[position] = next;
    this.#emit();
  }

  #onKeyList(event: BlockingQueryEvent<readonly string[]>): void {
    if (this.subscription.closed) return;
    if (event.type === 'error') return this.#fail(-1, event);
    if (this.#answered(-1)) this.#emit();
    // A key no sub-prefix follows: read the prefix whole again, and plan anew.
    if (event.value.some((key) => this.#find(key) < 0)) this.replan();
  }

  /** The next result waits for the reads joining the last one. */
  #waitForJoins(): void {
    const joining = this.options.beforeNextEmit?.();
    if (!joining) return;
    this.#joining = joining;
    void joining.then(() => {
      if (this.#joining !== joining) return;
      this.#joining = undefined;
      if (this.#dirty) this.#emit();
    });
  }

  #emit(): void {
    this.#dirty = true;
    if (this.#gathering === undefined && !this.#joining) this.#gathering = setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#gathering = undefined;
    if (this.subscription.closed || this.#failing.size > 0 || this.#joining || !this.#dirty) return;
    this.#dirty = false;
    const list = ([] as KvEntry[]).concat(...this.#lists.map((l) => l.list));
    this.#combinedIndex ??= indexOf(list);
    const index = this.#indexes.reduce((max, i) => (i > max ? i : max));
    this.subscriber.next({
      type: 'result',
      value: new KeyedList(list, this.#combinedIndex),
      meta: { ...this.#meta, index },
    });
    this.#waitForJoins();
  }

  #fail(position: number, event: ErrorEvent): void {
    this.#failing.set(position, event.attempt);
    // Every query of the connection fails at once when it is lost: one event per retry round.
    if (event.attempt <= this.#reportedAttempt) return;
    this.#reportedAttempt = event.attempt;
    this.subscriber.next(event);
  }

  /** True when this answer ended an outage (every query answers again). */
  #answered(position: number): boolean {
    if (!this.#failing.delete(position)) return false;
    // The queries still failing report again once one of them passes their own highest attempt.
    this.#reportedAttempt = Math.max(0, ...this.#failing.values());
    return this.#failing.size === 0;
  }
}
