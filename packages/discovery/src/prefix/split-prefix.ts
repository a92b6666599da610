/**
 * A big prefix followed as many small recursive queries at once (with
 * `http2` they share one connection; with `splitPrefixes.http1` each holds its
 * own), so that a change to one key of 10,000 wakes a query of about a hundred
 * keys and not the prefix's whole answer.
 *
 * The prefix is first read whole (`?recurse`); once it holds `minKeys` keys,
 * it is split into leaves (prefix-plan.ts), each followed by its own blocking
 * query, and one more query follows the prefix's key list (`?keys`, no values). A
 * key born outside every leaf shows in that list and sends the prefix back to
 * one whole read, then a new plan. The leaves' answers, laid end to end, are
 * emitted as the prefix's answer: the same events as one blocking query on it,
 * but that one write changing keys of several leaves may leave as more than one.
 */
import { Observable, Subscription } from 'rxjs';
import type { ConsulReadMeta } from '@consul-leader/types';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { KvEntry } from '../wire/kv.js';
import { KeyedList, indexOf } from './keyed-list.js';
import { type PlanLimits, leafFinder, planLeaves } from './prefix-plan.js';

type ListEvent = BlockingQueryEvent<ReadonlyMap<string, KvEntry>>;
type ErrorEvent = Extract<BlockingQueryEvent<unknown>, { type: 'error' }>;

export interface SplitPrefixOptions {
  readonly prefix: string;
  /** The prefix's own blocking query (`?recurse`). */
  readonly whole: () => Observable<ListEvent>;
  /**
   * A leaf's blocking query; `seed` holds its entries from the whole answer, to
   * be reused while unchanged, and `index` is their highest ModifyIndex, which
   * the leaf blocks on from its first read instead of reading them again.
   * Consul's index of a prefix is that, or a later delete's under it (then that
   * first read returns at once): the whole answer's index would be too high,
   * and the leaf's first wake-up would see its index go back.
   */
  readonly leaf: (prefix: string, seed: ReadonlyMap<string, KvEntry>, index: bigint) => Observable<ListEvent>;
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
 * result whenever a leaf's answer changes the prefix's entries; while any of
 * its queries fails, the prefix is unreachable (one `error` event per retry
 * round, not one per leaf) and results wait until every query answers again.
 */
export function splitPrefixQuery(options: SplitPrefixOptions): Observable<ListEvent> {
  return new Observable<ListEvent>((subscriber) => {
    let current: Subscription | undefined;
    // The keys a plan could not split (a key equal to the prefix, say): not planned again while the same.
    let unsplittable: ReadonlyMap<string, number> | undefined;

    const followWhole = (): void => {
      current?.unsubscribe();
      const subscription = new Subscription();
      current = subscription;
      subscription.add(
        options.whole().subscribe((event) => {
          if (subscription.closed) return;
          subscriber.next(event);
          if (event.type !== 'result') return;
          const entries = KeyedList.from(event.value);
          if (entries.size < options.minKeys || entries.index === unsplittable) return;
          const leaves = planLeaves(options.prefix, [...entries.keys()], options.limits);
          if (leaves) followLeaves(leaves, entries, event.meta);
          else unsplittable = entries.index;
        }),
      );
    };

    const followLeaves = (
      leaves: readonly string[],
      whole: KeyedList<KvEntry>,
      wholeMeta: ConsulReadMeta,
    ): void => {
      current?.unsubscribe();
      const subscription = new Subscription();
      current = subscription;
      const find = leafFinder(leaves);
      const slices: KvEntry[][] = leaves.map(() => []);
      for (const entry of whole.list) slices[find(entry.key)]?.push(entry);
      const lists = slices.map((slice) => KeyedList.of(slice));
      // The whole answer's index stands while the leaves lay its entries out in its order.
      let combinedIndex: ReadonlyMap<string, number> | undefined = sameEntries(
        whole,
        new KeyedList(slices.flat(), whole.index),
      )
        ? whole.index
        : undefined;
      let meta = wholeMeta;
      // Each leaf's last index: the prefix's is the highest (a leaf's index may go back, after a restore).
      const indexes = leaves.map(() => wholeMeta.index);
      // Failing queries by leaf position (-1: the key list) and the attempt last reported.
      const failing = new Map<number, number>();
      let reportedAttempt = 0;
      let holding: Promise<void> | undefined;
      let dirty = false;

      const hold = (): void => {
        const joining = options.beforeNextEmit?.();
        if (!joining) return;
        holding = joining;
        void joining.then(() => {
          if (holding !== joining) return;
          holding = undefined;
          if (dirty) emit();
        });
      };
      // Answers are gathered until the next turn of the event loop: the leaves woken by one
      // write (a session's end releasing keys in several) mostly arrive together, and leave as one.
      let gathering: NodeJS.Immediate | undefined;
      subscription.add(() => clearImmediate(gathering));
      const flush = (): void => {
        gathering = undefined;
        if (subscription.closed || failing.size > 0 || holding || !dirty) return;
        dirty = false;
        const list = ([] as KvEntry[]).concat(...lists.map((l) => l.list));
        combinedIndex ??= indexOf(list);
        const index = indexes.reduce((max, i) => (i > max ? i : max));
        subscriber.next({
          type: 'result',
          value: new KeyedList(list, combinedIndex),
          meta: { ...meta, index },
        });
        hold();
      };
      const emit = (): void => {
        dirty = true;
        if (gathering === undefined && !holding) gathering = setImmediate(flush);
      };
      const fail = (position: number, event: ErrorEvent): void => {
        failing.set(position, event.attempt);
        // Every query of the connection fails at once when it is lost: one event per retry round.
        if (event.attempt <= reportedAttempt) return;
        reportedAttempt = event.attempt;
        subscriber.next(event);
      };
      /** True when this answer ended an outage (every query answers again). */
      const answered = (position: number): boolean => {
        if (!failing.delete(position)) return false;
        // The queries still failing report again once one of them passes their own highest attempt.
        reportedAttempt = Math.max(0, ...failing.values());
        return failing.size === 0;
      };

      hold();
      leaves.forEach((leaf, position) => {
        subscription.add(
          options
            .leaf(leaf, lists[position] as KeyedList<KvEntry>, lastWrite(slices[position]))
            .subscribe((event) => {
              if (subscription.closed) return;
              if (event.type === 'error') return fail(position, event);
              const next = KeyedList.from(event.value);
              const previous = lists[position] as KeyedList<KvEntry>;
              const leaderNews = event.meta.knownLeader !== meta.knownLeader;
              meta = event.meta;
              indexes[position] = event.meta.index;
              const recovered = answered(position);
              if (sameEntries(previous, next)) {
                if (recovered || leaderNews) emit();
                return;
              }
              if (!sameKeys(previous, next)) combinedIndex = undefined;
              lists[position] = next;
              emit();
            }),
        );
      });
      subscription.add(
        options.keys(wholeMeta.index).subscribe((event) => {
          if (subscription.closed) return;
          if (event.type === 'error') return fail(-1, event);
          if (answered(-1)) emit();
          // A key no leaf follows: read the prefix whole again, and plan anew.
          if (event.value.some((key) => find(key) < 0)) followWhole();
        }),
      );
    };

    followWhole();
    return () => current?.unsubscribe();
  });
}
